"""Desyncs between two real peers are detected within ``hash_every`` confirmed frames and repaired
from the authority's state; the peer being repaired waits and asks again when the state is lost."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from p2p_support import Match, canonical, corrupt_at, peers

from igym_pyodide_p2p.netsim import FaultyLink

HASH_EVERY = 10
BUG_AT = 47  # the corrupted peer's env goes wrong in this frame (every time it is simulated)


def _corrupt(game: Any, frame: int) -> None:
    """A determinism bug in one peer: at ``frame`` its env moves the ball a little further."""

    def nudge_ball(env: Any) -> None:
        env.ball[0] += 0.25

    corrupt_at(game, frame, nudge_ball)


class _DropFirstState(FaultyLink):
    """Loses the first desync-repair state packet."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dropped_states: list[float] = []

    def send(self, data: bytes, now_ms: float) -> None:
        if b'"k":"s"' in data and not self.dropped_states:
            self.dropped_states.append(now_ms)
            return
        super().send(data, now_ms)


@pytest.mark.parametrize("corrupted", ["a", "b"])
def test_a_desync_is_detected_repaired_and_the_hashes_agree_afterwards(corrupted: str) -> None:
    a, b = peers("slime", max_steps=160, hash_every=HASH_EVERY)
    links = [FaultyLink(seed=s, delay_ms=40, jitter_ms=10, loss=0.05) for s in (1, 2)]
    match = Match(a, b, link_a=links[0], link_b=links[1], key_period_ms=120)
    match.start(1, 9)
    _corrupt(match.games[corrupted], BUG_AT)
    match.play_episode()
    assert a.engine.done and b.engine.done
    for name in ("a", "b"):
        detected = match.events(name, "desync_detected")
        assert detected, f"peer {name} did not detect the desync"
        assert BUG_AT <= detected[0]["frame"] <= BUG_AT + HASH_EVERY
        assert detected[0]["detail"]["local"] != detected[0]["detail"]["remote"]
    repaired = match.events("b", "desync_repaired")
    assert len(repaired) >= 1 and not match.events("a", "desync_repaired")
    repair_frame = repaired[0]["frame"]
    assert repair_frame == match.events("b", "desync_detected")[0]["frame"]
    assert b.stats["desyncs_repaired"] >= 1 and a.stats["desyncs_detected"] >= 1
    # After the repair every compared hash agrees, and the game ends the same on both peers.
    hashes_a = dict(map(tuple, match.hashes("a", 1)))
    hashes_b = dict(map(tuple, match.hashes("b", 1)))
    later = [f for f in hashes_a if f > repair_frame + HASH_EVERY and f in hashes_b]
    assert later and all(hashes_a[f] == hashes_b[f] for f in later)
    assert a.env.get_state() == b.env.get_state()
    steps_a, steps_b = match.steps("a", 1), match.steps("b", 1)
    assert [canonical(s) for s in steps_a][-20:] == [canonical(s) for s in steps_b][-20:]


def test_the_peer_being_repaired_waits_and_asks_again_after_a_second() -> None:
    a, b = peers("slime", max_steps=200, hash_every=HASH_EVERY)
    link_a = _DropFirstState(seed=1, delay_ms=30)
    match = Match(a, b, link_a=link_a, link_b=FaultyLink(seed=2, delay_ms=30), key_period_ms=120)
    match.start(1, 9)
    _corrupt(b, BUG_AT)
    match.play_episode()
    assert link_a.dropped_states, "no repair state was sent"
    waits = [(t, out) for t, out in match.outs["b"] if out["waiting"] == "partner"]
    assert waits, "the non-authority played on past the desync"
    timeline = match.pair.timeline["b"]
    repaired_at = next(t for t, e in timeline if e["kind"] == "desync_repaired")
    detected_at = next(t for t, e in timeline if e["kind"] == "desync_detected")
    # The lost state made it ask again after REPAIR_RETRY_MS, and it did not advance meanwhile.
    assert repaired_at - detected_at >= 1000
    frames_while_waiting = {
        out["frame"]["step"] for t, out in match.outs["b"] if detected_at < t < repaired_at and out["frame"]
    }
    assert not frames_while_waiting
    assert match.events("b", "desync_repaired")
    assert a.env.get_state() == b.env.get_state()


def test_unasked_states_load_at_most_twice_a_second() -> None:
    """States from the authority that nobody asked for (each costs a resimulation) are taken at most
    twice a second, however many come."""
    a, b = peers("slime", max_steps=300, hash_every=HASH_EVERY)
    match = Match(a, b)
    match.start(1, 9)
    match.pair.run(until_ms=1500)
    frame = max(f for f in a.engine._repair_states if f <= b.engine.confirmed)
    state = a.export_state(a.engine._repair_states[frame])
    now = match.pair.now
    for index in range(40):  # 40 states claiming another hash, over one second
        packet = a.engine._control_packet("s", {"f": frame, "st": state, "hh": f"other-{index}"})
        b.receive(packet, now + index * 25)
    assert 1 <= b.stats["desyncs_repaired"] <= 2
