"""A participant's state: who they are, their scenes, where they are, what they typed."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import attrs

from igym_core.scenes.interface import SceneConfig
from igym_core.scenes.stager import Slot

__all__ = ["RECRUITMENT_ID_PARAMS", "Participant", "ParticipantIdentity"]

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


@attrs.define(kw_only=True, eq=False)
class Participant:
    """Mutable session state of one participant, owned by the app's participant store."""

    participant_id: str
    token: str
    params: dict[str, str]
    condition: str | None = None
    slots: list[Slot] = attrs.field(factory=list)
    draws: dict[str, list[str]] = attrs.field(factory=dict)
    position: int = 0
    drafts: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    values: dict[str, Any] = attrs.field(factory=dict)
    joined_at: float = attrs.field(factory=time.time)
    entered_at: float = attrs.field(factory=time.time)
    finished: bool = False
    outcome: str = "completed"
    """How the study went for them so far (``completed``, ``game_abandoned``, ...); recorded with
    ``finished`` and given to the end scene."""
    connection_id: int | None = None
    """The connection that currently owns this participant; older ones are ignored."""

    @property
    def recruitment_ids(self) -> dict[str, str]:
        return recruitment_ids(self.params)

    @property
    def slot(self) -> Slot:
        return self.slots[self.position]

    @property
    def scene(self) -> SceneConfig:
        return self.slot.scene
