"""A multiplayer game scene naming a matchmaker that is not installed."""

from _parts import END, START, Pair, game

from igym_core import Experiment

experiment = Experiment(
    experiment_id="broken",
    scenes=(START, game(env_factory=Pair, human_seats=("left", "right"), matchmaker="by_team"), END),
)
