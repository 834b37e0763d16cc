"""A study file whose env imports numpy (a C extension): the browser cannot get it from igym."""

from __future__ import annotations

import numpy as np

from igym_slime.env import SlimeVolleyEnv


class NoisySlime(SlimeVolleyEnv):
    """Slime Volleyball with a numpy-drawn wind (just so that the env needs numpy)."""

    def wind(self) -> float:
        return float(np.random.default_rng(0).normal())


def make_env(**kwargs: object) -> NoisySlime:
    return NoisySlime(**kwargs)  # type: ignore[arg-type]
