"""The Slime Volleyball environment: the contract, determinism, the state API, and the physics."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from igym_core.testing import check_env_contract
from igym_slime.env import (
    AGENTS,
    GROUND_Y,
    NET_WIDTH,
    SERVE_DELAY_STEPS,
    SLIME_RADIUS,
    SlimeVolleyEnv,
    make_env,
    mirror_action,
    mirror_observation,
)
from igym_slime.wrappers import NumpyObservations, observation_matrix


def random_actions(rng: random.Random) -> dict[str, int]:
    return {agent: rng.randrange(6) for agent in AGENTS}


def trajectory(seed: int, steps: int, action_seed: int = 0) -> list[tuple]:
    env = SlimeVolleyEnv()
    rng = random.Random(action_seed)
    rows = [env.reset(seed=seed)]
    for _ in range(steps):
        if not env.agents:
            rows.append(env.reset())
        rows.append(env.step(random_actions(rng)))
    return rows


def test_the_env_meets_the_contract_with_state_and_hash():
    report = check_env_contract(make_env, seeds=(0, 1, 2), steps=600)
    assert report.agents == ("left", "right")
    assert report.has_state_methods and report.state_checked and report.state_hash_checked


def test_short_episodes_meet_the_contract_across_resets():
    report = check_env_contract(lambda: SlimeVolleyEnv(lives=1, max_steps=120), steps=500)
    assert report.episodes_run > 3


def test_the_numpy_wrapper_meets_the_contract_in_both_frames():
    for own_frame in (False, True):
        report = check_env_contract(lambda own=own_frame: NumpyObservations(own_frame=own), steps=300)
        assert report.observation_spaces["left"].dtype == np.float32


def test_same_seed_same_game_and_other_seeds_other_serves():
    assert trajectory(7, 800) == trajectory(7, 800)
    first_serves = {SlimeVolleyEnv().reset(seed=s)[0]["left"][6:8] for s in range(20)}
    assert len(first_serves) == 20
    # Serves go both ways.
    assert {vx > 0 for vx, _vy in first_serves} == {True, False}


def test_reset_without_seed_continues_the_stream():
    env = SlimeVolleyEnv()
    env.reset(seed=3)
    a = env.reset()[0]
    env.reset(seed=3)
    assert env.reset()[0] == a


def test_the_core_runs_without_numpy():
    """The env must run under Pyodide without numpy: importing and playing it loads no numpy."""
    code = (
        "import sys\n"
        "from igym_slime.env import SlimeVolleyEnv\n"
        "from igym_slime.bots import scripted_policy\n"
        "env = SlimeVolleyEnv(); obs, _ = env.reset(seed=1)\n"
        "for _ in range(300):\n"
        "    obs, *_ = env.step({a: scripted_policy(obs[a]) for a in env.agents})\n"
        "    if not env.agents: obs, _ = env.reset()\n"
        "env.set_state(env.get_state()); env.state_hash()\n"
        "assert 'numpy' not in sys.modules and 'gymnasium' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_state_round_trips_through_json_and_reproduces_the_future():
    env = SlimeVolleyEnv()
    env.reset(seed=11)
    rng = random.Random(1)
    for _ in range(250):
        env.step(random_actions(rng))
    saved = json.loads(json.dumps(env.get_state()))
    digest = env.state_hash()
    actions = [random_actions(rng) for _ in range(400)]
    future = []
    for a in actions:
        if not env.agents:
            break
        future.append(env.step(a))
    other = SlimeVolleyEnv()
    other.set_state(saved)
    assert other.state_hash() == digest
    assert [other.step(a) for a in actions[: len(future)]] == future


def test_state_hash_is_stable_and_covers_every_part_of_the_state():
    env = SlimeVolleyEnv()
    env.reset(seed=5)
    base = env.state_hash()
    assert base == env.state_hash() and len(base) == 64
    state = env.get_state()
    variants = {
        "ball": {**state, "ball": [state["ball"][0] + 1e-9, *state["ball"][1:]]},
        "slimes": {**state, "slimes": [[-11.0, *state["slimes"][0][1:]], state["slimes"][1]]},
        "lives": {**state, "lives": [4, 5]},
        "steps": {**state, "steps": 1},
        "rng": {**state, "rng": state["rng"] + 1},
        "serve_delay": {**state, "serve_delay": 3},
        "agents": {**state, "agents": []},
    }
    for part, changed in variants.items():
        env.set_state(changed)
        assert env.state_hash() != base, part
    env.set_state(state)
    assert env.state_hash() == base
    with pytest.raises(ValueError, match="get_state"):
        env.set_state({"ball": [0, 0, 0, 0]})


def test_a_point_costs_a_life_and_rewards_plus_and_minus_one():
    env = SlimeVolleyEnv(lives=2)
    env.reset(seed=0)
    state = env.get_state()
    # Drop the ball on the left side, away from the left slime.
    env.set_state({**state, "serve_delay": 0, "ball": [-20.0, GROUND_Y + 0.6, 0.0, -10.0]})
    _obs, rewards, terminations, truncations, infos = env.step({})
    assert rewards == {"left": -1.0, "right": 1.0}
    assert infos["left"] == {"lives": 1, "opponent_lives": 2}
    assert not any(terminations.values()) and not any(truncations.values())
    assert env.serve_delay == SERVE_DELAY_STEPS and env.ball[0] == 0.0  # served again from the middle
    env.set_state({**env.get_state(), "serve_delay": 0, "ball": [-20.0, GROUND_Y + 0.6, 0.0, -10.0]})
    _obs, rewards, terminations, _tr, _infos = env.step({})
    assert terminations == {"left": True, "right": True} and env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def test_the_episode_is_truncated_at_max_steps():
    env = SlimeVolleyEnv(max_steps=10)
    env.reset(seed=0)
    for _ in range(9):
        assert not any(env.step({})[3].values())
    _o, _r, terminations, truncations, _i = env.step({})
    assert truncations == {"left": True, "right": True} and not any(terminations.values())


def test_slimes_move_jump_land_and_stay_in_their_halves():
    env = SlimeVolleyEnv()
    obs, _ = env.reset(seed=0)
    x0 = obs["left"][0]
    obs = env.step({"left": 5, "right": 1})[0]  # left: right+jump, right: left
    assert obs["left"][0] > x0 and obs["left"][1] > GROUND_Y and obs["left"][3] > 0
    assert obs["right"][0] < 12.0 and obs["right"][1] == GROUND_Y
    peak = 0.0
    for _ in range(60):
        obs = env.step({"left": 2, "right": 1})[0]
        peak = max(peak, obs["left"][1])
    assert 3.5 < peak < 6.0 and obs["left"][1] == GROUND_Y  # a jump of about 3 units, and down again
    inner = NET_WIDTH / 2 + SLIME_RADIUS
    assert obs["left"][0] == -inner and obs["right"][0] == inner  # pressed against the net
    for _ in range(80):
        obs = env.step({"left": 1, "right": 2})[0]
    assert obs["left"][0] == -(24 - SLIME_RADIUS) and obs["right"][0] == 24 - SLIME_RADIUS


def test_the_ball_bounces_off_a_slime_the_net_and_the_walls():
    env = SlimeVolleyEnv()
    env.reset(seed=0)
    state = env.get_state()
    # Straight down onto the left slime's top: it goes back up.
    env.set_state({**state, "serve_delay": 0, "ball": [-12.0, GROUND_Y + 2.2, 0.0, -10.0]})
    env.step({})
    assert env.ball[3] > 0 and env.ball[1] > GROUND_Y + SLIME_RADIUS
    # Into the net's left face, low: it comes back.
    env.set_state({**state, "serve_delay": 0, "ball": [-1.5, 2.6, 20.0, 0.0]})
    env.step({})
    assert env.ball[2] < 0 and env.ball[0] < 0
    # Into the right wall: it comes back.
    env.set_state({**state, "serve_delay": 0, "ball": [23.2, 20.0, 20.0, 0.0]})
    env.step({})
    assert env.ball[2] < 0 and env.ball[0] < 23.5


def test_actions_are_checked():
    env = SlimeVolleyEnv()
    env.reset(seed=0)
    env.step({"left": np.int64(5), "right": 0})  # numpy integers (random bots) are fine
    with pytest.raises(ValueError, match=r"0\.\.5"):
        env.step({"left": 6, "right": 0})
    with pytest.raises(ValueError, match=r"0\.\.5"):
        env.step({"left": 1.5, "right": 0})


def test_mirroring_swaps_sides():
    env = SlimeVolleyEnv()
    obs, _ = env.reset(seed=4)
    left, right = obs["left"], obs["right"]
    mirrored = mirror_observation(right)
    assert mirrored[0] == -12.0 and mirrored[8] == 12.0 and mirrored[4] == -right[4]
    assert mirrored[6] == -left[6] and mirrored[7] == left[7]
    assert [mirror_action(a) for a in range(6)] == [0, 2, 1, 3, 5, 4]
    matrix = observation_matrix([left, right])
    assert matrix.dtype == np.float32 and (matrix[:, 0] < 0).all()
    wrapped = NumpyObservations(own_frame=True)
    wobs, _ = wrapped.reset(seed=4)
    assert wobs["right"][0] < 0
    # Both "move right" in their own frame: both move towards the net.
    wobs = wrapped.step({"left": 2, "right": 2})[0]
    assert wobs["left"][0] > -12 and wobs["right"][0] > -12
