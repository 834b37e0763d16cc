"""Test envs for the heavy-env options (observations only for the seats that read them, the step
pool). Loaded by path (``resolve_callable(f"{this file}:Watched")``) in-process and in the step
workers alike."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import numpy as np
from gymnasium import spaces

from igym_core.rendering.objects import Rect

#: The observation of a seat whose observation is not built.
PLACEHOLDER = (-1, -1)


class Watched:
    """Two agents, ``human`` and ``bot``; each action (0-4) adds to its own counter, seeded noise
    adds to the bot's. It builds observations only for the seats named by ``set_observed_agents``
    (the others get ``PLACEHOLDER``) and puts what it was told in every step's info: ``observed``
    (the seats, sorted) and ``told`` (how many calls so far), so that the records show it."""

    metadata = {"name": "watched"}

    def __init__(
        self,
        target: int = 100_000,
        fail_at: int | None = None,
        die_flag: str | None = None,
        hang_at: int | None = None,
    ) -> None:
        self.possible_agents = ["human", "bot"]
        self.agents: list[str] = []
        self.target = target
        self.fail_at = fail_at
        self.die_flag = die_flag
        self.hang_at = hang_at
        self.counters = {"human": 0, "bot": 0}
        self.observed = frozenset(self.possible_agents)
        self.told = 0
        self.steps = 0
        self.rng = np.random.default_rng(0)

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(5)

    def observation_space(self, agent: str) -> spaces.Space:
        return spaces.Box(-1, 10_000_000, shape=(2,), dtype=np.int64)

    def set_observed_agents(self, agents: frozenset[str]) -> dict[str, Any]:
        added = [a for a in self.possible_agents if a in agents and a not in self.observed]
        self.observed = frozenset(agents)
        self.told += 1
        if not self.agents:
            return {}
        return {a: self._obs_of(a) for a in added}

    def _obs_of(self, agent: str) -> np.ndarray:
        if agent not in self.observed:
            return np.array(PLACEHOLDER, dtype=np.int64)
        return np.array([self.counters["human"], self.counters["bot"]], dtype=np.int64)

    def _info(self) -> dict[str, Any]:
        return {"observed": sorted(self.observed), "told": self.told, "pid": os.getpid()}

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        self.agents = list(self.possible_agents)
        self.counters = {"human": 0, "bot": 0}
        self.steps = 0
        self.rng = np.random.default_rng(seed)
        return {a: self._obs_of(a) for a in self.agents}, {a: self._info() for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        self.steps += 1
        if self.fail_at is not None and self.steps >= self.fail_at:
            raise RuntimeError(f"the test env fails at step {self.steps}")
        if self.die_flag is not None and _took(self.die_flag):
            os.kill(os.getpid(), signal.SIGKILL)  # the process stepping it dies
        if self.hang_at is not None and self.steps >= self.hang_at:
            time.sleep(3600)  # the process stepping it stops answering
        for agent, action in actions.items():
            self.counters[agent] += int(action)
        self.counters["bot"] += int(self.rng.integers(0, 3))
        done = any(v >= self.target for v in self.counters.values())
        obs = {a: self._obs_of(a) for a in self.agents}
        rewards = {a: float(actions[a]) for a in self.agents}
        terminations = {a: done for a in self.agents}
        truncations = {a: False for a in self.agents}
        infos = {a: self._info() for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def render(self) -> list[Any]:
        return [
            Rect(id="h", x=100, y=200, width=20, height=self.counters["human"] % 300 + 1),
            Rect(id="b", x=500, y=200, width=20, height=self.counters["bot"] % 300 + 1, fill="#22c55e"),
        ]

    def close(self) -> None:
        pass


def _took(flag: str) -> bool:
    """True for the one caller that removes the file ``flag`` (when a test has made it)."""
    try:
        os.remove(flag)
    except FileNotFoundError:
        return False
    return True


class ReadsObservations:
    """A bot that refuses the placeholder: acting on an observation nobody built is a failure."""

    def act(self, observation: Any) -> int:
        if observation is None or tuple(int(v) for v in observation) == PLACEHOLDER:
            raise AssertionError(f"the bot was given the placeholder observation {observation!r}")
        return int(observation[1]) % 3 + 1
