"""The waiting room of one multiplayer game scene: who waits, who is grouped, who times out.

A :class:`Lobby` is a plain state machine with no clock or event loop of its own: the caller tells
it what happened (``arrive``, ``connected``, ``disconnected``, ``gone``) and at what time, and asks
it with :meth:`Lobby.poll` what follows from that now: groups to start (:class:`Matched`), players
whose wait ran out (:class:`TimedOut`) and players who disconnected and did not come back within
the grace period (:class:`Departed`). :meth:`Lobby.next_deadline` says when polling next can
change anything. That keeps every rule here, testable under any interleaving (see
``tests/test_lobby_stateful.py``), and the asyncio side in the game coordinator.

Rules:

- Only connected players are grouped. A player who disconnects keeps their place for
  ``grace_s`` (a reload must not cost them their turn); after that they have departed.
- Players of a group that must stay together (``same_group_as``) wait for their own group's
  members, in their old seats. If a member is gone (departed, timed out, left the study, or was
  replaced by a bot in the earlier game), ``fallback`` applies: ``rematch`` puts the others in the
  ordinary queue (keeping their waiting time), ``bot`` starts the game with bots in the missing
  seats, ``timeout`` times the others out.
- Everyone else is grouped by the matchmaker; a proposal that is not a valid partition of the
  waiting players is refused (logged) rather than trusted.
- Nobody waits longer than ``timeout_s``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import attrs
import structlog

from igym_core.matchmaking.interface import Matchmaker, WaitingPlayer

__all__ = ["Departed", "GroupRef", "Lobby", "Matched", "TimedOut"]

log = structlog.get_logger(__name__)


@attrs.frozen(kw_only=True)
class GroupRef:
    """The earlier group a player must play with again: its id and every member's seat."""

    group_id: str
    seats: Mapping[str, str]
    """participant id → the human seat they had."""


@attrs.frozen(kw_only=True)
class Matched:
    """A group to start now."""

    members: tuple[str, ...]
    """Participant ids, in the order of ``seats``."""
    seats: tuple[str, ...]
    """The human seat of each member."""
    bot_seats: tuple[str, ...] = ()
    """Human seats left to a bot (a group that stays together, with a member gone)."""
    waited_s: Mapping[str, float] = attrs.field(factory=dict)
    group_of: str | None = None
    """The earlier group's id, for a group that stays together."""


@attrs.frozen(kw_only=True)
class TimedOut:
    participant_id: str
    waited_s: float
    reason: str = "timeout"
    """``timeout`` (waited ``timeout_s``), or ``group_gone`` (same-group fallback ``timeout``)."""


@attrs.frozen(kw_only=True)
class Departed:
    participant_id: str
    waited_s: float


Outcome = Matched | TimedOut | Departed


@attrs.define(kw_only=True, eq=False)
class _Entry:
    participant_id: str
    condition: str | None
    params: dict[str, str]
    queued_at: float
    connected: bool = True
    disconnected_at: float | None = None
    group: GroupRef | None = None


class Lobby:
    """One scene's waiting room (see the module docstring)."""

    def __init__(
        self,
        *,
        seats: Sequence[str],
        matchmaker: Matchmaker,
        timeout_s: float,
        grace_s: float,
        fallback: Literal["bot", "rematch", "timeout"] = "rematch",
    ) -> None:
        self.seats = tuple(seats)
        self.group_size = len(self.seats)
        self.matchmaker = matchmaker
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self.fallback = fallback
        self._entries: dict[str, _Entry] = {}  # insertion order = arrival order
        self._gone: set[str] = set()

    # --- what happened ----------------------------------------------------------------------
    def arrive(
        self,
        participant_id: str,
        *,
        now: float,
        condition: str | None = None,
        params: Mapping[str, str] | None = None,
        group: GroupRef | None = None,
    ) -> None:
        """A participant reached the scene (again: their original place in the queue is kept)."""
        entry = self._entries.get(participant_id)
        if entry is not None:
            self.connected(participant_id, now=now)
            return
        self._gone.discard(participant_id)  # back after a timeout or a departure: here again
        self._entries[participant_id] = _Entry(
            participant_id=participant_id,
            condition=condition,
            params=dict(params or {}),
            queued_at=now,
            group=group if group is not None and participant_id in group.seats else None,
        )

    def connected(self, participant_id: str, *, now: float) -> None:
        entry = self._entries.get(participant_id)
        if entry is not None:
            entry.connected = True
            entry.disconnected_at = None

    def disconnected(self, participant_id: str, *, now: float) -> None:
        entry = self._entries.get(participant_id)
        if entry is not None and entry.connected:
            entry.connected = False
            entry.disconnected_at = now

    def gone(self, participant_id: str) -> None:
        """A member of an earlier group will not come (left the study, or replaced by a bot)."""
        self._gone.add(participant_id)

    def forget(self, participant_id: str) -> None:
        """The study evicted this participant from memory and no group names them any more."""
        if participant_id not in self._entries:
            self._gone.discard(participant_id)

    # --- what follows -----------------------------------------------------------------------
    def __contains__(self, participant_id: object) -> bool:
        return participant_id in self._entries

    def waiting(self) -> list[str]:
        return list(self._entries)

    def waiting_count(self, participant_id: str | None = None, *, now: float = 0.0) -> int:
        """How many are waiting (and connected) for the same thing as ``participant_id``: the
        members of their own group, or else the players the matchmaker could group them with
        (:meth:`~igym_core.matchmaking.interface.Matchmaker.could_group`), themselves included."""
        entry = self._entries.get(participant_id or "")
        if entry is not None and entry.group is not None:
            key = entry.group.group_id
            return sum(
                1 for e in self._entries.values() if e.connected and e.group and e.group.group_id == key
            )
        queue = [e for e in self._entries.values() if e.connected and e.group is None]
        if entry is None:
            return len(queue)
        me = self._player(entry, now)
        count = 0
        for other in queue:
            if other is entry:
                count += 1
                continue
            try:
                if self.matchmaker.could_group(me, self._player(other, now)):
                    count += 1
            except Exception:
                log.exception("matchmaker_failed", matchmaker=self.matchmaker.kind, method="could_group")
                return len(queue)  # the plain count rather than none
        return count

    @staticmethod
    def _player(entry: _Entry, now: float) -> WaitingPlayer:
        return WaitingPlayer(
            participant_id=entry.participant_id,
            condition=entry.condition,
            waited_s=max(0.0, now - entry.queued_at),
            params=entry.params,
        )

    def queued_at(self, participant_id: str) -> float | None:
        entry = self._entries.get(participant_id)
        return entry.queued_at if entry else None

    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`poll` may have something new without any event."""
        times = [e.queued_at + self.timeout_s for e in self._entries.values()]
        times += [
            e.disconnected_at + self.grace_s for e in self._entries.values() if e.disconnected_at is not None
        ]
        return min(times) if times else None

    def poll(self, now: float) -> list[Outcome]:
        out: list[Outcome] = []
        for entry in list(self._entries.values()):
            if entry.disconnected_at is not None and now - entry.disconnected_at >= self.grace_s:
                del self._entries[entry.participant_id]
                self._gone.add(entry.participant_id)
                out.append(Departed(participant_id=entry.participant_id, waited_s=now - entry.queued_at))
        for entry in list(self._entries.values()):
            if now - entry.queued_at >= self.timeout_s:
                del self._entries[entry.participant_id]
                self._gone.add(entry.participant_id)
                out.append(TimedOut(participant_id=entry.participant_id, waited_s=now - entry.queued_at))
        out += self._same_groups(now)
        out += self._new_groups(now)
        return out

    def _same_groups(self, now: float) -> list[Outcome]:
        out: list[Outcome] = []
        groups: dict[str, list[_Entry]] = {}
        for entry in self._entries.values():
            if entry.group is not None:
                groups.setdefault(entry.group.group_id, []).append(entry)
        for entries in groups.values():
            ref = entries[0].group
            assert ref is not None
            present = {e.participant_id: e for e in entries}
            missing = [pid for pid in ref.seats if pid not in present]
            lost = [pid for pid in missing if pid in self._gone]
            if not missing:
                if all(e.connected for e in entries):
                    out.append(self._match(entries, now, group_of=ref.group_id))
                continue
            if not lost:
                continue  # the others may still come
            if self.fallback == "rematch":
                for entry in entries:
                    entry.group = None
            elif self.fallback == "timeout":
                for entry in entries:
                    del self._entries[entry.participant_id]
                    self._gone.add(entry.participant_id)
                    out.append(
                        TimedOut(
                            participant_id=entry.participant_id,
                            waited_s=now - entry.queued_at,
                            reason="group_gone",
                        )
                    )
            elif len(lost) == len(missing) and all(e.connected for e in entries):  # "bot"
                out.append(
                    self._match(entries, now, group_of=ref.group_id, bots=tuple(ref.seats[p] for p in lost))
                )
        return out

    def _new_groups(self, now: float) -> list[Outcome]:
        queue = [e for e in self._entries.values() if e.group is None and e.connected]
        if len(queue) < self.group_size:
            return []
        players = [self._player(e, now) for e in queue]
        try:
            proposal = self.matchmaker.propose(players, self.group_size)
        except Exception:
            log.exception("matchmaker_failed", matchmaker=self.matchmaker.kind)
            return []
        by_id = {e.participant_id: e for e in queue}
        taken: set[str] = set()
        out: list[Outcome] = []
        for group in proposal:
            ids = tuple(group)
            if (
                len(ids) != self.group_size
                or len(set(ids)) != len(ids)
                or not set(ids) <= by_id.keys()
                or taken & set(ids)
            ):
                log.error(
                    "matchmaker_bad_group",
                    matchmaker=self.matchmaker.kind,
                    group=list(ids)[:16],
                    advice=f"a group is {self.group_size} distinct waiting participants, each in one group",
                )
                continue
            taken |= set(ids)
            entries = [by_id[pid] for pid in ids]
            out.append(self._match(entries, now))
            try:
                self.matchmaker.formed([p for p in players if p.participant_id in ids])
            except Exception:
                log.exception("matchmaker_failed", matchmaker=self.matchmaker.kind)
        return out

    def _match(
        self,
        entries: Sequence[_Entry],
        now: float,
        *,
        group_of: str | None = None,
        bots: tuple[str, ...] = (),
    ) -> Matched:
        for entry in entries:
            del self._entries[entry.participant_id]
        if group_of is not None:
            ref = entries[0].group
            assert ref is not None
            ordered = sorted(entries, key=lambda e: self.seats.index(ref.seats[e.participant_id]))
            seats = tuple(ref.seats[e.participant_id] for e in ordered)
        else:
            ordered = list(entries)
            seats = self.seats
        return Matched(
            members=tuple(e.participant_id for e in ordered),
            seats=seats,
            bot_seats=bots,
            waited_s={e.participant_id: now - e.queued_at for e in ordered},
            group_of=group_of,
        )
