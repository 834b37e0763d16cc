"""The matchmaker interface: groups waiting participants into games (used by game scenes).

A multiplayer game scene names a matchmaker by ``kind`` (``GymScene(matchmaker="fifo")``). The
scene's waiting room asks it, whenever someone arrives, comes back or leaves, which groups to form
from the players who are waiting and connected. Built in: ``fifo`` and ``by_condition``; plugins
add more with ``igym_register_matchmakers``. A matchmaker that keeps some players apart says so
with :meth:`Matchmaker.could_group`, which the waiting room's count follows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import attrs

__all__ = ["Matchmaker", "WaitingPlayer"]


@attrs.frozen(kw_only=True)
class WaitingPlayer:
    """A participant in a waiting room, as a matchmaker sees them."""

    participant_id: str
    condition: str | None
    """The participant's experimental condition (None if the experiment has none)."""
    waited_s: float
    """How long they have been waiting."""
    params: dict[str, str] = attrs.field(factory=dict)
    """Their study link's parameters (e.g. a language a matchmaker may group by)."""


class Matchmaker(ABC):
    """Decides which waiting participants form a group.

    One instance per game scene (and repetition), created when its first player arrives, so it may
    keep state (how many groups of each condition it formed, say). ``propose`` receives the players
    who are waiting and connected, oldest first, and the group size; it returns the groups to
    start now, each a tuple of ``group_size`` participant ids, no id twice. Everyone not in a group
    keeps waiting. The first id of a group takes the scene's first human seat, and so on.
    """

    kind: ClassVar[str] = "matchmaker"

    @abstractmethod
    def propose(self, waiting: Sequence[WaitingPlayer], group_size: int) -> list[tuple[str, ...]]:
        """Return the groups to form now."""

    def formed(self, group: Sequence[WaitingPlayer]) -> None:  # noqa: B027 (optional)
        """Called after a proposed group became a game (to keep counts)."""

    def could_group(self, player: WaitingPlayer, other: WaitingPlayer) -> bool:
        """Whether ``player`` and ``other`` could ever be in one group.

        The waiting room shows each player how many are waiting for them: themselves and the
        players they could be grouped with. A matchmaker that never groups some players together
        (different conditions, teams, languages) must say so here, or two people who will never
        play together each read "2 of 2 participants here". The default: anyone with anyone.
        Called often (for every pair of waiting players when someone arrives or leaves): keep it
        cheap, and symmetric.
        """
        return True
