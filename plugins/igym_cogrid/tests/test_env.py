"""The Overcooked adapter: igym's env contract (state and hash included), determinism, the layouts,
the per-step infos and the episode summary, and both observation kinds."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from igym_cogrid.env import (
    AGENTS,
    COOK_STEPS,
    DOWN,
    INTERACT,
    LAYOUTS,
    LEFT,
    NOOP,
    RIGHT,
    SOUP_POINTS,
    UP,
    OvercookedEnv,
    decode,
    make_env,
)
from igym_core.testing import check_env_contract


def play(env: OvercookedEnv, actions: list[tuple[int, int]]) -> list[tuple]:
    return [env.step(dict(zip(AGENTS, pair, strict=True))) for pair in actions]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_meets_the_contract_with_state_and_hash(layout):
    report = check_env_contract(lambda: make_env(layout=layout, max_steps=70), seeds=(0, 1), steps=160)
    assert report.agents == AGENTS
    assert report.episodes_run >= 2  # truncation at max_steps, then a reset
    assert report.has_state_methods and report.state_checked and report.state_hash_checked
    assert {str(space) for space in report.action_spaces.values()} == {"Discrete(7)"}


def test_cogrid_observations_meet_the_contract_too():
    report = check_env_contract(lambda: make_env(observations="cogrid", max_steps=50), steps=60)
    assert report.observation_spaces["chef_0"].shape == (892,)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), action_seed=st.integers(0, 1000))
def test_the_same_seed_and_actions_give_the_same_data(seed, action_seed):
    rng = random.Random(action_seed)
    actions = [(rng.randrange(7), rng.randrange(7)) for _ in range(40)]
    runs = []
    for _ in range(2):
        env = make_env(max_steps=100)
        first = env.reset(seed=seed)
        runs.append(json.dumps([first, *play(env, actions)], default=lambda v: np.asarray(v).tolist()))
    assert runs[0] == runs[1]


def test_seeds_choose_where_the_chefs_start():
    starts = set()
    for seed in range(12):
        env = make_env()
        env.reset(seed=seed)
        starts.add(tuple((r, c) for r, c, _f, _i in env.chefs()))
    assert len(starts) > 1


def test_unknown_layout_and_bad_options_say_what_is_allowed():
    with pytest.raises(ValueError, match="cramped_room") as info:
        make_env(layout="kitchen")
    assert "counter_circuit" in str(info.value)
    with pytest.raises(ValueError, match="'compact' or 'cogrid'"):
        make_env(observations="pixels")
    with pytest.raises(ValueError, match="max_steps"):
        make_env(max_steps=0)
    env = make_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"int 0\.\.6"):
        env.step({"chef_0": 9})


def cook_one_soup(env: OvercookedEnv) -> list[tuple]:
    """chef_0 cooks and serves one soup in the cramped room, chef_1 waits out of the way.

    Kitchen (row, col): pot (0, 2), onion crates (1, 0) and (1, 4), dish rack (3, 1), serving
    hatch (3, 3); floor rows 1–2, columns 1–3. Seed 0 starts chef_0 at (2, 3), chef_1 at (1, 3).
    """
    env.reset(seed=0)
    assert [(r, c) for r, c, _f, _i in env.chefs()] == [(2, 3), (1, 3)]
    results = play(env, [(LEFT, NOOP), (NOOP, RIGHT)])  # chef_0 to (2, 2); chef_1 faces its crate
    # chef_0 fetches three onions from the left crate, from (1, 1) facing left.
    to_pot = [(RIGHT, NOOP), (UP, NOOP), (INTERACT, NOOP)]  # (1, 2) facing up: into the pot
    back = [(LEFT, NOOP), (LEFT, NOOP), (INTERACT, NOOP)]  # (1, 1) facing left: an onion
    results += play(env, [(UP, NOOP), (LEFT, NOOP), (LEFT, NOOP), (INTERACT, NOOP)])  # (1, 1): an onion
    for _ in range(3):
        results += play(env, to_pot)
        if env.pots()[0][2] < 3:
            results += play(env, back)
    assert env.pots()[0][2] == 3
    # A dish from the rack (3, 1), facing down from (2, 1), then wait for the soup.
    results += play(env, [(LEFT, NOOP), (DOWN, NOOP), (DOWN, NOOP), (INTERACT, NOOP)])
    results += play(env, [(RIGHT, NOOP), (UP, NOOP), (UP, NOOP)])  # (1, 2) facing up, at the pot
    while env.pots()[0][3] > 0:
        results += play(env, [(NOOP, NOOP)])
    results += play(env, [(INTERACT, NOOP)])  # soup into the dish
    results += play(env, [(DOWN, NOOP), (RIGHT, NOOP), (DOWN, NOOP), (INTERACT, NOOP)])  # serve at (3, 3)
    return results


def test_infos_follow_a_soup_from_onions_to_the_hatch():
    env = make_env(max_steps=400)
    results = cook_one_soup(env)
    infos = [r[4]["chef_0"] for r in results]
    assert {"onion", "dish", "soup", "nothing"} <= {i["holding"] for i in infos}
    pot_onions = [i["pots"][0]["onions"] for i in infos]
    assert pot_onions.index(1) < pot_onions.index(2) < pot_onions.index(3)
    cooking = [i["pots"][0]["cooking_steps_left"] for i in infos if i["pots"][0]["onions"] == 3]
    assert cooking[0] == COOK_STEPS - 1 or cooking[0] == COOK_STEPS
    assert 0 in cooking and any(i["pots"][0]["ready"] for i in infos)
    served = [i for i in infos if i["delivered_this_step"]]
    assert len(served) == 1 and served[0]["soups_delivered"] == 1 and served[0]["score"] == SOUP_POINTS
    assert results[-1][1] == {"chef_0": SOUP_POINTS, "chef_1": SOUP_POINTS}  # the team's reward
    assert sum(r[1]["chef_0"] for r in results) == SOUP_POINTS  # no shaping by default
    assert infos[-1]["position"] == [2, 3] and infos[-1]["facing"] == "down"
    assert results[-1][4]["chef_1"]["partner_position"] == [2, 3]
    assert all(i["layout"] == "cramped_room" for i in infos)


def test_the_last_step_carries_the_episode_summary():
    env = make_env(max_steps=200)
    results = cook_one_soup(env)
    while env.agents:
        results.append(env.step({"chef_0": NOOP, "chef_1": NOOP}))
    assert all("episode_summary" not in r[4]["chef_0"] for r in results[:-1])
    *_, truncations, infos = results[-1]
    assert truncations == {"chef_0": True, "chef_1": True}
    for agent in AGENTS:
        assert infos[agent]["episode_summary"] == {
            "layout": "cramped_room",
            "steps": 200,
            "soups_delivered": 1,
            "score": SOUP_POINTS,
            "collisions": 0,
        }


def test_walking_into_the_partner_is_a_collision():
    env = make_env()
    env.reset(seed=0)  # chef_0 at (2, 3), chef_1 above it at (1, 3)
    _obs, _r, _t, _tr, infos = env.step({"chef_0": UP, "chef_1": NOOP})
    assert infos["chef_0"]["collided"] and not infos["chef_1"]["collided"]
    assert infos["chef_0"]["position"] == [2, 3] and infos["chef_0"]["facing"] == "up"
    _obs, _r, _t, _tr, infos = env.step({"chef_0": LEFT, "chef_1": NOOP})
    assert not infos["chef_0"]["collided"]  # a free cell
    _obs, _r, _t, _tr, infos = env.step({"chef_0": DOWN, "chef_1": NOOP})
    assert not infos["chef_0"]["collided"]  # a counter only turns the chef
    assert env.episode_summary()["collisions"] == 1


def test_compact_observations_show_the_kitchen_from_each_chef():
    env = make_env()
    observations, _ = env.reset(seed=0)
    mine, theirs = decode(observations["chef_0"]), decode(observations["chef_1"])
    assert (mine["height"], mine["width"], mine["steps_left"]) == (4, 5, 600)
    assert mine["me"] == theirs["other"] and mine["other"] == theirs["me"]
    assert mine["me"][:2] == (2, 3) and mine["me"][3] == -1
    assert mine["grid"][0][2] == 14 and mine["pots"] == [(0, 2, 0, COOK_STEPS)]
    space = env.observation_space("chef_0")
    assert space.contains(observations["chef_0"]) and space.shape == observations["chef_0"].shape


def test_a_restored_state_replays_the_same_future_after_json():
    env = make_env(max_steps=300)
    env.reset(seed=5)
    rng = random.Random(1)
    play(env, [(rng.randrange(7), rng.randrange(7)) for _ in range(30)])
    saved = json.loads(json.dumps(env.get_state()))
    actions = [(rng.randrange(7), rng.randrange(7)) for _ in range(30)]
    first = json.dumps(play(env, actions), default=lambda v: np.asarray(v).tolist())
    other = make_env(max_steps=300)
    other.reset(seed=99)
    other.set_state(saved)
    assert json.dumps(play(other, actions), default=lambda v: np.asarray(v).tolist()) == first
    with pytest.raises(ValueError, match="layout"):
        make_env(layout="counter_circuit").set_state(saved)


def test_a_restored_state_keeps_the_episodes_counters():
    env = make_env(max_steps=300)
    cook_one_soup(env)
    env.step({"chef_0": UP, "chef_1": NOOP})  # and bump into the partner once
    other = make_env(max_steps=300)
    other.reset(seed=7)
    other.set_state(json.loads(json.dumps(env.get_state())))
    assert other.episode_summary() == env.episode_summary()
    assert other.episode_summary()["soups_delivered"] == 1
    assert other.state_hash() == env.state_hash()
    actions = {"chef_0": RIGHT, "chef_1": LEFT}
    assert json.dumps(other.step(actions), default=lambda v: np.asarray(v).tolist()) == json.dumps(
        env.step(actions), default=lambda v: np.asarray(v).tolist()
    )


def test_cogrid_observations_are_cogrids_own_and_built_only_for_observed_seats():
    from cogrid.envs import registry

    raw = registry.make(LAYOUTS["cramped_room"])
    everyone = make_env(observations="cogrid")
    bot_only = make_env(observations="cogrid", observed_agents=("chef_1",))
    rng = random.Random(3)
    expected, _ = raw.reset(seed=11)
    results = [everyone.reset(seed=11)[0], bot_only.reset(seed=11)[0]]
    for step in range(60):
        for index, agent in enumerate(AGENTS):
            assert np.array_equal(results[0][agent], expected[index]), (step, agent)
        assert np.array_equal(results[1]["chef_1"], expected[1])
        assert not results[1]["chef_0"].any() and results[1]["chef_0"].shape == expected[0].shape
        actions = (rng.randrange(7), rng.randrange(7))
        expected = raw.step(dict(enumerate(actions)))[0]
        results = [env.step(dict(zip(AGENTS, actions, strict=True)))[0] for env in (everyone, bot_only)]
    with pytest.raises(ValueError, match="observed_agents"):
        make_env(observations="cogrid", observed_agents=("chef_2",))


def _plain(result):
    return json.dumps(result, default=lambda v: np.asarray(v).tolist(), sort_keys=True)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    observations=st.sampled_from(["compact", "cogrid"]),
    told=st.sampled_from([(), ("chef_1",), ("chef_0",), AGENTS]),
    change_at=st.integers(1, 30),
    seed=st.integers(0, 2**16),
)
def test_set_observed_agents_builds_only_those_seats_and_changes_nothing_else(
    observations, told, change_at, seed
):
    """Seats a runtime does not name get zeros; everything else (the named seats' observations,
    rewards, flags, infos, the state) is what an env observing everyone gives; a seat named
    mid-episode gets its current observation back at once."""
    everyone = make_env(observations=observations)
    watched = make_env(observations=observations)
    assert watched.set_observed_agents(frozenset(told)) == {}  # between episodes: nothing to give
    rng = random.Random(seed)
    full, _ = everyone.reset(seed=seed)
    part, _ = watched.reset(seed=seed)
    for step in range(40):
        for agent in AGENTS:
            if agent in told:
                assert np.array_equal(part[agent], full[agent]), (step, agent)
            else:
                assert not np.asarray(part[agent]).any(), (step, agent)
                assert part[agent].shape == full[agent].shape
                assert watched.observation_space(agent).contains(part[agent])
        if step == change_at:  # a bot takes over the other seats: their observation comes back now
            fresh = watched.set_observed_agents(frozenset(AGENTS))
            assert sorted(fresh) == sorted(a for a in AGENTS if a not in told)
            for agent, value in fresh.items():
                assert np.array_equal(value, full[agent])
            told = AGENTS
        actions = {agent: rng.randrange(7) for agent in AGENTS}
        full_result = everyone.step(actions)
        part_result = watched.step(actions)
        assert _plain(part_result[1:]) == _plain(full_result[1:])  # rewards, flags, infos
        assert watched.state_hash() == everyone.state_hash()
        full, part = full_result[0], part_result[0]
    with pytest.raises(ValueError, match="set_observed_agents"):
        watched.set_observed_agents(frozenset({"chef_2"}))
