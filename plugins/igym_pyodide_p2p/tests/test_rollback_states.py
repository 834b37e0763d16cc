"""States larger than one packet (a desync repair's, a reloading partner's snapshot) travel in chunks
within the ``max_state_bytes`` bound; past the bound they are refused with a clear error."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from p2p_support import Match, canonical, corrupt_at, peers

from igym_pyodide_p2p.browser.p2p_game import P2PBrowserGame
from igym_pyodide_p2p.browser.rollback import MAX_PACKET_BYTES, EngineError
from igym_pyodide_p2p.browser.rollback_packets import Reassembler, Refused, split_packet
from igym_pyodide_p2p.netsim import FaultyLink


def _corrupt(game: Any, frame: int) -> None:
    """A determinism bug in one peer: at ``frame`` its env changes one of its padding numbers."""

    def bump_padding(env: Any) -> None:
        env.pad[5] += 1

    corrupt_at(game, frame, bump_padding)


def test_a_reloaded_peer_resumes_from_a_snapshot_in_chunks() -> None:
    a, b = peers("big", max_steps=200, input_delay=2)
    links = [FaultyLink(seed=s, delay_ms=40, jitter_ms=10, loss=0.05) for s in (1, 2)]
    match = Match(a, b, link_a=links[0], link_b=links[1], key_period_ms=100)
    match.start(1, 13)
    match.pair.run(until_ms=2000)
    match.pair.paused.add("b")  # b's page reloads
    match.pair.run(until_ms=2600)
    packets = a.snapshot_packets()
    assert len(packets) > 2 and all(len(p) <= MAX_PACKET_BYTES for p in packets)
    new = P2PBrowserGame(b.spec, game_id="g1", seat="right", partner_seat="left", authority=False)
    # The chunks arrive out of order, one is lost the first time and comes with the next ask, and the
    # partner's inputs come in between: the page resumes once, at the snapshot's last missing chunk.
    order = list(reversed(packets))
    lost = order.pop(1)
    for packet in order:
        assert new.resume_from(packet) is None
        assert new.resume_from(a.engine.packet(2600.0)) is None
    keyframe = new.resume_from(lost)
    assert keyframe is not None and keyframe["key"] is True
    assert new.engine.frame == a.engine.confirmed
    resumed_at = new.engine.frame
    match.games["b"] = new
    match.pair.peers["b"] = new
    match.pair.paused.discard("b")
    match.pair.next_tick["b"] = match.pair.now
    match.pair.run(until_ms=60000, stop=lambda _pair: new.engine.done and a.engine.done)
    assert new.engine.done and a.engine.done
    mine = [s for s in match.steps("b") if s["step"] > resumed_at]
    theirs = [s for s in match.steps("a") if s["step"] > resumed_at]
    assert mine and [canonical(s) for s in mine] == [canonical(s) for s in theirs]
    assert new.env.get_state() == a.env.get_state()


@pytest.mark.parametrize("corrupted", ["a", "b"])
def test_a_desync_of_a_state_larger_than_a_packet_is_repaired(corrupted: str) -> None:
    a, b = peers("big", max_steps=160, hash_every=10)
    links = [FaultyLink(seed=s, delay_ms=40, jitter_ms=10, loss=0.05) for s in (3, 4)]
    match = Match(a, b, link_a=links[0], link_b=links[1], key_period_ms=120)
    match.start(1, 9)
    _corrupt(match.games[corrupted], 47)
    match.play_episode()
    assert a.engine.done and b.engine.done
    assert match.events("b", "desync_repaired"), match.events("b")
    assert a.stats["desyncs_detected"] >= 1 and b.stats["desyncs_repaired"] >= 1
    assert a.env.get_state() == b.env.get_state()
    assert match.hashes("a", 1)[-1] == match.hashes("b", 1)[-1]


def test_a_state_past_max_state_bytes_is_refused_with_a_clear_error() -> None:
    a, b = peers("big", max_steps=160, hash_every=10, max_state_bytes=4096)
    match = Match(a, b)
    match.start(1, 9)
    _corrupt(b, 25)
    match.pair.run(until_ms=3000)
    with pytest.raises(EngineError, match=r"max_state_bytes=4096 .*Raise the scene's runtime option"):
        a.snapshot()
    # The authority cannot send its state for the repair: recorded, never silent; b waits.
    too_large = match.events("a", "state_too_large")
    assert too_large and too_large[0]["detail"]["max_state_bytes"] == 4096, match.events("a")
    assert b.engine.repair_frame is not None and b.stats["desyncs_repaired"] == 0
    with pytest.raises(EngineError, match="max_state_bytes must be 1024 to"):
        peers("big", max_state_bytes=100)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 60_000), seed=st.integers(0, 2**16), duplicate=st.booleans())
def test_chunks_put_together_in_any_order(size: int, seed: int, duplicate: bool) -> None:
    rng = random.Random(seed)
    data = b'{"v":1,"k":"snap","x":"' + bytes(rng.choice(b"abcdef0123") for _ in range(size)) + b'"}'
    chunks = split_packet(data, "g1")
    assert all(len(c) <= MAX_PACKET_BYTES for c in chunks)
    if duplicate:
        chunks = chunks + chunks[: len(chunks) // 2]
    rng.shuffle(chunks)
    whole = Reassembler("g1", 64 * 1024)
    out = [r for r in (whole.feed(c) for c in chunks) if r is not None]
    assert out[0] == data


def test_chunks_are_bounded() -> None:
    big = b'{"v":1,"k":"snap","x":"' + b"7" * 100_000 + b'"}'
    with pytest.raises(Refused, match="oversized"):
        Reassembler("g1", 16 * 1024).feed(split_packet(big, "g1")[0])
    with pytest.raises(Refused, match="wrong_game"):
        Reassembler("other", 1024 * 1024).feed(split_packet(big, "g1")[0])
    chunk = split_packet(big, "g1")[0].replace(b'"d":"', b'"d":"!!')
    with pytest.raises(Refused, match="malformed"):
        Reassembler("g1", 1024 * 1024).feed(chunk)
    # A refused chunk reaching a game is counted as any refused packet, and the game goes on.
    a, _b = peers("catch", max_steps=50)
    a.start_episode(1, 3, fps=30)
    assert a.receive(split_packet(big, "other")[0], 10.0)[0]["detail"]["reason"] == "wrong_game"
    assert a.stats["refused_reasons"] == {"wrong_game": 1}


def test_the_server_takes_every_event_kind_the_pages_report() -> None:
    """Every event the engine (and the worker) reports is one the server's ``p2p_event`` accepts (an
    unknown kind would be refused and the event lost)."""
    import re

    import igym_pyodide_p2p.browser.rollback as rollback
    from igym_pyodide_p2p.p2p_messages import P2PEvent

    # The engine's parts (rollback.py and its rollback_*.py modules) name the events they report.
    source = "".join(p.read_text() for p in Path(rollback.__file__).parent.glob("rollback*.py"))
    worker = (Path(rollback.__file__).parent.parent / "static" / "page" / "worker.js").read_text()
    kinds = set(re.findall(r'_event\(\s*"([a-z_]+)"', source)) | set(re.findall(r'kind: "([a-z_]+)"', worker))
    assert {"state_too_large", "snapshot_refused", "desync_repaired"} <= kinds
    for kind in sorted(kinds):
        event = P2PEvent.decode(
            {"type": "p2p_event", "game_id": "g1", "kind": kind, "episode": 1, "frame": 0}
        )
        assert event.kind == kind
