"""Gymnasium spaces of :class:`~igym_slime.env.SlimeVolleyEnv` (imported only when asked for).

The environment's observations are plain tuples of Python floats (its core has no numpy), which
``gymnasium.spaces.Box`` would accept only after casting with a warning. :class:`FloatTuple` is
the same set of values as a ``Box`` of that shape, holding tuples: ``contains`` accepts a tuple,
list or 1-D array of finite numbers within the bounds, and ``sample`` returns a tuple of floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np

from igym_slime.env import (
    COURT_HALF_WIDTH,
    COURT_HEIGHT,
    OBSERVATION_SIZE,
    VELOCITY_BOUND,
)

__all__ = ["FloatTuple", "action_space", "observation_bounds", "observation_space"]


class FloatTuple(gymnasium.spaces.Space[tuple[float, ...]]):
    """Tuples of ``len(low)`` floats with ``low[i] <= x[i] <= high[i]``."""

    def __init__(self, low: Sequence[float], high: Sequence[float], seed: int | None = None) -> None:
        if len(low) != len(high) or not all(a <= b for a, b in zip(low, high, strict=True)):
            raise ValueError(f"expected bounds of equal length with low <= high; got {low!r}, {high!r}.")
        self.low = tuple(float(v) for v in low)
        self.high = tuple(float(v) for v in high)
        super().__init__(shape=(len(self.low),), dtype=np.float64, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return True

    def sample(self, mask: Any = None, probability: Any = None) -> tuple[float, ...]:
        values = self.np_random.uniform(self.low, self.high)
        return tuple(float(v) for v in values)

    def contains(self, x: Any) -> bool:
        if isinstance(x, np.ndarray):
            if x.ndim != 1:
                return False
            x = x.tolist()
        if not isinstance(x, tuple | list) or len(x) != len(self.low):
            return False
        for value, low, high in zip(x, self.low, self.high, strict=True):
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                return False
            value = float(value)
            if not (math.isfinite(value) and low <= value <= high):
                return False
        return True

    def __repr__(self) -> str:
        return f"FloatTuple({len(self.low)}, low={min(self.low)}, high={max(self.high)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FloatTuple) and (self.low, self.high) == (other.low, other.high)

    def __hash__(self) -> int:
        return hash((self.low, self.high))

    def to_jsonable(self, sample_n: Sequence[tuple[float, ...]]) -> list[list[float]]:
        return [list(s) for s in sample_n]

    def from_jsonable(self, sample_n: Sequence[Sequence[float]]) -> list[tuple[float, ...]]:
        return [tuple(float(v) for v in s) for s in sample_n]


def observation_bounds() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(low, high) of each of the 12 observation entries: x, y, vx, vy of self, ball, opponent."""
    low = (-COURT_HALF_WIDTH, 0.0, -VELOCITY_BOUND, -VELOCITY_BOUND) * 3
    high = (COURT_HALF_WIDTH, COURT_HEIGHT, VELOCITY_BOUND, VELOCITY_BOUND) * 3
    assert len(low) == OBSERVATION_SIZE
    return low, high


def observation_space() -> FloatTuple:
    low, high = observation_bounds()
    return FloatTuple(low, high)


def action_space() -> gymnasium.spaces.Discrete:
    return gymnasium.spaces.Discrete(6)
