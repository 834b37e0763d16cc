"""A MountainCar game long enough to pause in, then a page: the study of the browser test of games
that pause while their data cannot be saved (``tests/e2e/test_saving_browser.py``)."""

from __future__ import annotations

from igym_core import EndScene, Experiment, GymScene, StaticScene
from igym_core.examples.mountain_car import HEIGHT, WIDTH, draw, hud, make_env

experiment = Experiment(
    experiment_id="saving_game_browser",
    seed=5,
    scenes=(
        GymScene(
            scene_id="car",
            env_factory=make_env,
            render_fn=draw,
            hud=hud,
            action_mapping={"ArrowLeft": 0, "ArrowRight": 2},
            default_action=1,
            fps=30,
            num_episodes=1,
            max_steps=240,
            countdown_s=1,
            canvas_width=WIDTH,
            canvas_height=HEIGHT,
            background="#0c4a6e",
        ),
        StaticScene(scene_id="after", title="Thanks", body="The game is over."),
        EndScene(scene_id="end"),
    ),
)
