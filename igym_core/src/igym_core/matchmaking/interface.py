"""The matchmaker interface: groups waiting participants into games (used by game scenes)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

__all__ = ["Matchmaker"]


class Matchmaker(ABC):
    """Decides which waiting participants form a group.

    ``kind`` is how an experiment selects it. ``propose`` receives the ids of the participants
    waiting for one scene, oldest first, and the group size; it returns the groups to start now
    (each a tuple of ``group_size`` ids, no id twice) and leaves everyone else waiting.
    """

    kind: ClassVar[str]

    @abstractmethod
    def propose(self, waiting: Sequence[str], group_size: int) -> list[tuple[str, ...]]:
        """Return the groups to form now."""
