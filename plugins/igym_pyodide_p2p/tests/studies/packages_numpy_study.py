"""A browser-run Slime Volleyball whose env (packages_numpy_env.py) imports numpy: igym check refuses it."""

from __future__ import annotations

from igym_core import EndScene, Experiment, GymScene
from igym_slime.render import HEIGHT, WIDTH, draw

experiment = Experiment(
    experiment_id="pyodide_numpy",
    scenes=(
        GymScene(
            scene_id="slime",
            runtime="pyodide",
            env_factory="packages_numpy_env.py:make_env",
            human_seat="left",
            policies={"right": "random"},
            render_fn=draw,
            action_mapping={"ArrowLeft": 1, "ArrowRight": 2},
            default_action=0,
            canvas_width=WIDTH,
            canvas_height=HEIGHT,
        ),
        EndScene(scene_id="end"),
    ),
)
