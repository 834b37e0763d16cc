"""A bot seat whose policy kind is not installed."""

from _parts import END, START, Pair, game

from igym_core import Experiment

experiment = Experiment(
    experiment_id="broken",
    scenes=(START, game(env_factory=Pair, human_seat="left", policies={"right": {"kind": "onnxx"}}), END),
)
