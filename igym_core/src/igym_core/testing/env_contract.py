"""``check_env_contract``: does an environment meet igym's environment contract, determinism included?

Use it in an environment package's tests::

    from igym_core.testing import check_env_contract

    def test_my_env_meets_the_contract():
        check_env_contract(make_my_env)

It builds environments with the factory (adapting single-agent Gymnasium envs), steps them with
actions sampled from seeded copies of their action spaces, and collects every violation into one
:class:`~igym_core.errors.EnvContractError` whose lines say what was expected, what was found and how
to fix it. It returns an :class:`EnvContractReport` when the env passes.
"""

from __future__ import annotations

import contextlib
import copy
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import gymnasium
import numpy as np

from igym_core.envs.contract import GymnasiumParallelEnv, as_parallel_env, unwrap_env
from igym_core.envs.factory import resolve_callable
from igym_core.envs.seeding import derive_seed
from igym_core.errors import EnvContractError

__all__ = ["EnvContractReport", "check_env_contract"]

#: Steps replayed after ``reset(seed=s)`` to check that a seed restarts the same episode.
_REPLAY_STEPS = 5
#: Steps replayed after ``set_state`` to check that a restored state reproduces the future.
_RESTORE_STEPS = 20
#: Steps taken before the state is saved, so that it is not just the initial state.
_WARMUP_STEPS = 2

_RESULT_NAMES = ("observations", "rewards", "terminations", "truncations", "infos")

_RANDOMNESS_FIX = (
    "draw all randomness from a generator seeded in reset(seed=...) (self.np_random after "
    "super().reset(seed=seed) in a gymnasium.Env, or np.random.default_rng(seed)), never from the "
    "global random / np.random module, the clock or an unseeded generator"
)
_STATE_FIX = (
    "get_state() must return a copy (not a reference to live arrays) of the full state: positions, "
    "velocities, counters, env.agents and the random generator's state "
    "(self.np_random.bit_generator.state); set_state(state) must restore all of it"
)


@attrs.frozen(kw_only=True)
class EnvContractReport:
    """What :func:`check_env_contract` found in an env that meets the contract."""

    agents: tuple[str, ...]
    """``possible_agents``."""
    action_spaces: Mapping[str, gymnasium.Space[Any]]
    observation_spaces: Mapping[str, gymnasium.Space[Any]]
    adapted: bool
    """The factory returned a single-agent ``gymnasium.Env``, adapted to the parallel API."""
    steps_run: int
    """Steps taken in the main (determinism) run, per env."""
    episodes_run: int
    """Episodes started in the main run."""
    has_state_methods: bool
    """The env has ``get_state`` and ``set_state`` (rollback is possible)."""
    has_state_hash: bool
    state_checked: bool
    """Restoring a saved state into a fresh env and into the same env reproduced the future."""
    state_hash_checked: bool
    """``state_hash`` was equal for equal states and changed whenever the observations did."""


class _Abort(Exception):
    """Ends the current phase of the check (its problem is already recorded)."""


class _Problems:
    """Violations, one line each, at most one per kind (the first occurrence is the useful one)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._kinds: set[str] = set()
        self.first_exception: BaseException | None = None

    def add(self, kind: str, line: str) -> None:
        if kind not in self._kinds:
            self._kinds.add(kind)
            self.lines.append(line)

    def __contains__(self, kind: str) -> bool:
        return kind in self._kinds

    def call(self, kind: str, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call env code; an exception becomes a problem and ends the phase."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if self.first_exception is None:
                self.first_exception = exc
            self.add(kind, f"{what} raised {_exception(exc)}. Expected it to succeed; fix the env.")
            raise _Abort from exc


def check_env_contract(
    env_factory: Callable[[], Any] | str,
    *,
    seeds: Sequence[int] = (0, 1),
    steps: int = 100,
    agent_id: str = "agent_0",
) -> EnvContractReport:
    """Check that the envs ``env_factory`` builds meet the environment contract.

    Args:
        env_factory: builds a fresh env on every call (a function, a class, or a ``module:attr``
            string); a single-agent ``gymnasium.Env`` is adapted as agent ``agent_id``.
        seeds: reset seeds, used in turn: each episode of the main run resets with the next one.
        steps: steps in the main run (across episodes).
        agent_id: the agent id of an adapted single-agent env.

    Checks: ``possible_agents`` (non-empty, unique strings), the spaces (gymnasium spaces), the
    shape of ``reset`` and ``step`` results (dicts keyed by exactly the live / acting agents,
    observations in their spaces, real finite rewards, bool flags, dict infos), that ``agents``
    loses the agents that terminate or are truncated, determinism (two fresh envs with the same
    seeds and actions agree exactly), that ``reset(seed=s)`` restarts the same episode on a used
    env, and, when the env has them, ``get_state``/``set_state`` (both or neither; restoring a
    saved state into a fresh env and into the same env reproduces the future) and ``state_hash``
    (equal for equal states, stable, changes whenever the observations change).

    Raises:
        EnvContractError: listing every violation found.
        ConfigError: ``env_factory`` is a string that cannot be imported.
        ValueError: ``seeds`` is empty or ``steps`` is below 1.
    """
    factory = resolve_callable(env_factory, what="env_factory")
    seeds = tuple(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds must be a non-empty sequence of ints; got {seeds!r}.")
    if steps < 1:
        raise ValueError(f"steps must be 1 or more; got {steps!r}.")
    checker = _Checker(factory, seeds=seeds, steps=steps, agent_id=agent_id)
    try:
        report = checker.run()
    finally:
        checker.close_all()
    problems = checker.problems
    if report is None or problems.lines:
        count = len(problems.lines)
        lines = "\n".join(f"  - {line}" for line in problems.lines)
        raise EnvContractError(
            f"The environment does not meet igym's environment contract "
            f"({count} problem{'s' if count != 1 else ''}):\n{lines}"
        ) from problems.first_exception
    return report


class _Checker:
    def __init__(
        self, factory: Callable[[], Any], *, seeds: tuple[int, ...], steps: int, agent_id: str
    ) -> None:
        self.factory = factory
        self.seeds = seeds
        self.steps = steps
        self.agent_id = agent_id
        self.problems = _Problems()
        self.samplers: dict[str, gymnasium.Space[Any]] = {}
        self.observation_spaces: dict[str, gymnasium.Space[Any]] = {}
        self.has_hash = False
        self.hash_checked = False
        self.hash_seen: dict[Any, tuple[Any, str]] = {}
        self.state_checked = False
        # seed -> (first observation, [(actions, step result), ...]) of an episode started with it
        self.recorded: dict[int, tuple[Any, list[tuple[dict[str, Any], Any]]]] = {}
        self.built: list[Any] = []

    # --- the phases ----------------------------------------------------------------------------
    def run(self) -> EnvContractReport | None:
        try:
            env = self.build("the first env")
            agents, action_spaces = self.check_agents_and_spaces(env)
            twin = self.build("the second env")
        except _Abort:
            return None
        if unwrap_env(env) is unwrap_env(twin):
            self.problems.add(
                "same-object",
                "env_factory() returned the same object twice; expected a new env on every call "
                "(each game needs its own). Build the env inside the factory instead of returning "
                "one made earlier.",
            )
            return None
        has_state = self.check_state_methods(env)
        self.has_hash = callable(getattr(env, "state_hash", None))
        steps_run = episodes = 0
        # A phase that meets a broken env ends early; the later phases still run.
        with contextlib.suppress(_Abort):
            steps_run, episodes = self.run_twins(env, twin)
        with contextlib.suppress(_Abort):
            self.check_reset_replays(env)
        if has_state:
            with contextlib.suppress(_Abort):
                self.check_restore()
        return EnvContractReport(
            agents=tuple(agents),
            action_spaces=action_spaces,
            observation_spaces=dict(self.observation_spaces),
            adapted=isinstance(env, GymnasiumParallelEnv),
            steps_run=steps_run,
            episodes_run=episodes,
            has_state_methods=has_state,
            has_state_hash=self.has_hash,
            state_checked=self.state_checked,
            state_hash_checked=self.hash_checked,
        )

    def build(self, label: str) -> Any:
        raw = self.problems.call("factory", f"env_factory() (building {label})", self.factory)
        self.built.append(raw)
        try:
            return as_parallel_env(raw, agent_id=self.agent_id)
        except EnvContractError as exc:
            self.problems.add("adapt", str(exc))
            raise _Abort from exc

    def close_all(self) -> None:
        for raw in self.built:
            close = getattr(raw, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    close()

    def check_agents_and_spaces(self, env: Any) -> tuple[list[str], dict[str, gymnasium.Space[Any]]]:
        problems = self.problems
        possible = getattr(env, "possible_agents", None)
        if not isinstance(possible, list | tuple) or not possible:
            problems.add(
                "possible-agents",
                f"possible_agents must be a non-empty list of agent ids; found {_short(possible)}. "
                "Set self.possible_agents = ['player_0', 'player_1'] (every seat) in __init__.",
            )
            raise _Abort
        not_str = [a for a in possible if not isinstance(a, str)]
        if not_str:
            problems.add(
                "agent-names",
                f"agent ids must be strings (igym keys seats and data rows by them); found "
                f"{_short(not_str)} in possible_agents. Name agents like 'player_0'.",
            )
        duplicates = sorted({a for a in possible if list(possible).count(a) > 1}, key=repr)
        if duplicates:
            problems.add(
                "agent-unique",
                f"possible_agents must not repeat an agent; found {_short(duplicates)} more than "
                "once. Give every seat its own id.",
            )
        action_spaces: dict[str, gymnasium.Space[Any]] = {}
        kinds = (("action_space", action_spaces), ("observation_space", self.observation_spaces))
        for agent in possible:
            for name, target in kinds:
                try:
                    space = getattr(env, name)(agent)
                except Exception as exc:
                    problems.add(
                        f"{name}-raises",
                        f"{name}({agent!r}) raised {_exception(exc)}; expected the agent's "
                        "gymnasium space. Fix the method.",
                    )
                    continue
                if not isinstance(space, gymnasium.spaces.Space):
                    problems.add(
                        f"{name}-type",
                        f"{name}({agent!r}) must return a gymnasium.spaces.Space; found "
                        f"{type(space).__name__} {_short(space)}. Return e.g. gymnasium.spaces.Discrete(3).",
                    )
                    continue
                target[agent] = space
        if problems.lines:
            raise _Abort
        base = self.seeds[0]
        for agent, space in action_spaces.items():
            sampler = _copy(space)
            sampler.seed(derive_seed("contract-actions", base, agent))
            self.samplers[agent] = sampler
        return list(possible), action_spaces

    def check_state_methods(self, env: Any) -> bool:
        has_get = callable(getattr(env, "get_state", None))
        has_set = callable(getattr(env, "set_state", None))
        if has_get != has_set:
            present, absent = ("get_state", "set_state") if has_get else ("set_state", "get_state")
            self.problems.add(
                "state-pair",
                f"The env has {present}() but no {absent}(); rollback needs both (a runtime would "
                f"silently lose rollback). Add {absent}, or remove {present}.",
            )
            return False
        if not has_get and isinstance(env, GymnasiumParallelEnv):
            inner = getattr(env.env, "unwrapped", env.env)
            if inner is not env.env and callable(getattr(inner, "get_state", None)):
                self.problems.add(
                    "state-hidden",
                    f"{type(inner).__name__} defines get_state(), but the wrappers around it "
                    f"({type(env.env).__name__}, e.g. from gymnasium.make) hide it, so rollback would "
                    "be disabled; those wrappers also keep state of their own (TimeLimit's step "
                    "count). Build the env without wrappers, or give the outermost wrapper "
                    "get_state/set_state/state_hash that cover the wrappers' state too.",
                )
        return has_get and has_set

    def run_twins(self, env: Any, twin: Any) -> tuple[int, int]:
        """The main run: two fresh envs in lockstep, same seeds, same actions."""
        problems = self.problems
        in_sync = True
        steps_run = episodes = 0
        seed_index = 0
        while steps_run < self.steps:
            seed = self.seeds[seed_index % len(self.seeds)]
            seed_index += 1
            episodes += 1
            where = f"episode {episodes} (seed {seed})"
            result = problems.call("reset", f"reset(seed={seed}) in {where}", env.reset, seed=seed)
            observations = self.check_reset_result(env, result, where)
            if in_sync:
                try:
                    twin_result = twin.reset(seed=seed)
                except Exception as exc:
                    problems.add(
                        "twin-raised",
                        f"reset(seed={seed}) on a second fresh env raised {_exception(exc)} "
                        f"although the first did not. Fix: {_RANDOMNESS_FIX}.",
                    )
                    in_sync = False
                else:
                    in_sync = self.compare_twins(result, twin_result, env, twin, f"{where}, reset")
            recording: list[tuple[dict[str, Any], Any]] | None = None
            if seed not in self.recorded:
                recording = []
                self.recorded[seed] = (_copy(observations), recording)
            if self.has_hash:
                self.note_hash(env, observations, f"{where}, after reset")
                if in_sync:
                    self.compare_hashes(env, twin, f"{where}, after reset")
            episode_step = 0
            while env.agents and steps_run < self.steps:
                episode_step += 1
                steps_run += 1
                here = f"{where}, step {episode_step}"
                actions = self.sample_actions(env, here)
                result = problems.call("step", f"step() at {here}", env.step, dict(actions))
                all_done = self.check_step_result(env, actions, result, here)
                if recording is not None and len(recording) < _REPLAY_STEPS:
                    recording.append((_copy(actions), _copy(result)))
                if in_sync:
                    try:
                        twin_result = twin.step(_copy(actions))
                    except Exception as exc:
                        problems.add(
                            "twin-raised",
                            f"step() on a second fresh env raised {_exception(exc)} at {here}, "
                            f"although the first did not. Fix: {_RANDOMNESS_FIX}.",
                        )
                        in_sync = False
                    else:
                        in_sync = self.compare_twins(result, twin_result, env, twin, here)
                if self.has_hash:
                    self.note_hash(env, result[0], here)
                    if in_sync:
                        self.compare_hashes(env, twin, here)
                if all_done and env.agents:
                    break  # the env keeps finished agents (already reported): start the next episode
        return steps_run, episodes

    def check_reset_replays(self, env: Any) -> None:
        """``reset(seed=s)`` on a used env restarts the episode the first ``reset(seed=s)`` began."""
        if "determinism" in self.problems:
            return  # a non-deterministic env cannot replay either; the cause is already reported
        for seed in dict.fromkeys(self.seeds):
            if seed not in self.recorded:
                result = self.problems.call("reset", f"reset(seed={seed})", env.reset, seed=seed)
                recording: list[tuple[dict[str, Any], Any]] = []
                self.recorded[seed] = (_copy(result[0]), recording)
                while env.agents and len(recording) < _REPLAY_STEPS:
                    actions = self.sample_actions(env, f"seed {seed}")
                    step = self.problems.call("step", f"step() after reset(seed={seed})", env.step, actions)
                    recording.append((_copy(actions), _copy(step)))
            first_obs, recording = self.recorded[seed]
            result = self.problems.call("reset", f"reset(seed={seed}) on a used env", env.reset, seed=seed)
            difference = _diff(first_obs, result[0], "observations")
            for index, (actions, expected) in enumerate(recording, start=1):
                if difference is not None:
                    break
                got = self.problems.call("step", f"step() after reset(seed={seed})", env.step, _copy(actions))
                difference = _diff_result(expected, got)
                if difference is not None:
                    difference = f"step {index}: {difference}"
            if difference is not None:
                self.problems.add(
                    "reset-seed",
                    f"reset(seed={seed}) on an env that had been played did not restart the episode "
                    f"that reset(seed={seed}) started before (same actions): {difference}. Expected a "
                    "seed to fix the whole episode. Fix: in reset(), re-seed every random generator "
                    "when a seed is given (super().reset(seed=seed) in a gymnasium.Env) and reset all "
                    "state; do not ignore the seed argument.",
                )

    def check_restore(self) -> None:
        """Save a state mid-episode, play on, restore it (fresh env and same env), replay the future."""
        problems = self.problems
        origin = self.build("an env to save a state from")
        seed = self.seeds[0]
        problems.call("reset", f"reset(seed={seed})", origin.reset, seed=seed)
        for _ in range(_WARMUP_STEPS):
            if not origin.agents:
                break
            problems.call("step", "step()", origin.step, self.sample_actions(origin, "warm-up"))
        if not origin.agents:  # a very short episode: save the state at its start instead
            problems.call("reset", f"reset(seed={seed})", origin.reset, seed=seed)
        state = problems.call("get-state", "get_state()", origin.get_state)
        saved_agents = list(origin.agents)
        saved_hash = self.hash_of(origin, "when the state was saved") if self.has_hash else None
        future: list[tuple[dict[str, Any], Any]] = []
        while origin.agents and len(future) < min(self.steps, _RESTORE_STEPS):
            actions = self.sample_actions(origin, "after saving the state")
            result = problems.call("step", "step() after get_state()", origin.step, _copy(actions))
            future.append((actions, _copy(result)))
        fresh = self.build("an env to restore a state into")
        other_seed = derive_seed("contract-other", seed)
        problems.call("reset", f"reset(seed={other_seed})", fresh.reset, seed=other_seed)
        for target, label in ((fresh, "a fresh env"), (origin, "the same env")):
            problems.call("set-state", f"set_state() on {label}", target.set_state, state)
            if sorted(target.agents) != sorted(saved_agents):
                problems.add(
                    "restore-agents",
                    f"after set_state() on {label}, env.agents is {_short(list(target.agents))}; expected "
                    f"{_short(saved_agents)}, as when the state was saved. Include env.agents in the state.",
                )
                return
            if self.has_hash and self.hash_of(target, f"after set_state() on {label}") != saved_hash:
                problems.add(
                    "restore-hash",
                    f"state_hash() after set_state() on {label} differs from state_hash() when the state "
                    "was saved; expected equal hashes for equal states. Either set_state misses part of "
                    "the state or the hash covers something get_state() does not; " + _STATE_FIX + ".",
                )
            for index, (actions, expected) in enumerate(future, start=1):
                what = f"step() after set_state() on {label}"
                got = problems.call("step", what, target.step, _copy(actions))
                difference = _diff_result(expected, got)
                if difference is not None:
                    problems.add(
                        "restore-diverged",
                        f"after set_state(state saved mid-episode) on {label}, step {index} with the same "
                        f"actions differed from what followed the save: {difference}. Expected a restored "
                        f"state to reproduce the future exactly (rollback depends on it). Fix: {_STATE_FIX}.",
                    )
                    return
        self.state_checked = True

    # --- checks of single results ------------------------------------------------------------
    def check_reset_result(self, env: Any, result: Any, where: str) -> Any:
        problems = self.problems
        if not (isinstance(result, tuple) and len(result) == 2 and all(isinstance(r, dict) for r in result)):
            problems.add(
                "reset-shape",
                f"reset() must return (observations, infos), two dicts keyed by agent; found "
                f"{_short(result)} at {where}. Return ({{agent: obs, ...}}, {{agent: {{}}, ...}}).",
            )
            raise _Abort
        agents = self.live_agents(env, where)
        if not agents:
            problems.add(
                "reset-no-agents",
                f"env.agents is empty after reset() at {where}; expected the agents that play this "
                "episode. Set self.agents = list(self.possible_agents) in reset().",
            )
            raise _Abort
        observations, infos = result
        for name, values in (("observations", observations), ("infos", infos)):
            if set(values) != set(agents):
                problems.add(
                    f"reset-keys-{name}",
                    f"reset() must return {name} keyed by exactly env.agents {_short(agents)}; found keys "
                    f"{_short(sorted(values, key=repr))} at {where}. Return one entry per live agent.",
                )
        for agent in agents:
            if agent in observations:
                self.check_observation(agent, observations[agent], f"reset() at {where}")
            if agent in infos and not isinstance(infos[agent], dict):
                problems.add(
                    "info-type",
                    f"infos[{agent!r}] must be a dict; found {_short(infos[agent])} at {where}. Return {{}} "
                    "when there is nothing to report.",
                )
        return observations

    def check_step_result(self, env: Any, actions: dict[str, Any], result: Any, where: str) -> bool:
        """Check one step's result; return whether every agent that acted is now done."""
        problems = self.problems
        if not (isinstance(result, tuple) and len(result) == 5 and all(isinstance(r, dict) for r in result)):
            problems.add(
                "step-shape",
                f"step() must return five dicts keyed by agent (observations, rewards, terminations, "
                f"truncations, infos); found {_short(result)} at {where}. A single-agent env must derive "
                "from gymnasium.Env to be adapted.",
            )
            raise _Abort
        acting = list(actions)
        for name, values in zip(_RESULT_NAMES, result, strict=True):
            if set(values) != set(acting):
                problems.add(
                    f"step-keys-{name}",
                    f"step() must return {name} keyed by exactly the agents that acted {_short(acting)}; "
                    f"found keys {_short(sorted(values, key=repr))} at {where}. Return one entry per agent "
                    "that was in env.agents before the step, and no others.",
                )
        observations, rewards, terminations, truncations, infos = result
        for agent in acting:
            if agent in observations:
                self.check_observation(agent, observations[agent], f"step() at {where}")
            if agent in rewards and not _is_real(rewards[agent]):
                problems.add(
                    "reward-type",
                    f"rewards[{agent!r}] must be a finite real number (int or float); found "
                    f"{type(rewards[agent]).__name__} {_short(rewards[agent])} at {where}. Return "
                    "float(reward).",
                )
            for name, flags in (("terminations", terminations), ("truncations", truncations)):
                if agent in flags and not isinstance(flags[agent], bool | np.bool_):
                    problems.add(
                        f"flag-type-{name}",
                        f"{name}[{agent!r}] must be a bool; found {type(flags[agent]).__name__} "
                        f"{_short(flags[agent])} at {where}. Return bool(...) flags.",
                    )
            if agent in infos and not isinstance(infos[agent], dict):
                problems.add(
                    "info-type",
                    f"infos[{agent!r}] must be a dict; found {_short(infos[agent])} at {where}. Return {{}} "
                    "when there is nothing to report.",
                )
        expected = [a for a in acting if not (terminations.get(a) or truncations.get(a))]
        live = self.live_agents(env, where)
        if sorted(live, key=repr) != sorted(expected, key=repr):
            problems.add(
                "agents-shrink",
                f"after step(), env.agents must be the agents that acted minus those whose termination "
                f"or truncation is True: expected {_short(expected)}, found {_short(list(live))} at "
                f"{where}. Remove finished agents from self.agents in step() (and add none mid-episode).",
            )
        return not expected

    def check_observation(self, agent: str, observation: Any, where: str) -> None:
        space = self.observation_spaces[agent]
        try:
            inside = bool(space.contains(observation))
        except Exception:
            inside = False
        if not inside:
            dtype = getattr(observation, "dtype", None)
            shape = getattr(observation, "shape", None)
            found = type(observation).__name__
            if dtype is not None:
                found += f" dtype={dtype} shape={shape}"
            self.problems.add(
                "observation-space",
                f"the observation of {agent!r} from {where} is not in observation_space({agent!r}) = "
                f"{_short(space)}; found {found} {_short(observation)}. Return observations of the space's "
                "dtype and shape, within its bounds (np.asarray(obs, dtype=space.dtype)), or fix the space.",
            )

    def live_agents(self, env: Any, where: str) -> list[str]:
        agents = getattr(env, "agents", None)
        if not isinstance(agents, list | tuple):
            self.problems.add(
                "agents-attr",
                f"env.agents must be a list of the live agents; found {_short(agents)} at {where}. Set "
                "self.agents in reset() and update it in step().",
            )
            raise _Abort
        strangers = [a for a in agents if a not in self.samplers]
        if strangers:
            self.problems.add(
                "agents-unknown",
                f"env.agents holds {_short(strangers)}, which are not in possible_agents "
                f"{_short(list(self.samplers))} at {where}. List every agent in possible_agents.",
            )
            raise _Abort
        return list(agents)

    def sample_actions(self, env: Any, where: str) -> dict[str, Any]:
        return {agent: self.samplers[agent].sample() for agent in self.live_agents(env, where)}

    # --- determinism and hashes ----------------------------------------------------------------
    def compare_twins(self, result: Any, twin_result: Any, env: Any, twin: Any, where: str) -> bool:
        names = ("observations", "infos") if len(result) == 2 else _RESULT_NAMES
        difference = _diff_result(result, twin_result, names)
        twin_agents = list(getattr(twin, "agents", []))
        if difference is None and sorted(env.agents, key=repr) != sorted(twin_agents, key=repr):
            difference = f"env.agents: {_short(list(env.agents))} vs {_short(twin_agents)}"
        if difference is None:
            return True
        self.problems.add(
            "determinism",
            f"two fresh envs reset with the same seeds and fed the same actions diverged at {where}: "
            f"{difference}. Expected identical observations, rewards, flags and infos. Fix: "
            f"{_RANDOMNESS_FIX}.",
        )
        return False

    def hash_of(self, env: Any, where: str) -> Any:
        value = self.problems.call("state-hash", f"state_hash() {where}", env.state_hash)
        if not isinstance(value, int | str | bytes) or isinstance(value, bool):
            self.problems.add(
                "hash-type",
                f"state_hash() must return an int, str or bytes (it is sent between peers); found "
                f"{type(value).__name__} {_short(value)}. Return e.g. hashlib.sha256(...).hexdigest().",
            )
            raise _Abort
        again = self.problems.call("state-hash", f"state_hash() {where}", env.state_hash)
        if again != value:
            self.problems.add(
                "hash-unstable",
                f"state_hash() returned {_short(value)} and then {_short(again)} with no step between "
                f"({where}); expected a pure function of the state. Hash the state's content, not ids, "
                "times or anything state_hash() itself changes.",
            )
        return value

    def compare_hashes(self, env: Any, twin: Any, where: str) -> None:
        mine = self.hash_of(env, where)
        theirs = self.hash_of(twin, where)
        if mine != theirs:
            self.problems.add(
                "hash-equal-states",
                f"two envs in the same state (same seeds and actions, equal observations) gave different "
                f"state_hash() values {_short(mine)} and {_short(theirs)} ({where}). Expected equal hashes "
                "for equal states: hash the state's content with a stable function such as "
                "hashlib.sha256 of a canonical encoding (not id(), object reprs or Python's salted hash()).",
            )
        else:
            self.hash_checked = True

    def note_hash(self, env: Any, observations: Mapping[str, Any], where: str) -> None:
        """Equal hashes must mean equal states: a hash seen before with other observations misses state.

        Only the observations of agents still live are compared: those are computed from the state
        the hash describes (a finished agent's last observation may depend on how it finished).
        """
        value = self.hash_of(env, where)
        live = {agent: observations[agent] for agent in env.agents if agent in observations}
        seen = self.hash_seen.get(value)
        if seen is None:
            self.hash_seen[value] = (_copy(live), where)
            return
        seen_observations, seen_where = seen
        difference = _diff(seen_observations, live, "observations")
        if difference is not None:
            self.problems.add(
                "hash-misses-state",
                f"state_hash() gave the same value {_short(value)} at {seen_where} and at {where}, but the "
                f"observations differ ({difference}), so the states differ. The hash must cover the full "
                "state, or peers will not notice a desync: include every part of the state that step() "
                "and the observations read (every agent's position and velocity, env.agents, counters, "
                "the random generator's state), not just counters.",
            )


# --- helpers ------------------------------------------------------------------------------------


def _exception(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_real(value: Any) -> bool:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(float(value))


def _copy(value: Any) -> Any:
    """A deep copy where possible: envs may reuse and mutate the arrays they return."""
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def _short(value: Any, limit: int = 120) -> str:
    if isinstance(value, np.generic):
        value = value.item()  # 3, not np.int64(3)
    if isinstance(value, np.ndarray):
        text = np.array2string(value, threshold=8, edgeitems=3, max_line_width=10_000)
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _diff_result(expected: Any, got: Any, names: Sequence[str] = _RESULT_NAMES) -> str | None:
    """The first difference between two reset/step results, named like ``rewards['a']: 1 vs 2``."""
    if not (isinstance(got, tuple) and len(got) == len(expected)):
        return f"result {_short(expected)} vs {_short(got)}"
    for name, left, right in zip(names, expected, got, strict=False):
        difference = _diff(left, right, name)
        if difference is not None:
            return difference
    return None


def _diff(left: Any, right: Any, path: str) -> str | None:
    """Where ``left`` and ``right`` first differ (exact comparison, numpy arrays included), or None."""
    if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
        if not (isinstance(left, np.ndarray) and isinstance(right, np.ndarray)):
            return f"{path}: {_short(left)} vs {_short(right)}"
        if left.shape != right.shape or left.dtype != right.dtype:
            return f"{path}: {left.dtype}{list(left.shape)} vs {right.dtype}{list(right.shape)}"
        if left.dtype.kind == "O":
            for index in np.ndindex(left.shape):
                difference = _diff(left[index], right[index], f"{path}{list(index)}")
                if difference is not None:
                    return difference
            return None
        if np.array_equal(left, right, equal_nan=left.dtype.kind in "fc"):
            return None
        unequal = left != right
        if left.dtype.kind in "fc":
            unequal &= ~(np.isnan(left) & np.isnan(right))
        index = tuple(int(i) for i in np.argwhere(unequal)[0]) if unequal.ndim else ()
        return f"{path}{list(index) if index else ''}: {_short(left[index])} vs {_short(right[index])}"
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        if set(left) != set(right):
            return f"{path}: keys {_short(sorted(left, key=repr))} vs {_short(sorted(right, key=repr))}"
        for key in left:
            difference = _diff(left[key], right[key], f"{path}[{key!r}]")
            if difference is not None:
                return difference
        return None
    if type(left) is not type(right):
        return f"{path}: {type(left).__name__} {_short(left)} vs {type(right).__name__} {_short(right)}"
    if isinstance(left, list | tuple):
        if len(left) != len(right):
            return f"{path}: length {len(left)} vs {len(right)}"
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            difference = _diff(a, b, f"{path}[{index}]")
            if difference is not None:
                return difference
        return None
    if isinstance(left, float | np.floating) and math.isnan(left) and math.isnan(right):
        return None
    if type(left).__eq__ is object.__eq__ and hasattr(left, "__dict__"):
        # Objects without their own equality compare by identity; compare what they hold instead.
        return _diff(vars(left), vars(right), path)
    try:
        equal = left == right
        if isinstance(equal, np.ndarray):
            equal = bool(equal.all())
        if bool(equal):
            return None
    except Exception:
        if repr(left) == repr(right):
            return None
    return f"{path}: {_short(left)} vs {_short(right)}"
