"""Slime Volleyball against the trained ONNX bot, first on the server, then in the browser.

The browser tests play both games of this study in Chromium: the same scene under
``runtime="server"`` and ``runtime="pyodide"`` (short episodes, a one-second countdown), so that
their screenshots can be compared.
"""

from __future__ import annotations

import attrs

from igym_core import EndScene, Experiment, GymScene, StaticScene
from igym_slime.bots import trained_policy
from igym_slime.env import make_env
from igym_slime.examples.vs_ai import ACTION_MAPPING  # the arrow keys and their combinations
from igym_slime.hud import vs_computer
from igym_slime.render import HEIGHT, SKY, WIDTH, draw

on_server = GymScene(
    scene_id="slime_server",
    env_factory=make_env,
    env_kwargs={"lives": 3, "max_steps": 3000},
    human_seat="left",
    policies={"right": trained_policy()},
    render_fn=draw,
    hud=vs_computer,
    action_mapping=ACTION_MAPPING,
    default_action=0,
    fps=30,
    num_episodes=1,
    max_steps=150,
    countdown_s=1,
    canvas_width=WIDTH,
    canvas_height=HEIGHT,
    background=SKY,
)

in_browser = attrs.evolve(on_server, scene_id="slime", runtime="pyodide", num_episodes=2, max_steps=100)

experiment = Experiment(
    experiment_id="slime_browser",
    seed=5,
    scenes=(
        StaticScene(scene_id="intro", title="Slime", body="Two games."),
        on_server,
        in_browser,
        StaticScene(scene_id="after", title="Thanks", body="Done."),
        EndScene(scene_id="end"),
    ),
)
