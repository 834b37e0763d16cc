"""Slime Volleyball in the browser for the slow-connection browser test: one long episode against a
random bot, a round-trip probe every 0.25 s, a ``connection_stats`` row every second, and the
slow-connection rule (over 1.5 s for 1 s warns, 1.5 s more ends the game)."""

from __future__ import annotations

from igym_core import EndScene, Experiment, GymScene, SlowConnection, StaticScene
from igym_slime.env import make_env
from igym_slime.render import HEIGHT, SKY, WIDTH, draw

experiment = Experiment(
    experiment_id="slime_slow",
    seed=11,
    scenes=(
        GymScene(
            scene_id="slime",
            runtime="pyodide",
            runtime_options={"ack_interval_ms": 0},
            env_factory=make_env,
            env_kwargs={"lives": 30, "max_steps": 3000},  # longer than the test: only the rule ends it
            human_seat="left",
            policies={"right": "random"},
            render_fn=draw,
            action_mapping={"ArrowLeft": 1, "ArrowRight": 2, "ArrowUp": 3},
            default_action=0,
            fps=30,
            num_episodes=1,
            max_steps=3000,
            countdown_s=0,
            rtt_interval_s=0.25,
            connection_report_s=1.0,
            slow_connection=SlowConnection(max_rtt_ms=1500, warn_after_s=1.0, end_after_s=1.5),
            canvas_width=WIDTH,
            canvas_height=HEIGHT,
            background=SKY,
        ),
        StaticScene(scene_id="after", title="Thanks", body="Done."),
        EndScene(scene_id="end"),
    ),
)
