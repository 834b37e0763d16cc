"""The scripted planner: alone (the partner idle) it serves at least 4 soups in a 60-second round
of the cramped room at the examples' 10 steps a second; two planners share the work; it is
reproducible from its seed. The figures are printed (``pytest -s``)."""

from __future__ import annotations

import functools

import attrs
import pytest
from litestar.testing import TestClient

from igym_cogrid.bots import (
    CLONED_LAYOUTS,
    PARTNERS,
    PLANNER_STRENGTHS,
    PlannerPolicy,
    cloned_policy,
    model_path,
    partner,
    planner,
)
from igym_cogrid.env import AGENTS, LAYOUTS, NOOP, make_env
from igym_cogrid.examples import human_ai
from igym_cogrid.examples.human_ai import FPS
from igym_core import EndScene, Experiment, StaticScene
from igym_core.builtin.seat_actions import SeatBot
from igym_core.errors import ConfigError
from igym_core.plugins.manager import create_plugin_manager
from igym_core.policies.spec import load_policy, policy_config_from
from igym_core.testing import ScriptedParticipant, make_test_app, read_records

ROUND_STEPS = 60 * FPS


def play_round(layout: str, seed: int, *, partner: bool) -> tuple[dict, list[int]]:
    env = make_env(layout=layout, max_steps=ROUND_STEPS, fps=FPS)
    bots = {agent: PlannerPolicy() for agent in AGENTS}
    for i, bot in enumerate(bots.values()):
        bot.reset(seed=seed * 10 + i)
    observations, _ = env.reset(seed=seed)
    actions_seen = []
    infos = {}
    while env.agents:
        actions = {
            "chef_0": bots["chef_0"].act(observations["chef_0"]),
            "chef_1": bots["chef_1"].act(observations["chef_1"]) if partner else NOOP,
        }
        actions_seen.append(actions["chef_0"])
        observations, _r, _t, _tr, infos = env.step(actions)
    return infos["chef_0"]["episode_summary"], actions_seen


def test_the_planner_alone_serves_at_least_four_soups_a_minute():
    soups = []
    for seed in (0, 1, 2):
        summary, _ = play_round("cramped_room", seed, partner=False)
        soups.append(summary["soups_delivered"])
        assert summary["steps"] == ROUND_STEPS
    print(f"planner alone, cramped room, 60 s at {FPS} fps, seeds 0-2: soups {soups}")
    assert min(soups) >= 4


def test_two_planners_cook_together_without_getting_stuck():
    summary, _ = play_round("cramped_room", 0, partner=True)
    alone, _ = play_round("cramped_room", 0, partner=False)
    print(f"two planners, cramped room, 60 s: {summary}")
    assert summary["soups_delivered"] >= alone["soups_delivered"] >= 4


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_two_planners_serve_in_every_kitchen(layout):
    """Two planners share narrow kitchens too: in a one-cell corridor one waits while the other
    passes (they used to pace there, 0 soups in the counter circuit), and in the split kitchen of
    forced coordination they pass onions and dishes over the middle counters (0 soups before)."""
    summary, _ = play_round(layout, 0, partner=True)
    print(f"two planners, {layout}, 60 s at {FPS} fps, seed 0: {summary['soups_delivered']} soups")
    assert summary["soups_delivered"] >= 6


def play_preset(strength: str, seed: int) -> int:
    """Soups served by the planner at ``strength`` alone (the partner idle), chosen by the server
    runtime's own seat rule (``SeatBot``: act every k steps, the default action in between)."""
    bot = planner(strength)
    policy = bot.policy()
    policy.reset(seed=seed * 10)
    seat = SeatBot(policy, bot.act_every, bot.between)
    env = make_env(layout="cramped_room", max_steps=ROUND_STEPS, fps=FPS)
    observations, _ = env.reset(seed=seed)
    step = 0
    while env.agents:
        action, _source = seat.act(step, observations["chef_0"], NOOP)
        observations, _r, _t, _tr, infos = env.step({"chef_0": action, "chef_1": NOOP})
        step += 1
    return infos["chef_0"]["episode_summary"]["soups_delivered"]


def test_the_planners_strengths_serve_fewer_soups_step_by_step():
    soups = {strength: play_preset(strength, 0) for strength in PLANNER_STRENGTHS}
    print(f"planner strengths alone, cramped room, 60 s at {FPS} fps, seed 0: soups {soups}")
    assert list(soups.values()) == sorted(set(soups.values()), reverse=True), soups
    assert soups["expert"] >= 4 and soups["novice"] >= 1
    with pytest.raises(ConfigError, match="planner strength must be one of expert, steady, slow, novice"):
        planner("grandmaster")


def test_the_planner_is_reproducible_from_its_seed():
    assert play_round("cramped_room", 4, partner=True) == play_round("cramped_room", 4, partner=True)


def test_the_planner_alone_serves_in_a_larger_kitchen():
    summary, _ = play_round("asymmetric_advantages", 0, partner=False)
    print(f"planner alone, asymmetric advantages, 60 s: {summary}")
    assert summary["soups_delivered"] >= 4


# --- the cloned chef (ONNX) and the named partners ---------------------------------------------------

SEEDS = (0, 1, 2)


@functools.cache
def registry():
    from igym_onnx import plugin as onnx_plugin

    return create_plugin_manager(autoload=False, extra=[onnx_plugin], strict=True).registry


@functools.cache
def soups_alone(name: str, seed: int, act_every: int | None = None, layout: str = "cramped_room") -> int:
    """Soups served by ``partner(name, act_every=...)`` as chef_0 in a 60 s round of ``layout``, the
    partner idle: its policy loaded the way the server loads a seat's (igym-onnx's loader for the
    cloned chef), re-seeded as at an episode start, choosing by the server runtime's seat rule
    (``SeatBot``). Cached: each round is played once per test session."""
    bot = partner(name, act_every=act_every, layout=layout)
    env = make_env(layout=layout, max_steps=ROUND_STEPS, fps=FPS)
    config = policy_config_from(bot.policy, registry())
    policy = load_policy(
        config,
        registry(),
        agent="chef_0",
        action_space=env.action_space("chef_0"),
        observation_space=env.observation_space("chef_0"),
    )
    policy.reset(seed=seed * 10)
    seat = SeatBot(policy, bot.act_every, bot.between)
    observations, _ = env.reset(seed=seed)
    step = 0
    while env.agents:
        action, _source = seat.act(step, observations["chef_0"], NOOP)
        observations = env.step({"chef_0": action, "chef_1": NOOP})[0]
        step += 1
    return env.soups_delivered


@pytest.mark.parametrize("layout", CLONED_LAYOUTS)
def test_the_cloned_chef_alone_serves_at_least_half_the_planners_soups(layout):
    planner_soups = [soups_alone("expert", seed, layout=layout) for seed in SEEDS]
    cloned_soups = [soups_alone("cloned", seed, layout=layout) for seed in SEEDS]
    print(
        f"alone, {layout}, 60 s at {FPS} fps, seeds {SEEDS}: planner {planner_soups}, "
        f"cloned chef (ONNX) {cloned_soups}"
    )
    assert min(planner_soups) >= 4
    assert sum(cloned_soups) >= sum(planner_soups) / 2
    assert min(cloned_soups) >= min(planner_soups) / 2


def test_the_cloned_chefs_weaker_presets_serve_fewer_soups():
    soups = {
        name: sum(soups_alone(name, seed) for seed in SEEDS)
        for name in ("cloned", "cloned_sampled", "cloned_slow")
    }
    soups["cloned, act_every=2"] = sum(soups_alone("cloned", seed, 2) for seed in SEEDS)
    print(f"cloned presets alone, cramped room, 60 s, soups summed over seeds {SEEDS}: {soups}")
    assert soups["cloned_sampled"] < soups["cloned"]
    assert soups["cloned_slow"] < soups["cloned, act_every=2"] < soups["cloned"]
    assert soups["cloned_slow"] >= 1  # weaker, still cooking


def test_partners_are_chosen_by_name():
    assert set(PLANNER_STRENGTHS) < set(PARTNERS) and {"cloned", "cloned_sampled", "cloned_slow"} < set(
        PARTNERS
    )
    assert partner("slow") == planner("slow")
    cloned = partner("cloned")
    assert cloned.act_every == 1 and cloned.between == "default"
    assert cloned.policy == cloned_policy() and cloned.policy.path == str(model_path("cramped_room"))
    assert partner("cloned_slow").act_every == 4 and partner("novice", act_every=3).act_every == 3
    assert partner("cloned_sampled").policy.action == "sample"
    with pytest.raises(ConfigError, match="partner must be one of expert, steady, slow, novice, cloned"):
        partner("grandmaster")
    with pytest.raises(ConfigError, match=r"python -m igym_cogrid\.train --layout counter_circuit"):
        partner("cloned", layout="counter_circuit")
    assert cloned_policy(path="elsewhere.onnx").path == "elsewhere.onnx"


def test_the_cloned_chef_cooks_in_a_served_game_and_its_steps_are_recorded(tmp_path):
    """The human_ai study's game with ``partner("cloned")`` in chef_1's seat, served in process
    (the server runtime, igym-onnx's loader): the cloned chef cooks beside an idle participant, and
    both chefs' steps are recorded."""
    from igym_onnx import plugin as onnx_plugin

    scene = attrs.evolve(
        human_ai.game,
        num_episodes=1,
        countdown_s=0,
        fps=60,
        env_kwargs={**human_ai.game.env_kwargs, "max_steps": 240},
        policies={"chef_1": partner("cloned")},
        seed_mode="shared",
    )
    experiment = Experiment(
        experiment_id="cogrid_cloned_test",
        seed=3,
        scenes=(scene, StaticScene(scene_id="after", body="Thanks"), EndScene(scene_id="end")),
    )
    plugins = create_plugin_manager(autoload=False, extra=[onnx_plugin], strict=True)
    app = make_test_app(experiment, tmp_path, plugins=plugins)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        p.game_ready(status["game_id"])
        # The participant presses nothing: with the shared seed the blue chef starts at the
        # bottom middle, out of the way of the pot, the dish rack and the hatch, so the round does
        # not depend on when keys would arrive.
        p.receive_until(lambda m: m["type"] == "scene")
    steps = read_records(tmp_path, "cogrid_cloned_test", "steps")
    human = [s for s in steps if s["agent"] == "chef_0"]
    bot = [s for s in steps if s["agent"] == "chef_1"]
    assert len(human) == len(bot) == 240
    assert all(s["action_source"] == "bot" for s in bot)
    assert all(s["action"] == NOOP and s["info"]["position"] == [2, 2] for s in human)
    assert {s["info"]["holding"] for s in bot} >= {"onion", "dish", "soup"}
    soups = human[-1]["info"]["episode_summary.soups_delivered"]
    print(
        f"cloned chef in a served game, 240 steps: {soups} soups, "
        f"actions {sorted({s['action'] for s in bot})}"
    )
    assert soups >= 2  # 240 steps fit two or three soups, as for the planner
    seats = {s["agent"]: s for s in read_records(tmp_path, "cogrid_cloned_test", "games")[0]["seats"]}
    assert seats["chef_1"]["type"] == "bot" and "cogrid_cramped_room.onnx" in seats["chef_1"]["policy"]
