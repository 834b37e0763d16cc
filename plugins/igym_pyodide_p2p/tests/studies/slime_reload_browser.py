"""Slime Volleyball in the browser for the reload and closed-tab browser tests: two episodes of
90 steps against a random bot, ``on_reload="restart"``, abandoned 3 s after the page has gone."""

from __future__ import annotations

from igym_core import EndScene, Experiment, GymScene, StaticScene
from igym_slime.env import make_env
from igym_slime.render import HEIGHT, SKY, WIDTH, draw

experiment = Experiment(
    experiment_id="slime_reload",
    seed=9,
    scenes=(
        GymScene(
            scene_id="slime",
            runtime="pyodide",
            # Each batch acknowledged at once: the test times its reload and its close by acks, in
            # an episode of 3 s (with the default of one ack a second it could end first).
            runtime_options={"on_reload": "restart", "ack_interval_ms": 0},
            env_factory=make_env,
            env_kwargs={"lives": 5, "max_steps": 3000},
            human_seat="left",
            policies={"right": "random"},
            render_fn=draw,
            action_mapping={"ArrowLeft": 1, "ArrowRight": 2, "ArrowUp": 3},
            default_action=0,
            fps=30,
            num_episodes=2,
            max_steps=90,
            countdown_s=1,
            abandon_after_s=3,
            on_abandon="continue",
            canvas_width=WIDTH,
            canvas_height=HEIGHT,
            background=SKY,
        ),
        StaticScene(scene_id="after", title="Thanks", body="Done."),
        EndScene(scene_id="end"),
    ),
)
