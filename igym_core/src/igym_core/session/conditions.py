"""Balanced assignment to conditions, in permuted blocks.

Each block holds every condition once, in an order drawn from the experiment seed and the block
number. Participants take the next free place, so after any number of arrivals the counts of any two
conditions differ by at most one, and the order within a block cannot be predicted without the seed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

__all__ = ["ConditionLedger"]


class ConditionLedger:
    """The app's record of condition assignments."""

    def __init__(self, conditions: Sequence[str], *, seed: int) -> None:
        self.conditions = tuple(conditions)
        self.seed = seed
        self.counts: Counter[str] = Counter({c: 0 for c in self.conditions})
        self._assigned = 0

    def block_order(self, block: int) -> list[str]:
        order = list(self.conditions)
        random.Random(f"igym-conditions/{self.seed}/{block}").shuffle(order)
        return order

    def next_balanced(self) -> str:
        """The next condition of the current permuted block."""
        if not self.conditions:
            raise LookupError("the experiment has no conditions")
        block, place = divmod(self._assigned, len(self.conditions))
        return self.block_order(block)[place]

    def record(self, condition: str) -> None:
        """Count an assignment (whoever made it). Keeps the block position in step."""
        self.counts[condition] += 1
        self._assigned += 1

    def restore(self, assigned: Sequence[str]) -> None:
        """Replay earlier assignments (for example from recorded data after a restart)."""
        for condition in assigned:
            self.record(condition)
