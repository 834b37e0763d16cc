"""A game whose frames are large (random pixels, rgb_array): for tests of slow clients and assets."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from igym_core import Asset, EndScene, Experiment, GymScene


class Noise(gymnasium.Env):
    """Nothing happens but noise: every frame is a fresh 320x240 picture of random pixels."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self) -> None:
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Discrete(1)
        self.render_mode = "rgb_array"
        self.rng = np.random.default_rng(0)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.rng = np.random.default_rng(seed)
        return 0, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict]:
        return 0, 0.0, False, False, {}

    def render(self) -> np.ndarray:
        return self.rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)


experiment = Experiment(
    experiment_id="noise_game",
    seed=5,
    scenes=(
        GymScene(
            scene_id="noise",
            env_factory=Noise,
            renderer="rgb_array",
            action_mapping={"a": 1},
            default_action=0,
            fps=30,
            max_steps=150,
            countdown_s=0,
            canvas_width=320,
            canvas_height=240,
            assets_dir="noise_assets",
            assets=(Asset(key="dot", file="dot.svg"),),
        ),
        EndScene(scene_id="end"),
    ),
)
