"""A participant's state: who they are, their scenes, where they are, what they typed."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs

from igym_core.scenes.interface import SceneConfig
from igym_core.scenes.stager import Slot

__all__ = ["RECRUITMENT_ID_PARAMS", "Participant", "ParticipantIdentity", "ParticipantIndex"]

#: URL parameters that name a person on a recruitment platform (recorded, never a credential).
RECRUITMENT_ID_PARAMS: tuple[str, ...] = (
    "PROLIFIC_PID",
    "workerId",
    "participant_id",
    "participantId",
    "subject",
    "sona_id",
)


@attrs.frozen(kw_only=True)
class ParticipantIdentity:
    """The answer of ``igym_resolve_participant``: resume ``resume_id``, or start someone new."""

    resume_id: str | None = None
    recruitment_ids: Mapping[str, str] = attrs.field(factory=dict)


def recruitment_ids(params: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k in RECRUITMENT_ID_PARAMS and v}


def _count_finished(participant: Participant, attribute: attrs.Attribute, new: bool) -> bool:
    index = participant._index
    if index is not None and bool(new) != bool(participant.finished):
        index.finished += 1 if new else -1
    return new


def _count_connected(participant: Participant, attribute: attrs.Attribute, new: int | None) -> int | None:
    index = participant._index
    if index is not None and (new is None) != (participant.connection_id is None):
        index.connected += 1 if new is not None else -1
    return new


#: Where an unfinished participant is, for the by-scene counts: (scene id, connected); None for
#: someone finished or without scenes yet.
Placement = tuple[str, bool] | None


def _placement(slots: list[Slot], position: int, finished: bool, connection_id: int | None) -> Placement:
    if finished or not 0 <= position < len(slots):
        return None
    return slots[position].scene.scene_id, connection_id is not None


def _count_placement(participant: Participant, attribute: attrs.Attribute, new: Any) -> Any:
    """Move the participant between the index's by-scene counts as one of these fields changes."""
    index = participant._index
    if index is not None:
        state = {
            "slots": participant.slots,
            "position": participant.position,
            "finished": participant.finished,
            "connection_id": participant.connection_id,
        }
        before = _placement(**state)
        state[attribute.name] = new
        index._move(before, _placement(**state))
    return new


@attrs.define(kw_only=True, eq=False)
class Participant:
    """Mutable session state of one participant, owned by the app's participant store."""

    participant_id: str
    token: str
    params: dict[str, str]
    condition: str | None = None
    slots: list[Slot] = attrs.field(factory=list, on_setattr=_count_placement)
    draws: dict[str, list[str]] = attrs.field(factory=dict)
    position: int = attrs.field(default=0, on_setattr=_count_placement)
    drafts: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    values: dict[str, Any] = attrs.field(factory=dict)
    joined_at: float = attrs.field(factory=time.time)
    entered_at: float = attrs.field(factory=time.time)
    finished: bool = attrs.field(
        default=False, on_setattr=attrs.setters.pipe(_count_finished, _count_placement)
    )
    outcome: str = "completed"
    """How the study went for them so far (``completed``, ``game_abandoned``, ...); recorded with
    ``finished`` and given to the end scene."""
    connection_id: int | None = attrs.field(
        default=None, on_setattr=attrs.setters.pipe(_count_connected, _count_placement)
    )
    """The connection that currently owns this participant; older ones are ignored."""
    _index: ParticipantIndex | None = attrs.field(default=None, init=False, repr=False)
    """The index holding this participant, whose counts follow ``finished`` and ``connection_id``."""

    def add_values(self, values: Mapping[str, Any], *, accumulate: bool = False) -> dict[str, Any]:
        """Keep ``values`` (``accumulate``: each number added to the one they have, none: 0); returns
        what they now have under those names."""
        if accumulate:
            values = {name: _number_or_zero(self.values.get(name)) + value for name, value in values.items()}
        self.values.update(values)
        return dict(values)

    token_hash: str = ""
    """SHA-256 of the token, hex: the key in the study's map and in the ``joined`` record."""
    user_agent: str | None = None
    """The ``User-Agent`` header of their current connection (entry screening reads it)."""
    last_seen_at: float = attrs.field(factory=time.monotonic)
    """When the participant was last connected (``time.monotonic``): set as their socket closes."""

    @property
    def placement(self) -> Placement:
        """(scene id, connected) while unfinished and placed in a scene; else None."""
        return _placement(self.slots, self.position, self.finished, self.connection_id)

    @property
    def recruitment_ids(self) -> dict[str, str]:
        return recruitment_ids(self.params)

    @property
    def slot(self) -> Slot:
        return self.slots[self.position]

    @property
    def scene(self) -> SceneConfig:
        return self.slot.scene


class ParticipantIndex(dict[str, "Participant"]):
    """Participants by id, with counts kept up to date as they change (not counted on demand).

    ``connected`` and ``finished`` follow every assignment to a held participant's
    ``connection_id`` and ``finished``, so ``/stats`` reads them without a loop over participants.
    ``by_scene`` and ``connected_by_scene`` (unfinished participants per scene id, and those of
    them connected: the admin dashboard's) follow ``slots``, ``position``, ``finished`` and
    ``connection_id`` the same way. Entries are added with ``index[id] = participant`` and removed
    with ``del`` or ``pop``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.connected = 0
        self.finished = 0
        self.by_scene: Counter[str] = Counter()
        self.connected_by_scene: Counter[str] = Counter()

    def __setitem__(self, participant_id: str, participant: Participant) -> None:
        old = self.get(participant_id)
        if old is not None:
            self._forget(old)
        super().__setitem__(participant_id, participant)
        participant._index = self
        self.connected += participant.connection_id is not None
        self.finished += bool(participant.finished)
        self._move(None, participant.placement)

    def __delitem__(self, participant_id: str) -> None:
        self._forget(self[participant_id])
        super().__delitem__(participant_id)

    def pop(self, participant_id: str, *default: Any) -> Any:  # type: ignore[override]
        if participant_id in self:
            participant = self[participant_id]
            del self[participant_id]
            return participant
        return super().pop(participant_id, *default)

    def _forget(self, participant: Participant) -> None:
        participant._index = None
        self.connected -= participant.connection_id is not None
        self.finished -= bool(participant.finished)
        self._move(participant.placement, None)

    def _move(self, before: Placement, after: Placement) -> None:
        if before == after:
            return
        if before is not None:
            _decrement(self.by_scene, before[0])
            if before[1]:
                _decrement(self.connected_by_scene, before[0])
        if after is not None:
            self.by_scene[after[0]] += 1
            if after[1]:
                self.connected_by_scene[after[0]] += 1

    def _unsupported(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("ParticipantIndex keeps counts: add with index[id] = p, remove with del or pop")

    update = setdefault = popitem = clear = __ior__ = _unsupported  # type: ignore[assignment]


def _number_or_zero(value: Any) -> float:
    """A value to add to: a finite number as it is, anything else (none yet) 0."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return 0


def _decrement(counts: Counter[str], key: str) -> None:
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]
