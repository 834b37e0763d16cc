"""The prediction window, time sync, disconnect timers and auto input delay of the rollback engine,
on two real peers in simulated time (an injected clock: the tests never sleep)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from p2p_support import Match, peers

from igym_pyodide_p2p.browser.rollback import MAX_STRETCH, auto_input_delay
from igym_pyodide_p2p.netsim import FaultyLink


@pytest.mark.parametrize("window", [3, 8])
def test_with_the_partner_silent_a_peer_stops_window_frames_ahead(window: int) -> None:
    a, b = peers("slime", max_steps=300, window=window, input_delay=2)
    match = Match(a, b)
    match.pair.paused.add("b")  # b never ticks and never answers
    match.start(1, 3)
    match.pair.run(until_ms=2000)
    assert a.engine.frame == window
    assert a.engine.confirmed == 0
    last = match.outs["a"][-1][1]
    assert last["waiting"] == "window" and last["frame"] is None
    assert a.stats["waits_window"] > 40
    # b wakes up: a goes on and both confirm the frames.
    match.pair.paused.discard("b")
    match.pair.next_tick["b"] = match.pair.now
    match.pair.run(until_ms=4000)
    assert a.engine.frame > window and b.engine.confirmed > window


def test_time_sync_the_peer_ahead_slows_down_until_the_advantage_shrinks() -> None:
    """b starts 300 ms (9 frames) before a: b is ahead, stretches its frames by at most 10 %, and
    the frame difference shrinks to about one frame."""
    a, b = peers("slime", max_steps=3000, window=8, input_delay=2)
    link = [FaultyLink(seed=s, delay_ms=20, jitter_ms=5) for s in (1, 2)]
    match = Match(a, b, link_a=link[0], link_b=link[1])
    match.start(1, 3)
    match.pair.next_tick["a"] = 300.0
    match.pair.run(until_ms=1500)
    early_gap = b.engine.frame - a.engine.frame
    early_advantage = b.engine.advantage
    assert early_advantage is not None and early_advantage >= 2
    scales = [out["period_scale"] for _t, out in match.outs["b"]]
    assert max(scales) > 1.0 and max(scales) <= 1.0 + MAX_STRETCH + 1e-9
    assert all(out["period_scale"] == 1.0 for _t, out in match.outs["a"])
    match.pair.run(until_ms=15000)
    late_gap = b.engine.frame - a.engine.frame
    assert late_gap < early_gap and abs(late_gap) <= 2
    assert abs(b.engine.advantage or 0) < 1.5
    assert match.outs["b"][-1][1]["period_scale"] < 1.0 + MAX_STRETCH


def test_disconnect_notices_at_750_ms_and_5_s_and_partner_back() -> None:
    a, b = peers("slime", max_steps=3000, window=8)
    link_b = FaultyLink(seed=2, delay_ms=10)
    match = Match(a, b, link_b=link_b)
    match.start(1, 3)
    link_b.outage(2000, 8000)  # nothing from b reaches a from 2 s to 8 s
    match.pair.run(until_ms=10000)
    timeline = match.pair.timeline["a"]
    kinds = [e["kind"] for _t, e in timeline if e["kind"].startswith("partner_")]
    assert kinds == ["partner_silent", "partner_lost", "partner_back"]
    times = {e["kind"]: t for t, e in timeline}
    # b's last packet before the outage, plus the link's delay
    last_heard = max(t for t, out in match.outs["b"] if out["send"] and t < 2000) + 10
    tick_ms = 1000 / 30
    assert 750 <= times["partner_silent"] - last_heard <= 750 + tick_ms + 1
    assert 5000 <= times["partner_lost"] - last_heard <= 5000 + tick_ms + 1
    assert 8000 <= times["partner_back"] <= 8000 + 200 + 11
    silent = next(e for _t, e in timeline if e["kind"] == "partner_silent")
    assert silent["episode"] == 1 and silent["detail"]["silent_ms"] >= 750
    # b was silent but a still acknowledges; after the outage both go on together.
    assert a.engine.confirmed > 110 and b.engine.confirmed > 110  # 2 s before the outage, 2 s after


@pytest.mark.parametrize(
    ("rtt", "fps", "expected"),
    [(None, 30, 2), (0.5, 30, 1), (60, 30, 1), (70, 30, 2), (150, 30, 3), (900, 30, 4)],
)
def test_auto_input_delay_rule(rtt: float | None, fps: int, expected: int) -> None:
    assert auto_input_delay(rtt, fps) == expected


def test_auto_input_delay_from_handshake_pings() -> None:
    """Handshake pings over a 75 ms one-way link measure ~150 ms: delay ceil(75 / 33.3) = 3."""
    a, b = peers("slime", input_delay="auto")
    links = {"a": FaultyLink(seed=1, delay_ms=75), "b": FaultyLink(seed=2, delay_ms=75)}
    games = {"a": a, "b": b}
    targets = {"a": b, "b": a}
    for t in range(1500):  # simulated milliseconds
        if t % 100 == 0:
            for name, game in games.items():
                for data in game.handshake(float(t)):
                    links[name].send(data, float(t))
        for name, link in links.items():
            for data in link.deliver(float(t)):
                targets[name].receive(data, float(t))
    assert a.rtt_ms is not None and 140 <= a.rtt_ms <= 160
    a.start_episode(1, 3, fps=30)
    b.start_episode(1, 3, fps=30)
    assert a.input_delay == 3 and b.input_delay == 3
