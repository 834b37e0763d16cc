"""Discrete key mapping on a continuous (Box) action space."""

from _parts import END, START, Walk, game

from igym_core import Experiment

experiment = Experiment(
    experiment_id="broken", scenes=(START, game(env_factory=lambda: Walk(continuous=True)), END)
)
