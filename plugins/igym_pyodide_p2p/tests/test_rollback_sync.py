"""The rollback engine keeps two real peers (P2PBrowserGame on the slime env and a small second env)
in the same game whatever the network does inside the window, and its rollbacks are exact (SyncTest)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from p2p_support import Match, canonical, lockstep, peers, spec

from igym_core.rendering.delta import DeltaEncoder, apply_delta
from igym_pyodide_p2p.browser.p2p_game import P2PBrowserGame
from igym_pyodide_p2p.browser.rollback import sync_test
from igym_pyodide_p2p.netsim import FaultyLink
from igym_slime.env import make_env
from igym_slime.render import draw

import p2p_support  # isort: skip

FACTORIES = {
    "slime": lambda: make_env(lives=2, max_steps=3000),
    "catch": lambda: p2p_support.make_catch(target=3),
}


def _check_match(match: Match, env: str, seeds: dict[int, int]) -> None:
    a, b = match.games["a"], match.games["b"]
    for episode, seed in seeds.items():
        steps_a, steps_b = match.steps("a", episode), match.steps("b", episode)
        assert steps_a, f"episode {episode}: no confirmed steps"
        assert [s["step"] for s in steps_a] == list(range(1, len(steps_a) + 1))
        # Both peers confirmed the same frames with the same inputs, rewards and flags ...
        assert [canonical(s) for s in steps_a] == [canonical(s) for s in steps_b]
        assert match.hashes("a", episode) == match.hashes("b", episode)
        # ... which are what a lockstep run of the confirmed actions gives.
        replay = lockstep(FACTORIES[env], seed, steps_a)
        assert [(s["rewards"], s["terminated"], s["truncated"]) for s in steps_a] == replay[:-1]
        last_hash = [h for step, h in match.hashes("a", episode) if step == len(steps_a)]
        assert last_hash == [replay[-1]]
    assert a.env.state_hash() == b.env.state_hash()
    assert a.env.get_state() == b.env.get_state()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    env=st.sampled_from(["slime", "catch"]),
    delay_ms=st.floats(0, 120),
    jitter_ms=st.floats(0, 40),
    loss=st.floats(0, 0.3),
    duplicate=st.floats(0, 0.3),
    reorder=st.booleans(),
    b_start_ms=st.floats(0, 250),
    input_delay=st.integers(1, 4),
    window=st.integers(2, 8),
    link_seed=st.integers(0, 2**16),
    keys_seed=st.integers(0, 2**16),
)
def test_peers_agree_with_a_lockstep_run_under_any_schedule_inside_the_window(
    env: str,
    delay_ms: float,
    jitter_ms: float,
    loss: float,
    duplicate: float,
    reorder: bool,
    b_start_ms: float,
    input_delay: int,
    window: int,
    link_seed: int,
    keys_seed: int,
) -> None:
    a, b = peers(env, max_steps=70, input_delay=input_delay, window=window, hash_every=5)
    links = [
        FaultyLink(
            seed=link_seed + side,
            delay_ms=delay_ms,
            jitter_ms=jitter_ms,
            loss=loss,
            duplicate=duplicate,
            reorder=reorder,
        )
        for side in (0, 1)
    ]
    match = Match(
        a, b, link_a=links[0], link_b=links[1], keys_seed=keys_seed, key_period_ms=70, b_start_ms=b_start_ms
    )
    seeds = {1: 11 + link_seed, 2: 12 + link_seed}
    for episode, seed in seeds.items():
        match.start(episode, seed)
        match.play_episode(limit_ms=30_000)
        assert a.engine.done and b.engine.done, f"episode {episode} did not end on both peers"
        for game in (a, b):
            game.take_batch()  # the episode's last confirmed frames
            assert game.episode_done()["steps"] == a.engine.confirmed
        for name, game in match.games.items():
            batch = game.take_batch()
            if batch is not None:
                match.batches[name].append(batch)
    _check_match(match, env, seeds)


def test_rollbacks_happen_and_are_recorded_per_step() -> None:
    """At 100 ms one way with changing keys the peers mispredict; each step says how often it was
    resimulated and what was first predicted, and the records still agree."""
    a, b = peers("slime", max_steps=150, input_delay=1)
    links = [FaultyLink(seed=s, delay_ms=100, jitter_ms=20) for s in (3, 4)]
    match = Match(a, b, link_a=links[0], link_b=links[1], key_period_ms=60)
    match.start(1, 5)
    match.play_episode()
    assert a.stats["rollbacks"] > 5 and b.stats["rollbacks"] > 5
    steps = match.steps("a", 1)
    assert any(s["p2p"]["rollbacks"] > 0 for s in steps)
    assert any(s["p2p"]["predicted"] is not None for s in steps)
    assert sum(s["p2p"]["rollbacks"] for s in steps) == a.stats["resimulated_frames"]
    assert a.stats["max_depth"] <= a.engine.window
    _check_match(match, "slime", {1: 5})


def test_the_frame_drawn_after_a_rollback_is_the_corrected_present() -> None:
    """Applying every frame message a peer drew (keyframe, then deltas) gives exactly the objects of
    its env now: a rollback never leaves a stale object on the page."""
    a, b = peers("slime", max_steps=90, input_delay=1)
    links = [FaultyLink(seed=s, delay_ms=90, jitter_ms=30) for s in (5, 6)]
    match = Match(a, b, link_a=links[0], link_b=links[1], key_period_ms=50)
    first = a.start_episode(1, 8, fps=30)
    b.start_episode(1, 8, fps=30)
    match.play_episode()
    assert a.stats["rollbacks"] > 0
    view: dict[str, dict] = {}
    for message in [first, *match.frames["a"]]:
        apply_delta(
            view,
            key=message["key"],
            add=message.get("add", ()),
            upd=message.get("upd", ()),
            rm=message.get("rm", ()),
        )
    fresh = DeltaEncoder()
    fresh.update_fields(draw(a.env))
    expected = {wire["id"]: wire for wire in fresh.keyframe()}
    drawn = view
    assert drawn == expected


@pytest.mark.parametrize("depth", [1, 7])
@pytest.mark.parametrize("env", ["slime", "catch"])
def test_sync_test_every_frame_rolled_back(env: str, depth: int) -> None:
    game = P2PBrowserGame(spec(env, "left"), game_id="s", seat="left", partner_seat="right", authority=True)
    game.start_episode(1, 21, fps=30)
    actions = [1, 2, 3, 4, 5, 0]
    inputs = [
        {"left": [actions[(f // 7) % 6], 1, []], "right": [actions[(f // 5 + 2) % 6], 1, []]}
        for f in range(120)
    ]
    assert sync_test(game, inputs, depth=depth) == []


def test_sync_test_fails_an_env_that_draws_from_the_global_random() -> None:
    game = P2PBrowserGame(
        spec("global_random", "left"), game_id="s", seat="left", partner_seat="right", authority=True
    )
    game.start_episode(1, 21, fps=30)
    inputs = [{"left": [0, 0, []], "right": [0, 0, []]} for _ in range(60)]
    mismatches = sync_test(game, inputs, depth=2)
    assert mismatches, "the negative control passed the sync test"
    frame, first, again = mismatches[0]
    assert first != again and frame >= 1


def test_a_predicted_end_is_not_final_until_confirmed() -> None:
    """``right`` holds ArrowUp (3) until 200 ms, then lets go; from step 10 a 3 would end the game.
    Over 150 ms one way ``left`` predicts ``right`` still holding it at step 10: a predicted end. It
    holds there, the real input rolls it back, and both peers play to the env's step limit."""
    a, b = peers("button", max_steps=40, input_delay=1)
    links = [FaultyLink(seed=s, delay_ms=150) for s in (1, 2)]
    match = Match(a, b, link_a=links[0], link_b=links[1])
    match._keys = lambda name, now: ("ArrowUp",) if name == "b" and now < 200 else ()  # type: ignore[method-assign]
    match.start(1, 1)
    match.play_episode()
    assert a.end_reason == b.end_reason == "truncated"  # the env's own limit, not the button
    assert a.engine.confirmed == b.engine.confirmed == 40
    held = [out for _t, out in match.outs["a"] if out["waiting"] == "partner"]
    assert held, "left never predicted the end"
    assert a.stats["rollbacks"] >= 1
    assert [canonical(s) for s in match.steps("a")] == [canonical(s) for s in match.steps("b")]


def test_the_rollback_hook_sees_every_rollback_with_its_depth() -> None:
    """``engine.on_rollback`` (the benches' timing hook) is called once per rollback with its
    duration and depth: its depths are the engine's depth histogram."""
    a, b = peers("slime", max_steps=300, input_delay=1)
    seen: list[tuple[float, int]] = []
    a.engine.on_rollback = lambda ms, depth: seen.append((ms, depth))
    links = [FaultyLink(seed=s, delay_ms=70, jitter_ms=20, loss=0.05) for s in (3, 4)]
    match = Match(a, b, link_a=links[0], link_b=links[1], key_period_ms=60)
    match.start(1, 5)
    match.play_episode()
    histogram = a.stats["depth_histogram"]
    assert a.stats["rollbacks"] > 0 and len(seen) == a.stats["rollbacks"]
    assert sorted(depth for _ms, depth in seen) == sorted(d for d, n in histogram.items() for _ in range(n))
    assert all(ms >= 0 for ms, _depth in seen)
