"""A sink given as a bare string."""

from _parts import END, START

from igym_core import Experiment

experiment = Experiment(experiment_id="broken", scenes=(START, END), sinks=("jsonl",))
