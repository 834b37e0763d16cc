"""A peer whose partner left plays on with the partner's seat played by a bot (or stops), and a
reloaded peer resumes from its partner's snapshot and finishes the episode in agreement."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from p2p_support import Match, canonical, lockstep, peers

from igym_pyodide_p2p.browser.p2p_game import P2PBrowserGame
from igym_pyodide_p2p.browser.rollback import EngineError
from igym_pyodide_p2p.netsim import FaultyLink
from igym_slime.env import make_env


def test_partner_left_with_a_bot_plays_on_alone_from_the_last_confirmed_frame() -> None:
    a, b = peers("slime", max_steps=200, input_delay=2)
    link = [FaultyLink(seed=s, delay_ms=60, jitter_ms=10) for s in (1, 2)]
    match = Match(a, b, link_a=link[0], link_b=link[1], key_period_ms=90)
    match.start(1, 7)
    match.pair.run(until_ms=2000)
    match.pair.paused.add("b")  # b's page closed
    match.pair.run(until_ms=2300)
    last_real = a.engine.remote_last
    assert a.engine.frame > last_real  # a predicted past b's last input
    a.partner_left({"kind": "constant", "action": 3})
    match.pair.run(until_ms=30000, stop=lambda _pair: a.engine.done)
    assert a.engine.done and a.end_reason == "max_steps"
    steps = match.steps("a", 1)
    assert [s["step"] for s in steps] == list(range(1, 201))
    for step in steps:
        if step["step"] <= last_real:
            assert step["sources"]["right"] in ("human", "default")
        else:
            assert step["sources"]["right"] == "bot" and step["actions"]["right"] == 3
            assert step["p2p"]["predicted"] is None
    replay = lockstep(lambda: make_env(lives=2, max_steps=3000), 7, steps)
    assert [(s["rewards"], s["terminated"], s["truncated"]) for s in steps] == replay[:-1]
    assert a.env.state_hash() == replay[-1]
    assert a.episode_done()["end_reason"] == "max_steps"


def test_partner_left_without_a_bot_stops_the_episode() -> None:
    a, b = peers("catch", max_steps=300)
    match = Match(a, b)
    match.start(1, 7)
    match.pair.run(until_ms=1000)
    a.partner_left(None)
    out = a.tick(1001.0)
    assert out["done"] and out["frame"] is None and out["send"] == []
    assert a.episode_done()["end_reason"] == "partner_left"


@pytest.mark.parametrize("reloading", ["a", "b"])
def test_a_reloaded_peer_resumes_from_the_partners_snapshot(reloading: str) -> None:
    a, b = peers("slime", max_steps=240, input_delay=2)
    link = [FaultyLink(seed=s, delay_ms=40, jitter_ms=10, loss=0.05) for s in (1, 2)]
    match = Match(a, b, link_a=link[0], link_b=link[1], key_period_ms=100)
    match.start(1, 13)
    match.pair.run(until_ms=2500)
    old = match.games[reloading]
    stayer = match.games["b" if reloading == "a" else "a"]
    match.pair.paused.add(reloading)  # the page reloads: silent for a while
    match.pair.run(until_ms=3500)
    snapshot = stayer.snapshot()
    new = P2PBrowserGame(
        old.spec,
        game_id=old.game_id,
        seat=old.seat,
        partner_seat=old.partner_seat,
        authority=old.engine.authority,
        input_delay=2,
    )
    keyframe = new.resume(snapshot)
    assert keyframe["key"] is True and keyframe["step"] == stayer.engine.confirmed
    resumed_at = new.engine.frame
    old_batches = len(match.batches[reloading])
    # The old page's packets still in flight are refused from now on.
    late = old.engine.packet(3500.0)
    stayer.receive(late, 3500.0)
    assert stayer.stats["refused_reasons"] == {"stale_session": 1}
    match.games[reloading] = new
    match.pair.peers[reloading] = new
    match.pair.paused.discard(reloading)
    match.pair.next_tick[reloading] = match.pair.now
    match.pair.run(until_ms=60000, stop=lambda _pair: new.engine.done and stayer.engine.done)
    resumed = match.events(reloading, "resumed")
    assert resumed == [
        {
            "kind": "resumed",
            "episode": 1,
            "frame": resumed_at,
            "detail": {"from_frame": resumed_at, "partner_frame": resumed[0]["detail"]["partner_frame"]},
        }
    ]
    assert resumed[0]["detail"]["partner_frame"] >= resumed_at
    assert new.engine.done and stayer.engine.done
    # The new page's packets (numbered from 1 again) were all taken: nothing but the old page's refused.
    assert stayer.stats["refused_reasons"] == {"stale_session": 1}
    assert new.stats["packets_refused"] == 0
    new_steps = [
        s
        for batch in match.batches[reloading][old_batches:]
        for s in batch["steps"]
        if s["step"] > resumed_at
    ]
    stayer_steps = [s for s in match.steps("b" if reloading == "a" else "a") if s["step"] > resumed_at]
    assert new_steps and new_steps[-1]["step"] == stayer.engine.confirmed
    assert [canonical(s) for s in new_steps] == [canonical(s) for s in stayer_steps]
    assert new.env.get_state() == stayer.env.get_state()


def test_resume_refuses_a_snapshot_of_another_game() -> None:
    a, b = peers("catch", max_steps=100)
    match = Match(a, b)
    match.start(1, 3)
    match.pair.run(until_ms=500)
    other = P2PBrowserGame(a.spec, game_id="other", seat="left", partner_seat="right", authority=True)
    with pytest.raises(EngineError, match="game 'g1' from seat 'right'"):
        other.resume(b.snapshot())
    with pytest.raises(EngineError, match="not JSON"):
        a.resume(b"nope")


@settings(max_examples=15, deadline=None)
@given(
    reloading=st.sampled_from(["a", "b"]),
    reload_at_ms=st.floats(100, 3000),
    away_ms=st.floats(0, 1500),
    delay_ms=st.floats(0, 90),
    loss=st.floats(0, 0.2),
    seed=st.integers(0, 1000),
)
def test_a_reload_at_any_moment_under_any_faults_ends_in_agreement(
    reloading: str, reload_at_ms: float, away_ms: float, delay_ms: float, loss: float, seed: int
) -> None:
    a, b = peers("catch", max_steps=150, input_delay=2)
    links = [FaultyLink(seed=seed + s, delay_ms=delay_ms, jitter_ms=delay_ms / 4, loss=loss) for s in (0, 1)]
    match = Match(a, b, link_a=links[0], link_b=links[1], keys_seed=seed, key_period_ms=100)
    match.start(1, seed)
    match.pair.run(until_ms=reload_at_ms, stop=lambda _pair: a.engine.done or b.engine.done)
    if a.engine.done or b.engine.done:
        return  # the episode ended before the reload
    old = match.games[reloading]
    stayer = match.games["b" if reloading == "a" else "a"]
    match.pair.paused.add(reloading)
    match.pair.run(until_ms=reload_at_ms + away_ms)
    new = P2PBrowserGame(
        old.spec,
        game_id=old.game_id,
        seat=old.seat,
        partner_seat=old.partner_seat,
        authority=old.engine.authority,
        input_delay=2,
    )
    new.resume(stayer.snapshot())
    resumed_at = new.engine.frame
    old_batches = len(match.batches[reloading])
    match.games[reloading] = match.pair.peers[reloading] = new
    match.pair.paused.discard(reloading)
    match.pair.next_tick[reloading] = match.pair.now
    match.pair.run(
        until_ms=match.pair.now + 60_000, stop=lambda _pair: new.engine.done and stayer.engine.done
    )
    assert new.engine.done and stayer.engine.done
    for game in (new, stayer):
        batch = game.take_batch()
        if batch is not None:
            match.batches["a" if game.seat == "left" else "b"].append(batch)
    mine = [
        s
        for batch in match.batches[reloading][old_batches:]
        for s in batch["steps"]
        if s["step"] > resumed_at
    ]
    theirs = [s for s in match.steps("b" if reloading == "a" else "a") if s["step"] > resumed_at]
    assert [canonical(s) for s in mine] == [canonical(s) for s in theirs]
    assert new.env.get_state() == stayer.env.get_state()
    assert new.stats["desyncs_detected"] == stayer.stats["desyncs_detected"] == 0


def test_resume_from_takes_only_the_partners_snapshot() -> None:
    """A reloaded page's worker hands every packet to ``resume_from`` until it resumed: the partner's
    inputs that come first are dropped, its snapshot resumes the page (the worker and the tests' pages
    call this one method)."""
    a, b = peers("catch", max_steps=100)
    match = Match(a, b)
    match.start(1, 3)
    match.pair.run(until_ms=800)
    new = P2PBrowserGame(a.spec, game_id="g1", seat="left", partner_seat="right", authority=True)
    for packet in (b.engine.packet(800.0), b"garbage", b'["k", "snap"]'):
        assert new.resume_from(packet) is None
    assert not new.playing
    keyframe = new.resume_from(b.snapshot())
    assert keyframe is not None and keyframe["key"] is True
    assert new.playing and new.engine.frame == b.engine.confirmed
