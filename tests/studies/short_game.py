"""A short single-player game (a counter, 45 steps an episode, three episodes) before the end scene:
for tests of server restarts (``on_restart``) and abandoned games (``on_abandon``)."""

from __future__ import annotations

from typing import Any

import gymnasium
from gymnasium import spaces

from igym_core import EndScene, Experiment, GymScene


class Counter(gymnasium.Env):
    """Counts the steps; action 1 adds a reward of 1."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Discrete(10_000)
        self.count = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.count = 0
        return 0, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict]:
        self.count += 1
        return self.count, float(action), False, False, {}

    def render(self) -> list:
        return []


def _experiment(end: dict[str, Any] | None = None, **options: Any) -> Experiment:
    game = {
        "scene_id": "count",
        "env_factory": Counter,
        "action_mapping": {"a": 1},
        "default_action": 0,
        "fps": 30,
        "num_episodes": 3,
        "max_steps": 45,
        "countdown_s": 0,
        **options,
    }
    return Experiment(
        experiment_id="short_game",
        seed=9,
        scenes=(GymScene(**game), EndScene(scene_id="end", completion_code="auto", **(end or {}))),
    )


resume = _experiment()
restart = _experiment(on_restart="restart")
skip = _experiment(on_restart="skip")
abandon_end = _experiment(abandon_after_s=0.5)
abandon_continue = _experiment(abandon_after_s=0.5, on_abandon="continue")
abandon_continue_no_code = _experiment(
    abandon_after_s=0.5, on_abandon="continue", end={"codes_by_outcome": {"game_abandoned": None}}
)
throwaway = _experiment(max_steps=100_000, abandon_after_s=600)
