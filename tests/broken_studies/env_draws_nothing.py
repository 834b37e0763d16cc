"""An env without render objects and without a render_fn ("NotImplementedError: " and nothing else)."""

from _parts import END, START, game

from igym_core import Experiment

experiment = Experiment(experiment_id="broken", scenes=(START, game(render_fn=None), END))
