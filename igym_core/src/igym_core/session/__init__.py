"""Participants: identity, their sequence of scenes, and where they are in it."""
