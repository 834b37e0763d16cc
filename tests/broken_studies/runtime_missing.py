"""A game scene naming a runtime that is not installed."""

from _parts import END, START, game

from igym_core import Experiment

experiment = Experiment(experiment_id="broken", scenes=(START, game(runtime="pyodide_p2pp"), END))
