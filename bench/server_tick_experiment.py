"""The experiment ``bench/server_tick.py`` serves: one MountainCar game scene, then the end.

The same env, render function and key mapping as the demo (``igym_core.examples.mountain_car``),
without a countdown, so that a participant is in a running game as soon as they connect.
``IGYM_BENCH_STEPS`` sets how many steps a game lasts; ``IGYM_BENCH_FPS`` its tick rate.
"""

from __future__ import annotations

import os

from igym_core import EndScene, Experiment, GymScene
from igym_core.examples.mountain_car import HEIGHT, WIDTH, draw, make_env

FPS = int(os.environ.get("IGYM_BENCH_FPS", "30"))
STEPS = int(os.environ.get("IGYM_BENCH_STEPS", str(FPS * 20)))

experiment = Experiment(
    experiment_id="bench_server_tick",
    seed=1,
    scenes=(
        GymScene(
            scene_id="game",
            env_factory=make_env,
            render_fn=draw,
            action_mapping={"ArrowLeft": 0, "ArrowRight": 2},
            default_action=1,
            fps=FPS,
            num_episodes=1,
            max_steps=STEPS,
            countdown_s=0,
            canvas_width=WIDTH,
            canvas_height=HEIGHT,
            ready_timeout_s=60,
        ),
        EndScene(scene_id="end"),
    ),
)
