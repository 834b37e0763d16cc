"""Slime Volleyball in the browser for the busy-page browser test: one long episode against a
random bot, a round-trip probe every 1.5 s, a ``connection_stats`` row every second, and a
slow-connection rule (over 900 ms for 1 s warns, 1.5 s more ends the game) that a page whose main
thread keeps each probe waiting 1 s would break if that wait were counted as the network's."""

from __future__ import annotations

from igym_core import EndScene, Experiment, GymScene, SlowConnection, StaticScene
from igym_slime.env import make_env
from igym_slime.render import HEIGHT, SKY, WIDTH, draw

experiment = Experiment(
    experiment_id="slime_busy",
    seed=12,
    scenes=(
        GymScene(
            scene_id="slime",
            runtime="pyodide",
            env_factory=make_env,
            env_kwargs={"lives": 30, "max_steps": 3000},  # longer than the test
            human_seat="left",
            policies={"right": "random"},
            render_fn=draw,
            action_mapping={"ArrowLeft": 1, "ArrowRight": 2, "ArrowUp": 3},
            default_action=0,
            fps=30,
            num_episodes=1,
            max_steps=3000,
            countdown_s=0,
            rtt_interval_s=1.5,
            connection_report_s=1.0,
            slow_connection=SlowConnection(max_rtt_ms=900, warn_after_s=1.0, end_after_s=1.5),
            canvas_width=WIDTH,
            canvas_height=HEIGHT,
            background=SKY,
        ),
        StaticScene(scene_id="after", title="Thanks", body="Done."),
        EndScene(scene_id="end"),
    ),
)
