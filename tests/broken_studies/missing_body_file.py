"""A consent page read from a file that does not exist."""

from _parts import END

from igym_core import Experiment, StartScene

experiment = Experiment(
    experiment_id="broken", scenes=(StartScene(scene_id="consent", body_file="nope.md"), END)
)
