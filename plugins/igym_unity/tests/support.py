"""Studies with a Unity scene, for the plugin's tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from igym_core import EndScene, Experiment, StaticScene
from igym_unity import UnityScene


def unity_study(build_parent: Path, experiment_id: str = "unity_test", **scene: Any) -> Experiment:
    """intro → the Unity scene ``game`` → ``after`` → ``sorry`` → the end (with outcome codes)."""
    return Experiment(
        experiment_id=experiment_id,
        seed=3,
        scenes=(
            StaticScene(scene_id="intro", body="Next: a game."),
            UnityScene(scene_id="game", build_dir=str(build_parent), **scene),
            StaticScene(scene_id="after", body="Thanks."),
            StaticScene(scene_id="sorry", body="The game did not run."),
            EndScene(
                scene_id="end",
                completion_code="OK1",
                codes_by_outcome={"unity_load_failed": "NOGAME", "unity_timeout": "LATE"},
            ),
        ),
    )
