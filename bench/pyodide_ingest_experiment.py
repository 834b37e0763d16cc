"""The experiment ``bench/pyodide_ingest.py`` serves: one Slime Volleyball game scene, then the end.

``IGYM_BENCH_RUNTIME`` chooses where the env steps: ``server`` (the server ticks it) or ``pyodide``
(the participant's page does; the bench's clients send its step records). No countdown and no
welcome page, so a participant is in a running game as soon as they connect; a random bot plays
the other side; episodes last ``IGYM_BENCH_STEPS`` steps.
"""

from __future__ import annotations

import os

from igym_core import EndScene, Experiment, GymScene

RUNTIME = os.environ.get("IGYM_BENCH_RUNTIME", "pyodide")
STEPS = int(os.environ.get("IGYM_BENCH_STEPS", "9000"))

experiment = Experiment(
    experiment_id=f"bench_slime_{RUNTIME}",
    seed=1,
    scenes=[
        GymScene(
            scene_id="slime",
            runtime=RUNTIME,
            env_factory="igym_slime.env:make_env",
            env_kwargs={"lives": 1000, "max_steps": STEPS},
            human_seat="left",
            policies={"right": "random"},
            render_fn="igym_slime.render:draw",
            action_mapping={"ArrowLeft": 1, "ArrowRight": 2, "ArrowUp": 3},
            default_action=0,
            fps=30,
            max_steps=STEPS,
            countdown_s=0,
            abandon_after_s=30,
        ),
        EndScene(scene_id="end"),
    ],
)
