"""Slime Volleyball for the pyodide runtime's latency test: the participant (left) against a slime
that stands still, one long game in the browser straight away, then the end."""

from __future__ import annotations

from igym_core import ConstantPolicy, EndScene, Experiment, GymScene
from igym_slime.env import make_env
from igym_slime.render import HEIGHT, SKY, WIDTH, draw

experiment = Experiment(
    experiment_id="latency_pyodide",
    seed=5,
    scenes=(
        GymScene(
            scene_id="slime",
            runtime="pyodide",
            env_factory=make_env,
            env_kwargs={"lives": 50, "max_steps": 6000},
            human_seat="left",
            policies={"right": ConstantPolicy(action=0)},
            render_fn=draw,
            action_mapping={"ArrowLeft": 1, "ArrowRight": 2, "ArrowUp": 3},
            default_action=0,
            fps=30,
            num_episodes=1,
            countdown_s=1,
            canvas_width=WIDTH,
            canvas_height=HEIGHT,
            background=SKY,
        ),
        EndScene(scene_id="end"),
    ),
)
