"""igym-cogrid: Overcooked for igym (the CoGrid kitchens as a PettingZoo parallel env, a renderer
with art of its own, a scripted planner bot, and example studies: a participant with the bot, and
two participants together)."""

__version__ = "0.1.0"
