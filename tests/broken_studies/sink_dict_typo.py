"""A sink written as a dict, with its kind misspelt (igym run used to crash: 'dict' has no 'kind')."""

from _parts import END, START

from igym_core import Experiment

experiment = Experiment(experiment_id="broken", scenes=(START, END), sinks=({"kind": "jsonll"},))
