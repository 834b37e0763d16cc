"""A neighbour of packages_study_envs.py."""

LIVES = 2
