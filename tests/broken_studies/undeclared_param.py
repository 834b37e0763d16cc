"""A placeholder for a URL parameter the experiment does not declare (it went out empty)."""

from _parts import START

from igym_core import EndScene, Experiment

experiment = Experiment(
    experiment_id="broken",
    scenes=(START, EndScene(scene_id="end", redirect_url="https://example.org/back?pid={PROLIFIC_PID}")),
)
