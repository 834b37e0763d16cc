"""The engine's strict decoding: every kind of bad packet from the partner is refused and counted,
reported at most once a second, and the game goes on."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from p2p_support import Match, canonical, peers

from igym_pyodide_p2p.browser.rollback import MAX_PACKET_BYTES
from igym_pyodide_p2p.netsim import FaultyLink


def _started() -> tuple[Any, Any, bytes]:
    """Two peers that played a few frames, and a valid input packet of b's not yet given to a."""
    a, b = peers("slime", max_steps=300, window=8, input_delay=2)
    a.start_episode(1, 4, fps=30)
    b.start_episode(1, 4, fps=30)
    for t in range(0, 100, 33):
        for data in a.tick(float(t))["send"]:
            b.receive(data, float(t))
        for data in b.tick(float(t))["send"]:
            a.receive(data, float(t))
    packet = b.tick(120.0)["send"][-1]
    return a, b, packet


def _edit(packet: bytes, **changes: Any) -> bytes:
    data = json.loads(packet)
    data.update(changes)
    return json.dumps(data).encode()


BAD: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "garbage": ("malformed", lambda p: b"\x00\xff not json at all"),
    "not a table": ("malformed", lambda p: b"[1, 2, 3]"),
    "wrong version": ("malformed", lambda p: _edit(p, v=99)),
    "unknown kind": ("malformed", lambda p: _edit(p, k="z")),
    "frame is text": ("malformed", lambda p: _edit(p, f="12")),
    "ack is a bool": ("malformed", lambda p: _edit(p, a=True)),
    "hash entry malformed": ("malformed", lambda p: _edit(p, h=[[10]])),
    "ping not a number": ("malformed", lambda p: _edit(p, pg="now")),
    "wrong game": ("wrong_game", lambda p: _edit(p, g="another-game")),
    "wrong seat": ("wrong_seat", lambda p: _edit(p, s="left")),
    "wrong session": ("wrong_session", lambda p: _edit(p, x="0123456789ab")),
    "input not playable": ("bad_input", lambda p: _edit(p, i=[[99, 1, []]])),
    "input with too many keys": ("bad_input", lambda p: _edit(p, i=[[1, 1, ["a"] * 40]])),
    "beyond the window": ("beyond_window", lambda p: _edit(p, b=60, i=[[1, 1, []]] * 3)),
    "beyond the episode": ("beyond_episode", lambda p: _edit(p, b=299, i=[[1, 1, []]] * 5)),
    "ack of frames never sent": ("bad_ack", lambda p: _edit(p, a=200)),
    "packet number far ahead": ("bad_sequence", lambda p: _edit(p, n=10_000)),
    "oversized": ("oversized", lambda p: p[:-1] + b"," + b'"pad":"' + b"x" * MAX_PACKET_BYTES + b'"}'),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_packet_is_refused_and_counted(case: str) -> None:
    reason, make = BAD[case]
    a, _b, packet = _started()
    before = (a.engine.remote_last, a.engine.frame, a.stats["packets_received"])
    events = a.receive(make(packet), 130.0)
    assert a.stats["packets_refused"] == 1
    assert a.stats["refused_reasons"] == {reason: 1}
    assert events == [
        {
            "kind": "packet_refused",
            "episode": 1,
            "frame": a.engine.frame,
            "detail": {"reason": reason, "count": 1},
        }
    ]
    assert (a.engine.remote_last, a.engine.frame, a.stats["packets_received"]) == before
    # The game goes on: the valid packet is taken afterwards.
    assert a.receive(packet, 131.0) == []
    assert a.stats["packets_received"] == before[2] + 1


def test_a_replayed_packet_is_refused_and_a_conflicting_one_too() -> None:
    a, _b, packet = _started()
    assert a.receive(packet, 130.0) == []
    events = a.receive(packet, 140.0)
    assert [e["detail"]["reason"] for e in events] == ["replayed"]
    # The same frames with other inputs (a forged or stale copy) under a new number.
    data = json.loads(packet)
    data["n"] += 1000
    data["i"] = [[5, 1, ["ArrowUp", "ArrowRight"]] for _ in data["i"]]
    a.receive(json.dumps(data).encode(), 2000.0)
    assert a.stats["refused_reasons"] == {"replayed": 1, "conflicting_input": 1}


def test_refusals_are_reported_at_most_once_a_second_with_their_count() -> None:
    a, _b, _packet = _started()
    events = []
    for index in range(30):
        events.extend(a.receive(b"junk", 200.0 + index * 50))  # 30 junk packets over 1.5 s
    assert a.stats["packets_refused"] == 30
    assert [e["kind"] for e in events] == ["packet_refused", "packet_refused"]
    assert events[0]["detail"]["count"] == 1
    assert events[1]["detail"]["count"] == 20  # the 19 refused in between and this one


class _Spammer(FaultyLink):
    """Sends a junk packet, a replay and a wrong-seat copy next to every real packet."""

    def send(self, data: bytes, now_ms: float) -> None:
        super().send(data, now_ms)
        super().send(b"{" * 50, now_ms)
        super().send(data, now_ms)
        super().send(_edit(data, s="left"), now_ms)


def test_the_game_goes_on_under_a_flood_of_bad_packets() -> None:
    a, b = peers("catch", max_steps=150)
    match = Match(a, b, link_a=FaultyLink(seed=1, delay_ms=20), link_b=_Spammer(seed=2, delay_ms=20))
    match.start(1, 6)
    match.play_episode()
    assert a.engine.done and b.engine.done
    reasons = a.stats["refused_reasons"]
    assert set(reasons) == {"malformed", "replayed", "wrong_seat"}
    assert len(match.events("a", "packet_refused")) <= match.pair.now / 1000 + 1
    assert [canonical(s) for s in match.steps("a")] == [canonical(s) for s in match.steps("b")]


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=120, deadline=None)
@given(
    field=st.sampled_from(["v", "k", "g", "s", "x", "n", "e", "f", "a", "b", "i", "h", "ha", "pg", "po"]),
    value=_JSON,
)
@example(field="n", value=2**40)  # a huge packet number once locked out every later packet
@example(field="b", value=5)
def test_any_field_of_a_packet_replaced_by_any_json_never_breaks_the_engine(field: str, value: Any) -> None:
    """A valid packet with one field replaced by arbitrary JSON is taken or refused, never raises,
    and the peer plays on afterwards."""
    a, b, packet = _started()
    data = json.loads(packet)
    data[field] = value
    a.receive(json.dumps(data).encode(), 130.0)
    assert a.stats["packets_refused"] + a.stats["packets_received"] >= 1
    for t in range(140, 1100, 33):
        for sent in b.tick(float(t))["send"]:
            a.receive(sent, float(t))
        for sent in a.tick(float(t))["send"]:
            b.receive(sent, float(t))
    assert a.engine.confirmed > 20 and b.engine.confirmed > 20
