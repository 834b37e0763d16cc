"""Experiment configuration: the root class, validators and the cattrs converter."""
