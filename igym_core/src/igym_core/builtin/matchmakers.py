"""Built-in matchmakers: ``fifo`` and ``by_condition``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

from igym_core.matchmaking.interface import Matchmaker, WaitingPlayer
from igym_core.plugins.markers import hookimpl

__all__ = ["ConditionMatchmaker", "FifoMatchmaker"]


@hookimpl(trylast=True)
def igym_register_matchmakers() -> list[type[Matchmaker]]:
    return [FifoMatchmaker, ConditionMatchmaker]


class FifoMatchmaker(Matchmaker):
    """First come, first grouped: the oldest ``group_size`` waiting players form a group, then the
    next ones, and so on."""

    kind: ClassVar[str] = "fifo"

    def propose(self, waiting: Sequence[WaitingPlayer], group_size: int) -> list[tuple[str, ...]]:
        ids = [p.participant_id for p in waiting]
        return [tuple(ids[i : i + group_size]) for i in range(0, len(ids) - group_size + 1, group_size)]


class ConditionMatchmaker(Matchmaker):
    """Groups only participants of the same condition, and keeps the conditions' game counts level.

    For studies whose conditions are properties of the group (both players see the same
    instructions, say): a group never mixes conditions. When several conditions could form a
    group at the same moment, the condition with the fewest groups so far goes first (ties: the
    one whose oldest player has waited longest), so that conditions end up with equal numbers of
    games rather than equal numbers of waiting participants. Within a condition, first come,
    first grouped.
    """

    kind: ClassVar[str] = "by_condition"

    def __init__(self) -> None:
        self.groups_per_condition: Counter[str | None] = Counter()

    def propose(self, waiting: Sequence[WaitingPlayer], group_size: int) -> list[tuple[str, ...]]:
        by_condition: dict[str | None, list[WaitingPlayer]] = {}
        for player in waiting:
            by_condition.setdefault(player.condition, []).append(player)
        groups: list[tuple[str, ...]] = []
        counts = Counter(self.groups_per_condition)
        while True:
            ready = [c for c, players in by_condition.items() if len(players) >= group_size]
            if not ready:
                return groups
            condition = min(ready, key=lambda c: (counts[c], -by_condition[c][0].waited_s))
            members, by_condition[condition] = (
                by_condition[condition][:group_size],
                by_condition[condition][group_size:],
            )
            groups.append(tuple(p.participant_id for p in members))
            counts[condition] += 1

    def formed(self, group: Sequence[WaitingPlayer]) -> None:
        self.groups_per_condition[group[0].condition] += 1

    def could_group(self, player: WaitingPlayer, other: WaitingPlayer) -> bool:
        return player.condition == other.condition
