"""Slime Volleyball under the ``pyodide`` runtime against the scripted bot (a Python policy that runs in
the browser), for the package tests: the browser needs igym-slime, attrs and igym-core's lean build."""

from __future__ import annotations

from igym_core import EndScene, Experiment, GymScene, StaticScene
from igym_slime.bots import ScriptedPolicy
from igym_slime.env import make_env
from igym_slime.render import HEIGHT, SKY, WIDTH, draw

experiment = Experiment(
    experiment_id="pyodide_packages",
    seed=5,
    scenes=(
        StaticScene(scene_id="intro", title="Ready?", body="Press continue to play."),
        GymScene(
            scene_id="slime",
            runtime="pyodide",
            env_factory=make_env,
            env_kwargs={"lives": 3, "max_steps": 600},
            human_seat="left",
            policies={"right": ScriptedPolicy},
            render_fn=draw,
            action_mapping={"ArrowLeft": 1, "ArrowRight": 2, "ArrowUp": 3},
            default_action=0,
            num_episodes=1,
            canvas_width=WIDTH,
            canvas_height=HEIGHT,
            background=SKY,
        ),
        # The same game with the env from a plain file of the study (and the file it imports).
        GymScene(
            scene_id="slime_study",
            runtime="pyodide",
            env_factory="packages_study_envs.py:make_env",
            human_seat="left",
            policies={"right": "random"},
            render_fn=draw,
            action_mapping={"ArrowLeft": 1, "ArrowRight": 2, "ArrowUp": 3},
            default_action=0,
            num_episodes=1,
            canvas_width=WIDTH,
            canvas_height=HEIGHT,
            background=SKY,
        ),
        EndScene(scene_id="end"),
    ),
)


def hud(view: object) -> str:
    """A HUD defined in the experiment file (the browser cannot import this file: it needs
    igym_core's experiment classes)."""
    return "Slime"
