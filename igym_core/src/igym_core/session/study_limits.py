"""The limits part of :class:`~igym_core.session.study.Study`: bounded input (URL parameters,
drafts, answers, how soon a submit may come) and bounded participant state (admission, eviction
from memory and the return of an evicted participant)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgpack
import structlog

from igym_core.errors import AdmissionError, DataNotSavedError
from igym_core.protocol.messages import Submit
from igym_core.protocol.server_messages import ErrorMessage, Rejected
from igym_core.session.admission import address_key, check_url_params
from igym_core.session.participant import Participant

if TYPE_CHECKING:
    from igym_core.session.study import Connection, Reply

log = structlog.get_logger(__name__)

#: How much earlier than a scene's minimum time on the page a submit may arrive and still count
#: (see ``Study._too_early``).
SUBMIT_EARLY_TOLERANCE_MS = 250


class StudyLimits:
    """The limits part of :class:`~igym_core.session.study.Study`."""

    def _check_url_params(self, params: Mapping[str, str]) -> None:
        settings = self.settings
        try:
            check_url_params(
                params,
                max_count=settings.max_url_params,
                max_name_chars=settings.max_url_param_name_chars,
                max_value_chars=settings.max_url_param_value_chars,
            )
        except AdmissionError as exc:
            log.warning(
                "participant_refused",
                reason="url_params",
                detail=str(exc),
                advice="raise IGYM_MAX_URL_PARAMS / IGYM_MAX_URL_PARAM_NAME_CHARS / "
                "IGYM_MAX_URL_PARAM_VALUE_CHARS if your recruitment links need more",
            )
            raise

    def _admit(self, connection: Connection) -> None:
        """Refuse a new participant when the server is full or their address started too many."""
        cap = self.settings.max_participants_in_memory
        if cap and len(self.by_id) >= cap:
            # Finished participants who closed their page lose nothing by leaving memory now (they
            # have no drafts; a return rebuilds them): make room with them first. This also frees
            # a server restarted on a big study, which restores everyone, finished or not.
            self.evict_idle(make_room=True)
        if cap and len(self.by_id) >= cap:
            log.warning(
                "participant_refused",
                reason="server_full",
                participants=len(self.by_id),
                advice="IGYM_MAX_PARTICIPANTS_IN_MEMORY",
            )
            raise AdmissionError(
                "server_full",
                "This study cannot take new participants right now because the server is full. "
                "Please try again in a few minutes.",
            )
        address = address_key(connection.address)
        if not self._new_rate.allow(address):
            wait_s = max(1, round(self._new_rate.retry_after_s(address)))
            log.warning(
                "participant_refused",
                reason="rate_limited",
                address=address,
                limit_per_min=self._new_rate.limit,
                advice="IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN (0 = off, for labs sharing one address)",
            )
            raise AdmissionError(
                "too_many_new_participants",
                f"Too many new sessions of this study were started from your network in the last "
                f"minute (at most {self._new_rate.limit}). Please wait {wait_s} seconds and reload "
                "the page. If you already started the study, continue in the same browser: it "
                "resumes where you left off.",
            )

    def _draft_refusal(self, participant: Participant, answers: Mapping[str, Any]) -> tuple[str, str] | None:
        unknown = _unknown_keys(answers, participant.scene.answer_ids())
        if unknown:
            return (
                "unknown_answers",
                f"The draft has {len(unknown)} answer(s) this scene does not ask for "
                f"({_some(unknown)}); it was not saved. Send only this scene's question ids.",
            )
        size = len(msgpack.packb(answers, use_bin_type=True, default=str))
        if size > self.settings.max_draft_bytes:
            return (
                "draft_too_large",
                f"The draft is {size} bytes; at most {self.settings.max_draft_bytes} are kept, so it "
                "was not saved (the answers still count when submitted).",
            )
        return None

    def _refuse_unknown_answers(self, participant: Participant, message: Submit, unknown: list[str]) -> Reply:
        """A submission with keys the scene does not ask for: refused, counted, never echoed in full."""
        named = [key[:64] for key in unknown[:_NAMED_KEYS]]
        self._event(
            participant, "submission_rejected", unknown_answer_count=len(unknown), unknown_answers=named
        )
        log.warning(
            "submission_refused",
            participant_id=participant.participant_id,
            reason="unknown_answers",
            count=len(unknown),
        )
        return Rejected(
            code="unknown_answers",
            seq=message.seq,
            position=message.position,
            errors={key: "This step has no such question." for key in named},
            unknown_count=len(unknown),
            message=f"The page sent {len(unknown)} answer(s) this step does not ask for "
            f"({_some(unknown)}). Please reload the page and answer again.",
        ).wire()

    async def evict_periodically(self) -> None:
        """Run :meth:`evict_idle` for the app's lifetime (a task owned by the app's lifespan)."""
        times = [
            t
            for t in (self.settings.participant_evict_finished_s, self.settings.participant_evict_idle_s)
            if t > 0
        ]
        if not times:
            return
        interval_s = min(30.0, max(0.05, min(times) / 4))
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.evict_idle()
            except Exception:  # a bug here must not end the sweeps (memory would grow again)
                log.exception("eviction_failed")

    def evict_idle(self, now: float | None = None, *, make_room: bool = False) -> int:
        """Drop finished and abandoned participants from memory (see Settings); return how many.

        ``make_room``: also every finished participant whose page is closed, however recently.
        Never someone connected, in a game or waiting room, or in the middle of a submit. Their
        records stay; if they come back with their token, :meth:`hello` rebuilds them from the
        ``sessions`` records (typed-but-unsubmitted answers are lost).
        """
        now = time.monotonic() if now is None else now
        finished_s = self.settings.participant_evict_finished_s
        idle_s = self.settings.participant_evict_idle_s
        gone: list[tuple[Participant, float]] = []
        for participant in self.by_id.values():
            if participant.connection_id is not None:
                continue
            idle = now - participant.last_seen_at
            if not (participant.finished and make_room):
                limit = finished_s if participant.finished else idle_s
                if not limit or idle < limit:
                    continue
            pid = participant.participant_id
            lock = self._locks.get(pid)
            if self.games.holds(pid) or (lock is not None and lock.locked()):
                continue
            gone.append((participant, idle))
        for participant, idle in gone:
            pid = participant.participant_id
            self._event(participant, "evicted", reason="finished" if participant.finished else "idle")
            del self.by_id[pid]
            self.by_token_hash.pop(participant.token_hash, None)
            self._locks.pop(pid, None)
            if participant.token_hash:
                self._evicted.add(bytes.fromhex(participant.token_hash))
            log.info(
                "participant_evicted",
                participant_id=pid,
                finished=participant.finished,
                idle_s=round(idle, 1),
            )
        if gone:
            self.games.forget({p.participant_id for p, _idle in gone})
        return len(gone)

    async def _restore_evicted(self, token_hash: str) -> Participant | None:
        """Rebuild an evicted participant from the ``sessions`` records (read off the event loop)."""
        # Their own records were stored before they were evicted; the flush only adds the latest
        # records of others, so a sink that cannot write now does not keep them out.
        with contextlib.suppress(DataNotSavedError):
            await self.recorder.flush()

        def read() -> list[dict[str, Any]] | None:
            events = self.recorder.read("sessions")
            return None if events is None else list(events)

        # Tried once: a participant who cannot be rebuilt (the experiment changed) starts afresh,
        # and their later reloads do not read the records again.
        self._evicted.discard(bytes.fromhex(token_hash))
        events = await asyncio.to_thread(read)
        if events is not None and self.restore(events, only_token_hash=token_hash):
            log.info("participant_returned_from_records", token_sha256_prefix=token_hash[:8])
        return self.by_token_hash.get(token_hash)

    def _too_early(self, participant: Participant, message: Submit) -> Reply | None:
        """Refuse (and record) a submit that comes before the scene's minimum time on the page.

        The page keeps its button disabled for ``min_time_on_page_ms`` from when it shows the
        scene, which is after the server entered it, so an honest page is never early by the
        server's clock; ``SUBMIT_EARLY_TOLERANCE_MS`` only absorbs timer rounding in the browser
        and the wall clock being slewed (time.time(), the clock ``entered_at`` and ``rt_ms`` use).
        """
        required_ms = participant.scene.min_time_on_page_ms()
        if required_ms <= 0:
            return None
        elapsed_ms = (time.time() - participant.entered_at) * 1000
        if elapsed_ms >= required_ms - SUBMIT_EARLY_TOLERANCE_MS:
            return None
        self._event(
            participant,
            "submission_rejected",
            reason="too_early",
            elapsed_ms=round(elapsed_ms),
            min_duration_ms=required_ms,
        )
        log.info(
            "submission_too_early",
            participant_id=participant.participant_id,
            elapsed_ms=round(elapsed_ms),
            min_duration_ms=required_ms,
        )
        return ErrorMessage(
            code="too_early",
            message=f"This page must stay open for {required_ms / 1000:g} s before continuing; "
            f"it was submitted after {elapsed_ms / 1000:.2f} s. Continue once the button is enabled.",
            seq=message.seq,
            retry_after_ms=max(0, round(required_ms - elapsed_ms)),
        ).wire()


_NAMED_KEYS = 3
"""How many unknown answer keys an error names (the rest are counted)."""


def _unknown_keys(answers: Mapping[str, Any], allowed: frozenset[str] | None) -> list[str]:
    if allowed is None:
        return []
    return [key for key in answers if key not in allowed]


def _some(keys: list[str]) -> str:
    shown = ", ".join(repr(key[:32]) for key in keys[:_NAMED_KEYS])
    more = len(keys) - _NAMED_KEYS
    return f"{shown} and {more} more" if more > 0 else shown
