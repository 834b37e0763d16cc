"""The one-game study that ``render_object_pictures.py`` serves: an env that draws every example.

The canvas is a grid of ``CELL_WIDTH`` × ``CELL_HEIGHT`` cells, one per render object type
(:data:`GRID`); each cell holds that type's examples from ``igym_core.docs.render_objects``,
centred in the cell. The sprite examples use the images in ``picture_assets/`` (``make_assets``
wrote them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from igym_core import Asset, EndScene, Experiment, GymScene
from igym_core.docs.render_objects import CELL_HEIGHT, CELL_WIDTH, example_objects

#: object_type → (column, row) of its cell.
GRID = {
    "rect": (0, 0),
    "circle": (1, 0),
    "line": (2, 0),
    "polygon": (0, 1),
    "text": (1, 1),
    "sprite": (2, 1),
}
BACKGROUND = "#0f172a"


class StillEnv(gymnasium.Env):
    """Nothing happens: one action, a constant observation, episodes that never end."""

    observation_space = gymnasium.spaces.Box(0, 1, shape=(1,), dtype=np.float32)
    action_space = gymnasium.spaces.Discrete(1)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        return np.zeros(1, dtype=np.float32), 0.0, False, False, {}


def make_env() -> StillEnv:
    return StillEnv()


def draw(env: Any) -> list[Any]:
    drawn = []
    for object_type, (col, row) in GRID.items():
        cx, cy = (col + 0.5) * CELL_WIDTH, (row + 0.5) * CELL_HEIGHT
        drawn += example_objects(object_type, cx, cy)
    return drawn


def ids_drawn() -> list[str]:
    return [obj.id for obj in draw(None)]


def make_assets(folder: Path) -> None:
    """Write the sprite examples' images: a 48×32 ship, and a spritesheet of two 32×32 tiles."""
    from igym_core.rendering.png import encode_png

    ship = np.zeros((32, 48, 4), dtype=np.uint8)
    ys, xs = np.mgrid[0:32, 0:48]
    hull = (np.abs(ys - 16) < (48 - xs) * 0.38) & (xs > 4)
    ship[hull] = (226, 232, 240, 255)
    window = (xs - 30) ** 2 + (ys - 16) ** 2 < 25
    ship[window] = (14, 165, 233, 255)
    flame = (xs <= 6) & (np.abs(ys - 16) < 5)
    ship[flame] = (249, 115, 22, 255)
    tiles = np.zeros((32, 64, 4), dtype=np.uint8)
    tiles[:, :32] = (239, 68, 68, 255)
    tiles[:, 32:] = (59, 130, 246, 255)
    ty, tx = np.mgrid[0:32, 0:32]
    diamond = np.abs(tx - 15.5) + np.abs(ty - 15.5) < 10
    tiles[:, 32:][diamond] = (250, 204, 21, 255)
    tiles[:, :32][(tx // 8 + ty // 8) % 2 == 0] = (153, 27, 27, 255)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ship.png").write_bytes(encode_png(ship))
    (folder / "tiles.png").write_bytes(encode_png(tiles))


columns = max(col for col, _ in GRID.values()) + 1
rows = max(row for _, row in GRID.values()) + 1

experiment = Experiment(
    experiment_id="render_object_pictures",
    title="Render objects",
    scenes=(
        GymScene(
            scene_id="pictures",
            env_factory=make_env,
            render_fn=draw,
            action_mapping={"ArrowLeft": 0},
            default_action=0,
            countdown_s=0,
            canvas_width=columns * CELL_WIDTH,
            canvas_height=rows * CELL_HEIGHT,
            background=BACKGROUND,
            interpolate=False,
            assets_dir="picture_assets",
            assets=(
                Asset(key="ship", file="ship.png"),
                Asset(key="tiles", file="tiles.png", type="spritesheet", frame_width=32, frame_height=32),
            ),
        ),
        EndScene(scene_id="end"),
    ),
)
