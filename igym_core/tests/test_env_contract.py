"""The env contract: the Gymnasium adapter, as_parallel_env, factories named by string, check_env_contract."""

from __future__ import annotations

import functools
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils import seeding
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo import ParallelEnv as PettingZooParallelEnv
from pettingzoo.utils import aec_to_parallel, parallel_to_aec

from igym_core.envs import (
    GymnasiumParallelEnv,
    ParallelEnv,
    as_parallel_env,
    callable_ref,
    resolve_callable,
    unwrap_env,
)
from igym_core.errors import ConfigError, EnvContractError
from igym_core.testing import EnvContractReport, check_env_contract
from igym_core.testing.env_contract import _diff

# --- environments used by the tests -------------------------------------------------------------


class Duel:
    """Two racers on a line, written to the parallel API by hand (no PettingZoo base class).

    Each step an agent moves by its action (-1, 0, +1) plus a random drift; reaching ``GOAL`` ends
    its episode (the other races on), and everyone is truncated after ``MAX_STEPS``. ``quirks`` turn
    on one contract violation each, for the tests that check ``check_env_contract`` catches it.
    """

    GOAL = 8
    MAX_STEPS = 20

    def __init__(self, **quirks: bool) -> None:
        unknown = set(quirks) - {
            "global_random",
            "ignore_seed",
            "extra_reward_key",
            "int_flags",
            "keep_finished",
            "float_obs",
        }
        assert not unknown, unknown
        self.quirks = quirks
        self.possible_agents = ["left", "right"]
        self.agents: list[str] = []
        self.positions = np.zeros(2, dtype=np.int64)
        self.t = 0
        self.rng = np.random.default_rng(0 if quirks.get("ignore_seed") else None)
        self._observation_space = gymnasium.spaces.Box(0, self.MAX_STEPS, shape=(3,), dtype=np.int64)
        self._action_space = gymnasium.spaces.Discrete(3)

    def action_space(self, agent: str) -> gymnasium.Space[Any]:
        return self._action_space

    def observation_space(self, agent: str) -> gymnasium.Space[Any]:
        return self._observation_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        if seed is not None and not self.quirks.get("ignore_seed"):
            self.rng = np.random.default_rng(seed)
        self.positions = self.rng.integers(0, 3, size=2)
        self.t = 0
        self.agents = list(self.possible_agents)
        return {a: self._observe(a) for a in self.agents}, {a: {} for a in self.agents}

    def _drift(self) -> int:
        if self.quirks.get("global_random"):
            return int(random.random() < 0.3)
        return int(self.rng.random() < 0.3)

    def _observe(self, agent: str) -> np.ndarray:
        i = self.possible_agents.index(agent)
        dtype = np.float64 if self.quirks.get("float_obs") else np.int64
        return np.array([self.positions[i], self.positions[1 - i], self.t], dtype=dtype)

    def step(self, actions: dict[str, Any]) -> Any:
        acting = list(self.agents)
        self.t += 1
        for agent in acting:
            i = self.possible_agents.index(agent)
            move = int(actions[agent]) - 1 + self._drift()
            self.positions[i] = min(max(self.positions[i] + move, 0), self.GOAL)
        rewards: dict[str, Any] = {}
        terminations: dict[str, Any] = {}
        truncations: dict[str, Any] = {}
        for agent in acting:
            reached = bool(self.positions[self.possible_agents.index(agent)] >= self.GOAL)
            rewards[agent] = 1.0 if reached else -0.01
            terminations[agent] = reached
            truncations[agent] = self.t >= self.MAX_STEPS and not reached
        observations = {a: self._observe(a) for a in acting}
        infos = {a: {"position": int(self.positions[self.possible_agents.index(a)])} for a in acting}
        if not self.quirks.get("keep_finished"):
            self.agents = [a for a in acting if not (terminations[a] or truncations[a])]
        elif all(terminations[a] or truncations[a] for a in acting):
            self.agents = []  # ends the episode, but keeps agents that finished earlier until then
        if self.quirks.get("extra_reward_key"):
            rewards["referee"] = 0.0
        if self.quirks.get("int_flags"):
            terminations = {a: int(v) for a, v in terminations.items()}
        return observations, rewards, terminations, truncations, infos

    def render(self) -> None:
        return None


class RollbackDuel(Duel):
    """``Duel`` with a full state: positions, step count, live agents and the generator's state."""

    def get_state(self) -> dict[str, Any]:
        return {
            "positions": self.positions.copy(),
            "t": self.t,
            "agents": list(self.agents),
            "rng": self.rng.bit_generator.state,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.positions = state["positions"].copy()
        self.t = state["t"]
        self.agents = list(state["agents"])
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]

    def state_hash(self) -> str:
        return _sha256([self.positions.tolist(), self.t, self.agents, self.rng.bit_generator.state])


def _sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


class CounterHashDuel(RollbackDuel):
    """The predecessor's bug: the hash covers the step counter, not the game."""

    def state_hash(self) -> str:
        return _sha256(self.t)


class LeftOnlyHashDuel(RollbackDuel):
    """The hash forgets the second player."""

    def state_hash(self) -> str:
        return _sha256([int(self.positions[0]), self.t, self.agents, self.rng.bit_generator.state])


class AliasingStateDuel(RollbackDuel):
    """get_state hands out the live positions array, which step() then changes in place."""

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "positions": self.positions}


class GetStateOnlyDuel(Duel):
    def get_state(self) -> dict[str, Any]:
        return {"positions": self.positions.copy(), "t": self.t}


class CoinMatch(PettingZooParallelEnv):
    """A PettingZoo parallel env: two players guess a seeded coin for ten rounds."""

    metadata = {"name": "coin_match_v0", "render_modes": []}
    ROUNDS = 10

    def __init__(self) -> None:
        self.possible_agents = ["player_0", "player_1"]
        self.agents = []
        self.render_mode = None
        self.np_random, _ = seeding.np_random(None)
        self.round = 0
        self.coin = 0

    def observation_space(self, agent: str) -> gymnasium.Space[Any]:
        return gymnasium.spaces.MultiDiscrete([2, self.ROUNDS + 1])

    def action_space(self, agent: str) -> gymnasium.Space[Any]:
        return gymnasium.spaces.Discrete(2)

    def _observations(self) -> dict[str, np.ndarray]:
        return {a: np.array([self.coin, self.round], dtype=np.int64) for a in self.agents}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        self.agents = list(self.possible_agents)
        self.round = 0
        self.coin = int(self.np_random.integers(2))
        return self._observations(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> Any:
        self.round += 1
        self.coin = int(self.np_random.integers(2))
        rewards = {a: float(int(actions[a]) == self.coin) for a in self.agents}
        observations = self._observations()
        done = self.round >= self.ROUNDS
        terminations = dict.fromkeys(self.agents, False)
        truncations = dict.fromkeys(self.agents, done)
        infos = {a: {} for a in self.agents}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> None:
        return None


class Walker(gymnasium.Env[np.ndarray, int]):
    """A single-agent gymnasium env with rollback methods: a seeded random walk."""

    observation_space = gymnasium.spaces.Box(-100.0, 100.0, shape=(1,), dtype=np.float64)
    action_space = gymnasium.spaces.Discrete(3)
    metadata = {"render_modes": ["ansi"]}

    def __init__(self) -> None:
        self.x = 0.0
        self.t = 0
        self.render_mode = "ansi"

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.x = float(self.np_random.normal())
        self.t = 0
        return np.array([self.x]), {"t": 0}

    def step(self, action: int) -> Any:
        self.t += 1
        self.x = float(np.clip(self.x + (int(action) - 1) + self.np_random.normal(0, 0.1), -100, 100))
        terminated = abs(self.x) >= 5
        truncated = self.t >= 30
        return np.array([self.x]), -abs(self.x), np.bool_(terminated), truncated, {"t": self.t}

    def render(self) -> str:
        return f"x={self.x:.2f}"

    def get_state(self) -> dict[str, Any]:
        return {"x": self.x, "t": self.t, "rng": self.np_random.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        self.x, self.t = state["x"], state["t"]
        self.np_random.bit_generator.state = state["rng"]

    def state_hash(self) -> str:
        return _sha256([self.x, self.t, self.np_random.bit_generator.state])


class OldGymEnv:
    """Looks single-agent but is not a gymnasium.Env (the old ``gym`` API)."""

    action_space = gymnasium.spaces.Discrete(2)

    def reset(self) -> int:
        return 0

    def step(self, action: int) -> tuple[int, float, bool, dict[str, Any]]:
        return 0, 0.0, False, {}


def make_cartpole() -> gymnasium.Env[Any, Any]:
    return gymnasium.make("CartPole-v1")


# --- the adapter --------------------------------------------------------------------------------


def test_adapter_follows_the_parallel_api_through_an_episode() -> None:
    raw = Walker()
    env = GymnasiumParallelEnv(raw, agent_id="walker")
    assert isinstance(env, ParallelEnv)
    assert env.possible_agents == ["walker"]
    assert env.agents == []
    observations, infos = env.reset(seed=3)
    assert list(observations) == ["walker"] and infos == {"walker": {"t": 0}}
    assert env.agents == ["walker"]
    assert env.action_space("walker") is raw.action_space
    assert env.observation_space("walker") is raw.observation_space
    assert env.render() == raw.render()
    assert env.metadata == Walker.metadata and env.render_mode == "ansi"
    assert unwrap_env(env) is raw
    steps = 0
    while env.agents:
        observations, rewards, terminations, truncations, infos = env.step({"walker": 2})
        steps += 1
        assert set(observations) == set(rewards) == set(terminations) == set(truncations) == {"walker"}
        # Walker returns a numpy bool: the adapter hands out plain bools.
        assert type(terminations["walker"]) is bool and type(truncations["walker"]) is bool
        assert env.agents == ([] if terminations["walker"] or truncations["walker"] else ["walker"])
    assert steps <= 30
    with pytest.raises(EnvContractError, match="episode has ended"):
        env.step({"walker": 1})


def test_adapter_names_a_missing_action_and_an_unknown_agent() -> None:
    env = GymnasiumParallelEnv(Walker())
    env.reset(seed=0)
    expected = r"needs an action for 'agent_0'; got actions for \['agent_1'\]"
    with pytest.raises(EnvContractError, match=expected):
        env.step({"agent_1": 0})
    with pytest.raises(EnvContractError, match="has one agent, 'agent_0'; got 'bob'"):
        env.action_space("bob")


def test_adapter_has_state_methods_exactly_when_the_env_does() -> None:
    with_state = GymnasiumParallelEnv(Walker())
    with_state.reset(seed=1)
    state = with_state.get_state()
    assert with_state.state_hash() == with_state.env.state_hash()
    with_state.step({"agent_0": 2})
    with_state.set_state(state)
    assert with_state.env.t == 0
    without = GymnasiumParallelEnv(make_cartpole())
    for name in ("get_state", "set_state", "state_hash"):
        assert hasattr(with_state, name)
        assert not hasattr(without, name)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), actions=st.lists(st.integers(0, 2), min_size=1, max_size=40))
def test_adapter_returns_exactly_what_the_env_returns(seed: int, actions: list[int]) -> None:
    raw, reference = Walker(), Walker()
    env = GymnasiumParallelEnv(raw)
    obs, info = env.reset(seed=seed)
    ref_obs, ref_info = reference.reset(seed=seed)
    assert np.array_equal(obs["agent_0"], ref_obs) and info["agent_0"] == ref_info
    for action in actions:
        if not env.agents:
            break
        obs, rewards, terms, truncs, infos = env.step({"agent_0": action})
        ref_obs, ref_reward, ref_term, ref_trunc, ref_info = reference.step(action)
        assert np.array_equal(obs["agent_0"], ref_obs)
        assert rewards["agent_0"] == ref_reward and infos["agent_0"] == ref_info
        assert terms["agent_0"] is bool(ref_term) and truncs["agent_0"] is bool(ref_trunc)
        assert (env.agents == []) == bool(ref_term or ref_trunc)


# --- as_parallel_env -----------------------------------------------------------------------------


def test_parallel_envs_are_returned_as_they_are_and_gymnasium_envs_adapted() -> None:
    duel, coins = Duel(), CoinMatch()
    assert as_parallel_env(duel) is duel
    assert as_parallel_env(coins) is coins
    assert unwrap_env(coins) is coins
    raw = make_cartpole()
    adapted = as_parallel_env(raw, agent_id="pole")
    assert isinstance(adapted, GymnasiumParallelEnv) and adapted.possible_agents == ["pole"]
    assert unwrap_env(adapted) is raw
    assert as_parallel_env(adapted) is adapted


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: parallel_to_aec(CoinMatch()), r"AEC \(turn-based\) env.*pettingzoo\.utils\.aec_to_parallel"),
        (lambda: Duel, r"returned the class .*Duel, not an environment\. Return an instance: Duel\(\.\.\.\)"),
        (lambda: OldGymEnv(), r"does not derive from gymnasium\.Env.*Derive the class from gymnasium\.Env"),
        (lambda: {"a": 1}, r"found a builtins\.dict, which lacks possible_agents, reset, step"),
    ],
)
def test_what_is_not_an_env_is_named_with_the_fix(make: Any, expected: str) -> None:
    with pytest.raises(EnvContractError, match=expected):
        as_parallel_env(make())


# --- factories named by strings ------------------------------------------------------------------


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch):
    """resolve_callable may add directories to sys.path and file modules to sys.modules."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("_igym_file_") or name.startswith("igym_test_"):
            del sys.modules[name]


def test_resolve_callable_returns_callables_and_imports_module_attributes() -> None:
    assert resolve_callable(make_cartpole, what="env_factory") is make_cartpole
    assert resolve_callable("os.path:join", what="env_factory") is __import__("os").path.join
    assert resolve_callable("collections:OrderedDict.fromkeys", what="x")(["a"]) == {"a": None}
    assert resolve_callable("gymnasium.envs.classic_control:CartPoleEnv", what="x").__name__ == "CartPoleEnv"


def test_resolve_callable_imports_files_relative_to_base_dir(tmp_path: Path, isolated_imports: None) -> None:
    (tmp_path / "helpers_for_envs.py").write_text("SIZE = 7\n")
    (tmp_path / "envs.py").write_text(
        "import helpers_for_envs\n"
        "LOADS = []\n"
        "LOADS.append(1)\n"
        "def make(): return helpers_for_envs.SIZE\n"
        "class Maker:\n"
        "    @staticmethod\n"
        "    def build(): return 'built'\n"
    )
    make = resolve_callable("envs.py:make", what="env_factory", base_dir=tmp_path)
    assert make() == 7
    assert resolve_callable("envs.py:Maker.build", what="env_factory", base_dir=tmp_path)() == "built"
    # Imported once: the same function object, module code run once.
    assert resolve_callable(f"{tmp_path / 'envs.py'}:make", what="env_factory") is make
    assert sys.modules[make.__module__].LOADS == [1]
    assert callable_ref(make) == f"{tmp_path / 'envs.py'}:make"


def test_resolve_callable_finds_modules_next_to_the_experiment(
    tmp_path: Path, isolated_imports: None
) -> None:
    (tmp_path / "igym_test_envs_module.py").write_text("def make(): return 'ok'\n")
    assert resolve_callable("igym_test_envs_module:make", what="env_factory", base_dir=tmp_path)() == "ok"


@pytest.mark.parametrize(
    ("files", "spec", "expected"),
    [
        ({}, "no_colon_here", r"env_factory: expected 'package\.module:attribute' .*got 'no_colon_here'"),
        ({}, "mod:1bad", r"expected 'package\.module:attribute'"),
        (
            {},
            "igym_test_no_such_module:make",
            r"no module named 'igym_test_no_such_module'.*path/to/igym_test_no_such_module\.py:make",
        ),
        ({}, "missing.py:make", r"no such file .*missing\.py.*relative to the experiment file's directory"),
        (
            {"envs.py": "def make(): pass\ndef other(): pass\n"},
            "envs.py:mak",
            r"has no attribute 'mak'.*It defines: make, other",
        ),
        (
            {"envs.py": "SIZE = 3\n"},
            "envs.py:SIZE",
            r"'envs\.py:SIZE' names an object of type int, not a function or class",
        ),
        (
            {"envs.py": "x = 1 / 0\n"},
            "envs.py:make",
            r"raised ZeroDivisionError: division by zero at .*envs\.py:1\. Fix the error",
        ),
        (
            {"envs.py": "import igym_test_absent_dep\n"},
            "envs.py:make",
            r"imports 'igym_test_absent_dep', which is not installed.*uv add igym_test_absent_dep",
        ),
    ],
)
def test_resolve_callable_errors_name_the_setting_the_cause_and_the_fix(
    tmp_path: Path, isolated_imports: None, files: dict[str, str], spec: str, expected: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=expected) as caught:
        resolve_callable(spec, what="env_factory", base_dir=tmp_path)
    assert str(caught.value).startswith("env_factory: ")


def test_resolve_callable_rejects_what_is_neither_callable_nor_a_string() -> None:
    expected = r"env_factory: expected a function, a class or a string .* got int 3"
    with pytest.raises(ConfigError, match=expected):
        resolve_callable(3, what="env_factory")  # type: ignore[arg-type]


_ANONYMOUS = {"lambda": lambda: None}


class _Callable:
    def __call__(self) -> None:
        return None

    def method(self) -> None:
        return None


def test_callable_ref_names_importable_callables_and_describes_the_rest() -> None:
    module = __name__

    def inner() -> None:
        return None

    assert callable_ref("pkg.mod:make") == "pkg.mod:make"
    assert callable_ref(make_cartpole) == f"{module}:make_cartpole"
    assert callable_ref(Duel) == f"{module}:Duel"
    assert callable_ref(Duel.step) == f"{module}:Duel.step"
    assert callable_ref(_ANONYMOUS["lambda"]) == f"<lambda> in module {module}"
    assert callable_ref(inner) == (
        "test_callable_ref_names_importable_callables_and_describes_the_rest.<locals>.inner "
        f"in module {module}"
    )
    assert callable_ref(_Callable()) == f"{module}:_Callable instance"
    assert callable_ref(_Callable().method) == f"{module}:_Callable.method bound to a _Callable"
    assert callable_ref(functools.partial(make_cartpole)) == f"functools.partial({module}:make_cartpole, ...)"
    assert callable_ref(resolve_callable("os.path:join", what="x")) == "posixpath:join"


# --- check_env_contract: what passes ------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MountainCar-v0"])
def test_gymnasium_envs_meet_the_contract(env_id: str) -> None:
    report = check_env_contract(lambda: gymnasium.make(env_id))
    assert isinstance(report, EnvContractReport)
    assert report.agents == ("agent_0",) and report.adapted
    assert report.steps_run == 100 and report.episodes_run >= 1
    assert isinstance(report.action_spaces["agent_0"], gymnasium.spaces.Discrete)
    assert isinstance(report.observation_spaces["agent_0"], gymnasium.spaces.Box)
    assert not report.has_state_methods and not report.state_checked


def test_cartpole_runs_several_episodes_with_the_seeds_in_turn() -> None:
    report = check_env_contract(make_cartpole, seeds=(3, 4, 5), steps=150)
    assert report.episodes_run > 3  # random actions end CartPole episodes within ~40 steps


def test_a_factory_can_be_named_by_a_string() -> None:
    report = check_env_contract("gymnasium.envs.classic_control.cartpole:CartPoleEnv", steps=30)
    assert report.steps_run == 30


def test_a_pettingzoo_parallel_env_meets_the_contract() -> None:
    report = check_env_contract(CoinMatch, steps=35)
    assert report.agents == ("player_0", "player_1") and not report.adapted
    assert report.episodes_run == 4  # ten rounds each
    assert isinstance(report.observation_spaces["player_1"], gymnasium.spaces.MultiDiscrete)


def test_an_aec_env_converted_with_aec_to_parallel_meets_the_contract() -> None:
    report = check_env_contract(lambda: aec_to_parallel(parallel_to_aec(CoinMatch())), steps=20)
    assert report.agents == ("player_0", "player_1")


def test_a_handwritten_env_with_full_rollback_meets_the_contract() -> None:
    report = check_env_contract(RollbackDuel, steps=120)
    assert report.agents == ("left", "right")
    assert report.has_state_methods and report.has_state_hash
    assert report.state_checked and report.state_hash_checked
    assert report.episodes_run >= 6  # at most 20 steps per episode


def test_a_gymnasium_env_with_rollback_meets_the_contract_through_the_adapter() -> None:
    report = check_env_contract(Walker, steps=80)
    assert report.adapted and report.has_state_methods and report.state_checked


@settings(max_examples=15, deadline=None)
@given(
    seeds=st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=3),
    steps=st.integers(1, 60),
)
def test_rollback_duel_meets_the_contract_for_any_seeds_and_length(seeds: list[int], steps: int) -> None:
    report = check_env_contract(RollbackDuel, seeds=seeds, steps=steps)
    assert report.steps_run == steps
    assert 1 <= report.episodes_run <= steps
    assert report.state_checked


def test_every_env_the_check_builds_is_closed() -> None:
    built: list[Any] = []

    class Closable(RollbackDuel):
        closed = False

        def __init__(self) -> None:
            super().__init__()
            built.append(self)

        def close(self) -> None:
            self.closed = True

    check_env_contract(Closable, steps=10)
    assert len(built) == 4  # two twins, one to save a state from, one to restore it into
    assert all(env.closed for env in built)


# --- check_env_contract: what it catches --------------------------------------------------------


def _problems(factory: Any, **kwargs: Any) -> str:
    with pytest.raises(EnvContractError) as caught:
        check_env_contract(factory, **kwargs)
    message = str(caught.value)
    assert message.startswith("The environment does not meet igym's environment contract")
    return message


def test_catches_an_env_that_uses_the_global_random() -> None:
    message = _problems(lambda: Duel(global_random=True))
    assert "two fresh envs reset with the same seeds and fed the same actions diverged at episode 1" in (
        message
    )
    assert "never from the global random / np.random module" in message
    # Only the first divergence is reported: once the twins differ, comparing them says nothing new.
    assert message.count("diverged") == 1
    assert "(1 problem)" in message  # the failed seed replay has the same cause: not reported again


def test_catches_an_env_that_ignores_the_seed() -> None:
    message = _problems(lambda: Duel(ignore_seed=True))
    assert "reset(seed=0) on an env that had been played did not restart the episode" in message
    assert "do not ignore the seed argument" in message


def test_catches_a_gymnasium_env_that_ignores_the_seed() -> None:
    class Unseeded(Walker):
        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
            return super().reset(seed=None, options=options)

    message = _problems(Unseeded)
    assert "diverged" in message or "did not restart the episode" in message


def test_catches_wrong_dict_keys() -> None:
    message = _problems(lambda: Duel(extra_reward_key=True))
    assert "step() must return rewards keyed by exactly the agents that acted ['left', 'right']" in message
    assert "found keys ['left', 'referee', 'right']" in message


def test_catches_flags_that_are_not_bools() -> None:
    message = _problems(lambda: Duel(int_flags=True))
    assert "terminations['left'] must be a bool; found int 0" in message
    assert "Return bool(...) flags" in message


def test_catches_observations_outside_their_space() -> None:
    message = _problems(lambda: Duel(float_obs=True))
    assert "is not in observation_space('left')" in message and "dtype=float64" in message


def test_catches_agents_that_stay_after_they_finish() -> None:
    message = _problems(lambda: Duel(keep_finished=True), steps=200)
    assert "env.agents must be the agents that acted minus those whose termination" in message


def test_catches_get_state_without_set_state() -> None:
    message = _problems(GetStateOnlyDuel)
    assert "The env has get_state() but no set_state(); rollback needs both" in message


def test_catches_a_state_hash_that_covers_only_a_counter() -> None:
    message = _problems(CounterHashDuel)
    assert "state_hash() gave the same value" in message
    assert "so the states differ" in message


def test_catches_a_state_hash_that_misses_a_player() -> None:
    message = _problems(LeftOnlyHashDuel)
    assert "state_hash() gave the same value" in message and "observations" in message


def test_catches_get_state_that_returns_live_arrays() -> None:
    message = _problems(AliasingStateDuel)
    assert "get_state() must return a copy (not a reference to live arrays)" in message


def test_catches_rollback_methods_hidden_by_gymnasium_wrappers() -> None:
    message = _problems(lambda: gymnasium.wrappers.TimeLimit(Walker(), 25))
    assert "Walker defines get_state(), but the wrappers around it (TimeLimit" in message


def test_catches_a_factory_that_returns_one_env_twice() -> None:
    env = Duel()
    message = _problems(lambda: env)
    assert "env_factory() returned the same object twice" in message


def test_catches_a_factory_that_raises_and_an_aec_env() -> None:
    def broken() -> Any:
        raise RuntimeError("no display.")

    expected = "env_factory() (building the first env) raised RuntimeError: no display. Expected"
    assert expected in _problems(broken)
    assert "pettingzoo.utils.aec_to_parallel" in _problems(lambda: parallel_to_aec(CoinMatch()))


def test_catches_bad_agent_lists() -> None:
    class Twins(Duel):
        def __init__(self) -> None:
            super().__init__()
            self.possible_agents = ["left", "left"]

    class Nobody(Duel):
        def __init__(self) -> None:
            super().__init__()
            self.possible_agents = []

    assert "possible_agents must not repeat an agent; found ['left']" in _problems(Twins)
    assert "possible_agents must be a non-empty list of agent ids; found []" in _problems(Nobody)


def test_reports_every_problem_at_once() -> None:
    message = _problems(lambda: Duel(int_flags=True, extra_reward_key=True, float_obs=True))
    assert "(3 problems)" in message
    for fragment in ("must be a bool", "keyed by exactly", "not in observation_space"):
        assert fragment in message


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="seeds must be a non-empty sequence"):
        check_env_contract(Duel, seeds=())
    with pytest.raises(ValueError, match="steps must be 1 or more"):
        check_env_contract(Duel, steps=0)


# --- exact comparison ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    dtype=st.sampled_from([np.float32, np.float64, np.int64, np.uint8]),
    data=st.data(),
)
def test_diff_finds_the_element_that_differs(shape: list[int], dtype: Any, data: Any) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    left = (rng.random(shape) * 100).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        left.flat[0] = np.nan  # NaN equals NaN for determinism
    right = left.copy()
    assert _diff({"a": left}, {"a": right}, "obs") is None
    index = tuple(data.draw(st.integers(0, n - 1)) for n in shape)
    right[index] = right[index] + 1 if not np.isnan(right[index]) else 0
    difference = _diff({"a": left}, {"a": right}, "obs")
    assert difference is not None and difference.startswith(f"obs['a']{list(index)}: ")


def test_diff_compares_types_containers_and_plain_objects() -> None:
    class Thing:
        def __init__(self, value: int) -> None:
            self.value = value

    assert _diff(np.zeros(2, np.float32), np.zeros(2, np.float64), "o") == "o: float32[2] vs float64[2]"
    assert _diff({"a": 1}, {"b": 1}, "o") == "o: keys ['a'] vs ['b']"
    assert _diff([1, 2], [1, 3], "o") == "o[1]: 2 vs 3"
    assert _diff(1, 1.0, "o") == "o: int 1 vs float 1.0"
    assert _diff(Thing(1), Thing(1), "o") is None  # identity equality would call these different
    assert _diff(Thing(1), Thing(2), "o") == "o['value']: 1 vs 2"
    assert _diff(float("nan"), float("nan"), "o") is None
