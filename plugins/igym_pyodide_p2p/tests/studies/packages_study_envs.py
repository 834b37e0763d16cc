"""A study's own env module, a plain file beside the experiment (not an installed package); it
imports a neighbour file, as a script would."""

from __future__ import annotations

from packages_study_helpers import LIVES

from igym_slime.env import SlimeVolleyEnv


def make_env() -> SlimeVolleyEnv:
    return SlimeVolleyEnv(lives=LIVES)
