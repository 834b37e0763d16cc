"""Participants whose next scene waits until their records are saved, and the retries that free them.

When a required data sink cannot write (a full disk), a participant who finishes a scene has
moved on in the server's books (their answers and events are recorded, waiting in the sinks'
memory), but the next scene is not shown, and nothing that follows from it happens (a game queue,
the end scene's completion code and redirect), until a flush stores their records. Meanwhile
their page shows the ``saving`` message. A task retries the flush every ``retry_interval_s`` and,
once it succeeds, hands each waiting participant back to the study, which shows the scene.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import attrs
import structlog

from igym_core.data.recorder import Recorder
from igym_core.errors import DataNotSavedError
from igym_core.protocol.server_messages import Saving

__all__ = ["SAVING_MESSAGE", "SaveWaits", "saving_reply"]

log = structlog.get_logger(__name__)

SAVING_MESSAGE = "We could not save your progress yet. Please keep this page open; we are trying again."

Then = Callable[[], Awaitable[None]]


def saving_reply(position: int) -> dict[str, object]:
    """What the page shows while its participant waits for their records to be saved."""
    return Saving(position=position, message=SAVING_MESSAGE).wire()


@attrs.define
class _Wait:
    durable: bool
    then: Then | None


class SaveWaits:
    """The waiting participants, by id, and the retry task (running only while someone waits)."""

    def __init__(
        self,
        recorder: Recorder,
        *,
        retry_interval_s: float,
        resume: Callable[[str, Then | None], Awaitable[None]],
    ) -> None:
        self.recorder = recorder
        self.retry_interval_s = retry_interval_s
        self._resume = resume
        self._waiting: dict[str, _Wait] = {}
        self._task: asyncio.Task[None] | None = None

    def __contains__(self, participant_id: object) -> bool:
        return participant_id in self._waiting

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, participant_id: str, *, durable: bool, then: Then | None = None) -> None:
        """``participant_id`` waits until a flush (``durable``: an fsync'ing one) stores every
        record written so far; then ``then`` runs and the study shows them their scene."""
        self._waiting[participant_id] = _Wait(durable, then)
        log.warning("participant_waiting_for_save", participant_id=participant_id, waiting=len(self._waiting))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._retry(), name="igym-save-retry")

    async def _retry(self) -> None:
        while self._waiting:
            await asyncio.sleep(self.retry_interval_s)
            # Only those waiting before the flush began: their records are all in it.
            ready = dict(self._waiting)
            try:
                await self.recorder.flush(durable=any(wait.durable for wait in ready.values()))
            except DataNotSavedError:
                continue  # the recorder logs the failure (once, then a reminder now and then)
            for participant_id, wait in ready.items():
                if self._waiting.get(participant_id) is not wait:
                    continue  # waits for a later flush now
                del self._waiting[participant_id]
                try:
                    await self._resume(participant_id, wait.then)
                except Exception:
                    log.exception("participant_resume_failed", participant_id=participant_id)
            if ready:
                log.info("participants_saved", count=len(ready), still_waiting=len(self._waiting))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
