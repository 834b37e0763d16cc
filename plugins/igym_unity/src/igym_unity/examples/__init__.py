"""Example experiments of igym-unity."""
