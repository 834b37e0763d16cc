"""Shared pieces of the broken studies: each study file breaks one thing and nothing else."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from igym_core import EndScene, GymScene, StartScene
from igym_core.rendering.objects import Rect


class Walk(gymnasium.Env):
    """One agent: 0 left, 1 stay, 2 right; draws nothing itself (Gymnasium's render raises)."""

    def __init__(self, continuous: bool = False) -> None:
        self.action_space = (
            spaces.Box(-1, 1, shape=(1,), dtype=np.float32) if continuous else spaces.Discrete(3)
        )
        self.observation_space = spaces.Box(0, 100, shape=(1,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        return np.zeros(1, dtype=np.float32), 0.0, False, False, {}


class Pair:
    """Two agents, ``left`` and ``right`` (a parallel env without PettingZoo)."""

    def __init__(self) -> None:
        self.possible_agents = ["left", "right"]
        self.agents: list[str] = []

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(3)

    def observation_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(2)

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        self.agents = list(self.possible_agents)
        return {a: 0 for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        zero = {a: 0 for a in self.agents}
        return (
            zero,
            {a: 0.0 for a in self.agents},
            {a: False for a in self.agents},
            dict.fromkeys(self.agents, False),
            {a: {} for a in self.agents},
        )


def draw(env: Any) -> list[Any]:
    return [Rect(id="floor", x=0, y=0, width=10, height=10)]


def game(**overrides: Any) -> GymScene:
    options: dict[str, Any] = {
        "scene_id": "game",
        "env_factory": Walk,
        "render_fn": draw,
        "action_mapping": {"ArrowLeft": 0, "ArrowRight": 2},
        "default_action": 1,
        **overrides,
    }
    return GymScene(**options)


START = StartScene(scene_id="consent", body="Hello.")
END = EndScene(scene_id="end", completion_code="auto")
