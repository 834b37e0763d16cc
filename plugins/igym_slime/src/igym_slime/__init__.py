"""igym-slime: Slime Volleyball for igym (a pure-Python environment, its renderer, bots and example
studies: a participant against a trained bot, and two participants against each other)."""

from igym_slime.env import AGENTS, SlimeVolleyEnv, make_env, mirror_action, mirror_observation

__all__ = ["AGENTS", "SlimeVolleyEnv", "make_env", "mirror_action", "mirror_observation"]
__version__ = "0.1.0"
