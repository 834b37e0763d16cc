"""Example experiments shipped with igym-core."""
