"""The study service: participants joining, resuming, answering and finishing.

Transport-free: the WebSocket handler turns frames into calls here and sends what comes back, so
the rules of the study live in one place and are tested without a browser.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs
import structlog

from igym_core.config.experiment import Experiment
from igym_core.config.urls import fill_url_template
from igym_core.config.value_text import declared_values
from igym_core.data.recorder import Recorder
from igym_core.data.recorder import iso_utc as _iso
from igym_core.errors import AdmissionError, DataNotSavedError, StudyUnavailableError
from igym_core.plugins.manager import IgymPluginManager
from igym_core.protocol.messages import PROTOCOL_VERSION, Draft, GameReady, Hello, Input, Submit
from igym_core.protocol.server_messages import (
    Ack,
    ErrorMessage,
    GameStatus,
    Rejected,
    SceneMessage,
    Superseded,
    Welcome,
)
from igym_core.runtime.interface import GameExit, RuntimeMessage
from igym_core.scenes.interface import PrepareContext, SceneConfig, SceneContext
from igym_core.scenes.stager import expand_sequence, iter_scenes
from igym_core.session.admission import NewParticipantRate
from igym_core.session.conditions import ConditionLedger
from igym_core.session.games import GameCoordinator, WaitingTimeout
from igym_core.session.participant import Participant, ParticipantIndex
from igym_core.session.saving import SaveWaits, Then, saving_reply
from igym_core.session.study_limits import SUBMIT_EARLY_TOLERANCE_MS as SUBMIT_EARLY_TOLERANCE_MS
from igym_core.session.study_limits import StudyLimits, _unknown_keys
from igym_core.session.study_monitoring import StudyMonitoring
from igym_core.session.study_recruitment import StudyRecruitment
from igym_core.session.study_restart import StudyRestart, _mark_outcome
from igym_core.settings import Settings

__all__ = ["Connection", "Study"]

log = structlog.get_logger(__name__)

Reply = dict[str, Any]


@attrs.define(eq=False)
class Connection:
    """One open socket, as the study sees it."""

    id: int
    send: Callable[[Reply], Awaitable[None]]
    close: Callable[[int, str], Awaitable[None]]
    participant_id: str | None = None
    frames: Any = None
    """The socket's :class:`~igym_core.server.outbox.FrameOutbox` for game frames."""
    address: str | None = None
    """The client's address (uvicorn's, after ``--proxy-headers``): new participants are counted by it."""
    user_agent: str | None = None
    """The socket request's ``User-Agent`` header (entry screening judges the browser by it)."""


class Study(StudyRestart, StudyLimits, StudyRecruitment, StudyMonitoring):
    """Owns the experiment's participants for the life of the app."""

    def __init__(
        self,
        *,
        experiment: Experiment,
        base_dir: Path,
        plugins: IgymPluginManager,
        converter: cattrs.Converter,
        recorder: Recorder,
        settings: Settings | None = None,
        views: Mapping[int, dict[str, Any]] | None = None,
        prepared: Mapping[int, Any] | None = None,
    ) -> None:
        """``views`` and ``prepared``: each scene's client view and prepared form by ``id(scene)``,
        as :func:`igym_core.serving.validate_for_serving` made them (computed here when absent)."""
        self.experiment = experiment
        self.settings = settings or Settings()
        self.base_dir = base_dir
        self.plugins = plugins
        self.converter = converter
        self.recorder = recorder
        self.ledger = ConditionLedger(experiment.conditions, seed=experiment.seed)
        self._value_defaults = declared_values(experiment)  # for texts with the participant's values
        # Keyed by the token's hash, the form recorded in sessions.jsonl, so restored participants
        # and live ones are found the same way.
        self.by_token_hash: dict[str, Participant] = {}
        self.by_id = ParticipantIndex()
        self.connections: dict[int, Connection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._next_connection = 0
        # Bounded participant state (see Settings): new participants per address, and the token
        # hashes (32 bytes each) of participants evicted from memory, whose return is restored
        # from the records.
        self._new_rate = NewParticipantRate(self.settings.max_new_participants_per_ip_per_min)
        self._evicted: set[bytes] = set()
        # People on the recruitment platform who finished (Experiment.recruitment's person key).
        self._finished_people: dict[str, str] = {}
        # Unfinished participants by the recruiter's resume key (Prolific: PID + SESSION_ID).
        self._resume_keys: dict[str, str] = {}
        # page_event records per participant (bounded by IGYM_MAX_PAGE_EVENTS_PER_PARTICIPANT).
        self._page_event_counts: dict[str, int] = {}
        # Client views are computed once, up front: a missing body_file fails at start, not mid-study.
        self._views: dict[int, dict[str, Any]] = (
            dict(views)
            if views is not None
            else {
                id(scene): scene.client_view(converter, base_dir)
                for scene, _path in iter_scenes(experiment.scenes)
            }
        )
        # Game scenes build their env, seats and bots once, here, so a broken one fails at start.
        prepare_context = PrepareContext(
            base_dir=base_dir, registry=plugins.registry, converter=converter, experiment_seed=experiment.seed
        )
        self._prepared: dict[int, Any] = (
            dict(prepared)
            if prepared is not None
            else {
                id(scene): scene.prepare(prepare_context) for scene, _path in iter_scenes(experiment.scenes)
            }
        )
        self.games = GameCoordinator(
            settings=self.settings,
            plugins=plugins,
            recorder=recorder,
            experiment_id=experiment.experiment_id,
            experiment_seed=experiment.seed,
            sinks=self._game_sinks,
            advance=self._advance_after_game,
            timed_out=self._waiting_timed_out,
            add_values=self._add_game_values,
        )
        # Participants whose next scene waits for their records to be saved (a full disk).
        self.saves = SaveWaits(
            recorder, retry_interval_s=self.settings.flush_interval_ms / 1000, resume=self._resume_saved
        )
        # Records piling up while they cannot be stored (IGYM_MAX_UNSAVED_BYTES): games pause.
        recorder.hold_listeners.append(self.games.hold_for_saving)
        # --- the admin dashboard (igym_core/admin) ---
        #: Called with (participant, event, detail) for every session event as it is recorded.
        self.event_listeners: list[Callable[[Participant, str, Mapping[str, Any]], None]] = []
        #: While set, new participants are refused with this message (those in the study go on).
        self.arrivals_paused: str | None = None

    # --- connections --------------------------------------------------------------------------
    def open_connection(
        self,
        send: Callable[[Reply], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
        frames: Callable[[int], Any] | None = None,
        address: str | None = None,
    ) -> Connection:
        """Register a socket; ``frames(connection_id)`` builds its frame outbox for games."""
        self._next_connection += 1
        connection = Connection(self._next_connection, send, close, address=address)
        if frames is not None:
            connection.frames = frames(connection.id)
        self.connections[connection.id] = connection
        return connection

    async def hello(self, connection: Connection, message: Hello) -> Participant:
        """Resume the token's participant or start a new one; :class:`AdmissionError` if refused."""
        self._check_url_params(message.params)
        known = None
        if message.token:
            token_hash = _token_hash(message.token)
            known = self.by_token_hash.get(token_hash)
            if known is None and bytes.fromhex(token_hash) in self._evicted:
                known = await self._restore_evicted(token_hash)
        if message.token and known is None:
            log.info("token_unknown", detail="a browser presented a token this server did not issue")
        identity = self.plugins.resolve_participant(token=message.token, params=message.params, known=known)
        participant = self.by_id.get(identity.resume_id) if identity.resume_id else None
        resumed_by_identity = None
        if participant is None:
            # The same person and submission from a browser without their token resumes them.
            participant = await self._resumable_by_identity(message.params)
            if participant is not None:
                resumed_by_identity = self._reissue_token(participant, message.params)
        if participant is None:
            self._check_recruitment_entry(message.params)
            if self.arrivals_paused is not None:
                log.info("participant_refused", reason="arrivals_paused")
                raise AdmissionError("arrivals_paused", self.arrivals_paused)
            self._admit(connection)
            participant = await self._join(message.params)
            resumed = False
        else:
            resumed = True
            if not participant.token and message.token:  # restored after a restart
                participant.token = message.token
            await self._take_over(participant, connection)
        participant.connection_id = connection.id
        participant.user_agent = connection.user_agent
        connection.participant_id = participant.participant_id
        if resumed_by_identity is not None:
            # The new token's hash: a restarted server recognises this browser too.
            self._event(
                participant, "resumed", reason="same_recruitment_identity", token_sha256=resumed_by_identity
            )
            log.info("participant_resumed_by_identity", participant_id=participant.participant_id)
        elif resumed:
            self._event(participant, "resumed")
            if not participant.finished and participant.scene.game_runtime():
                await self._resume_game_scene(participant)
        await connection.send(
            Welcome(
                protocol=PROTOCOL_VERSION,
                token=participant.token,
                participant_id=participant.participant_id,
                resumed=resumed,
            ).wire()
        )
        for reply in self.scene_replies(participant):
            await connection.send(reply)
        return participant

    async def _take_over(self, participant: Participant, connection: Connection) -> None:
        old = self.connections.get(participant.connection_id or -1)
        if old is None or old is connection:
            return
        self._event(participant, "superseded", old_connection=old.id, new_connection=connection.id)
        self.plugins.notify_participant_left(participant, "superseded")
        old.participant_id = None
        try:
            await old.send(
                Superseded(
                    message="This study is now open in another tab or window, so this page has "
                    "stopped. Continue in the other one, or continue here to move the study back to "
                    "this page."
                ).wire()
            )
            await old.close(4001, "superseded")
        except Exception:  # the old socket may already be half-closed; the takeover stands
            log.debug("superseded_close_failed", connection=old.id)

    def disconnected(self, connection: Connection) -> None:
        self.connections.pop(connection.id, None)
        participant = self.by_id.get(connection.participant_id or "")
        if participant is None or participant.connection_id != connection.id:
            return
        participant.connection_id = None
        participant.last_seen_at = time.monotonic()
        self._event(participant, "disconnected")
        self.games.disconnected(participant.participant_id)
        if not participant.finished:
            self.plugins.notify_participant_left(participant, "disconnected")

    def owner(self, connection: Connection) -> Participant | None:
        """The participant this connection speaks for, or None if another tab took over."""
        participant = self.by_id.get(connection.participant_id or "")
        if participant is None or participant.connection_id != connection.id:
            return None
        return participant

    # --- joining ------------------------------------------------------------------------------

    async def _join(self, params: Mapping[str, str]) -> Participant:
        if not self.recorder.saving:
            raise StudyUnavailableError("unavailable", _UNAVAILABLE)
        params, marked = self._url_params(params)
        participant = Participant(
            participant_id=f"p-{secrets.token_hex(6)}",
            token=secrets.token_urlsafe(32),
            params=dict(params),
        )
        participant.token_hash = _token_hash(participant.token)
        self.by_token_hash[participant.token_hash] = participant
        self.by_id[participant.participant_id] = participant
        # The token's hash (not the token) lets a restarted server recognise the participant.
        self._event(
            participant,
            "joined",
            recruitment_ids=self._recruitment_identity(participant),
            token_sha256=_token_hash(participant.token),
        )
        self._note_resume_key(participant)
        if marked:
            self._event(participant, "url_params_missing", names=marked, action="marked")
            log.warning("url_params_missing", participant_id=participant.participant_id, names=marked)
        if self.experiment.conditions:
            condition = self.plugins.resolve_condition(
                participant=participant, experiment=self.experiment, ledger=self.ledger
            )
            self.ledger.record(condition)
            participant.condition = condition
            self._event(participant, "condition_assigned", condition=condition)
        participant.slots, participant.draws = expand_sequence(
            self.experiment.scenes,
            participant_id=participant.participant_id,
            condition=participant.condition,
            experiment_seed=self.experiment.seed,
        )
        self._event(
            participant,
            "sequence_drawn",
            sequence=[{"scene_id": s.scene.scene_id, "instance": s.instance} for s in participant.slots],
            draws=participant.draws,
            seed=self.experiment.seed,
        )
        log.info(
            "participant_joined", participant_id=participant.participant_id, condition=participant.condition
        )
        self.plugins.notify_participant_joined(participant)
        await self._enter(participant)
        return participant

    def _context(self, participant: Participant) -> SceneContext:
        return SceneContext(
            participant_id=participant.participant_id,
            params=participant.params,
            condition=participant.condition,
            instance=participant.slot.instance,
            position=participant.position,
            values=participant.values,
            outcome=participant.outcome,
            user_agent=participant.user_agent,
            value_defaults=self._value_defaults,
        )

    async def _enter(self, participant: Participant) -> None:
        """Enter the scene at ``participant.position``: record it, save it, then show it.

        Nothing follows from the new scene (its game queue, the end scene's completion code and
        redirect, the plugins' notifications) before the participant's records are stored: on an
        end scene durably, as it may redirect at once. If a required sink cannot store them, the
        participant waits (``self.saves``) and their page shows ``saving`` until a retry succeeds.
        """
        participant.entered_at = time.time()
        slot = participant.slot
        drawn = slot.scene.new_values(self._context(participant))
        way_back = self.way_back(participant) if slot.scene.terminal else None
        if way_back is not None and way_back.code is not None:  # the platform's code for the outcome
            drawn["completion_code"] = way_back.code
        if slot.scene.terminal and participant.values.get("exit_reasons"):  # recorded for a restart
            drawn["exit_reasons"] = participant.values["exit_reasons"]
        participant.values.update(drawn)
        self._event(participant, "scene_entered", **({"values": drawn} if drawn else {}))
        if slot.scene.terminal:
            participant.finished = True
            self.games.participant_finished(participant.participant_id)
            self._event(
                participant,
                "finished",
                outcome=participant.outcome,
                values=participant.values,
                **self._way_back_detail(participant),
            )
            self._note_finished(participant)
            log.info("participant_finished", participant_id=participant.participant_id)
        if await self._saved(
            participant, durable=slot.scene.terminal, then=lambda: self._entered(participant)
        ):
            await self._entered(participant)

    async def _entered(self, participant: Participant) -> None:
        """What follows from entering a scene, once its records are stored."""
        slot = participant.slot
        self.plugins.notify_scene_activated(participant, slot.scene, slot.instance)
        if slot.scene.game_runtime():
            await self._enter_game(participant)
        if slot.scene.terminal:
            self.plugins.notify_participant_finished(participant)

    async def _saved(self, participant: Participant, *, durable: bool, then: Then | None = None) -> bool:
        """Flush the records; if a required sink cannot store them, ``participant`` waits for a
        retry (which runs ``then`` and shows their scene) and this returns False."""
        if participant.participant_id not in self.saves:
            try:
                await self.recorder.flush(durable=durable)
                return True
            except DataNotSavedError:
                pass  # the recorder has logged it
        self.saves.add(participant.participant_id, durable=durable, then=then)
        return False

    async def _resume_saved(self, participant_id: str, then: Then | None) -> None:
        """A waiting participant's records are stored: carry on, and show the scene."""
        participant = self.by_id.get(participant_id)
        if participant is None:
            return
        async with self._locks.setdefault(participant_id, asyncio.Lock()):
            participant.entered_at = time.time()  # the scene is shown now
            if then is not None:
                await then()
            replies = self.scene_replies(participant)
        await self._push(participant, replies)

    # --- games --------------------------------------------------------------------------------
    async def _enter_game(self, participant: Participant) -> None:
        if participant.participant_id in self.saves:
            return  # queued once the scene's records are stored (_resume_saved)
        await self.games.enter(participant, self._prepared[id(participant.scene)])

    def _game_sinks(self, participant_id: str) -> tuple[Any, Callable[[Reply], Awaitable[None]] | None]:
        participant = self.by_id.get(participant_id)
        connection = self.connections.get(participant.connection_id or -1) if participant else None
        if connection is None:
            return None, None
        return connection.frames, connection.send

    def prepared_scene(self, scene: SceneConfig) -> Any:
        """What ``scene.prepare`` returned for one of the experiment's scenes (a game scene's
        prepared game), for plugins that serve something per scene (a browser runtime's packages)."""
        return self._prepared[id(scene)]

    def game_message(self, participant: Participant, message: Input | GameReady | RuntimeMessage) -> None:
        self.games.handle(participant.participant_id, message)

    def _add_game_values(
        self, participant_id: str, values: Mapping[str, Any], accumulate: bool = False
    ) -> None:
        """Values a game computed for a participant (a server-side score or bonus), kept and
        recorded; ``accumulate``: numbers add to what the participant has (a scene played again)."""
        participant = self.by_id.get(participant_id)
        if participant is None or not values:
            return
        totals = participant.add_values(values, accumulate=accumulate)
        self._event(
            participant, "values_added", values=totals, **({"increments": dict(values)} if accumulate else {})
        )

    async def _advance_after_game(
        self,
        participant_id: str,
        game_id: str,
        position: int,
        reason: str = "completed",
        exit: GameExit | None = None,
    ) -> None:
        """Move a player on from the game scene at ``position`` once its game has ended.

        An ``abandoned`` game (nobody connected for the scene's ``abandon_after_s``) ends the
        study for them if the scene says ``on_abandon="end"``. A game that ends with an ``exit``
        (one that could not be played) marks their outcome and moves them where it says.
        """
        participant = self.by_id.get(participant_id)
        if participant is None:
            return
        lock = self._locks.setdefault(participant_id, asyncio.Lock())
        async with lock:
            if participant.position != position or participant.finished:
                return
            if exit is not None:
                _mark_outcome(participant, exit.outcome)
                self._event(participant, "scene_left", game_id=game_id, reason=reason, outcome=exit.outcome)
                replies = await self._move_to(participant, _exit_target(participant, exit))
                await self._push(participant, replies)
                return
            if reason == "abandoned":
                _mark_outcome(participant, "game_abandoned")
                prepared = self._prepared[id(participant.scene)]
                if prepared.on_abandon == "end":
                    replies = await self._finish_in_game_scene(
                        participant,
                        outcome="game_abandoned",
                        message=prepared.abandon_message,
                        game_id=game_id,
                    )
                    await self._push(participant, replies)
                    return
            if reason in ("partner_left", "slow_connection"):  # reported to a recruitment platform
                _mark_outcome(participant, reason)
            self._event(participant, "scene_left", game_id=game_id, reason=reason)
            replies = await self._move_to(participant, participant.position + 1)
        await self._push(participant, replies)

    async def _finish_in_game_scene(
        self,
        participant: Participant,
        *,
        outcome: str,
        message: str,
        redirect_url: str | None = None,
        **detail: Any,
    ) -> list[Reply]:
        """End the study of a participant in a game scene, with a message and no completion code.

        The final ``game_status`` is recorded with ``finished`` so that a reload, also after a
        restart, shows it again. Their data is made durable before the page may leave.
        """
        filled_url = None
        if redirect_url:
            values = {k: str(v) for k, v in participant.params.items()}
            values["participant_id"] = participant.participant_id
            filled_url = fill_url_template(redirect_url, values)
        participant.outcome = outcome
        way_back = self.way_back(participant)
        status = GameStatus(
            game_id=None,
            phase="ended",
            episode=1,
            num_episodes=1,
            seat=None,
            message=message,
            final=True,
            outcome=outcome,
            redirect_url=filled_url,
            way_back=way_back.wire() if way_back is not None else None,
        ).wire()
        participant.finished = True
        participant.outcome = outcome
        self.games.participant_finished(participant.participant_id)
        self._event(
            participant,
            "finished",
            outcome=outcome,
            values=participant.values,
            final_status=status,
            **self._way_back_detail(participant),
            **detail,
        )
        self._note_finished(participant)
        self.games.final_status[participant.participant_id] = status
        # Shown (and its redirect followed) only once the records are durable.
        if await self._saved(participant, durable=True):
            return [status]
        return [saving_reply(participant.position)]

    async def _move_to(self, participant: Participant, position: int) -> list[Reply]:
        """Enter the scene at ``position`` (outside a submit) and return what the page needs."""
        participant.position = position
        await self._enter(participant)
        return self.scene_replies(participant)

    async def _push(self, participant: Participant, replies: list[Reply]) -> None:
        """Send replies the page did not ask for; if it is not connected, its reconnect gets them."""
        connection = self.connections.get(participant.connection_id or -1)
        if connection is not None:
            try:
                for reply in replies:
                    await connection.send(reply)
            except Exception:  # the page reconnects and gets the scene then
                log.debug("push_failed", participant_id=participant.participant_id)

    async def _waiting_timed_out(self, timeout: WaitingTimeout) -> None:
        """Apply a waiting room's ``on_timeout`` to a participant who waited too long for a group."""
        participant = self.by_id.get(timeout.participant_id)
        if participant is None:
            return
        lock = self._locks.setdefault(participant.participant_id, asyncio.Lock())
        async with lock:
            if participant.position != timeout.position or participant.finished:
                return
            self._event(participant, "waiting_timeout", action=timeout.action)
            _mark_outcome(participant, "waiting_timeout")
            if timeout.action in ("message", "redirect"):
                replies = await self._finish_in_game_scene(
                    participant,
                    outcome="waiting_timeout",
                    message=timeout.message,
                    redirect_url=timeout.redirect_url if timeout.action == "redirect" else None,
                )
            else:
                target = participant.position + 1
                if timeout.action == "goto" and timeout.scene_id:
                    later = [
                        i
                        for i in range(participant.position + 1, len(participant.slots))
                        if participant.slots[i].scene.scene_id == timeout.scene_id
                    ]
                    if later:
                        target = later[0]
                    else:
                        log.warning(
                            "timeout_scene_not_ahead",
                            participant_id=participant.participant_id,
                            scene_id=timeout.scene_id,
                            detail="not later in this participant's sequence; going to the next scene",
                        )
                self._event(participant, "scene_left")
                replies = await self._move_to(participant, min(target, len(participant.slots) - 1))
        await self._push(participant, replies)

    # --- messages -----------------------------------------------------------------------------
    def scene_replies(self, participant: Participant) -> list[Reply]:
        """The ``scene`` message, followed by the game's status when the scene is a game."""
        if participant.participant_id in self.saves:
            return [saving_reply(participant.position)]
        replies = [self.scene_message(participant)]
        status = self.games.status_message(participant.participant_id)
        if status is not None:
            replies.append(status)
        return replies

    def scene_message(self, participant: Participant) -> Reply:
        slot = participant.slot
        return SceneMessage(
            position=participant.position,
            total=len(participant.slots),
            instance=slot.instance,
            scene=self._views[id(slot.scene)],
            draft=participant.drafts.get(participant.position, {}),
            context=self._with_way_back(participant, slot.scene.client_context(self._context(participant))),
        ).wire()

    def _with_way_back(self, participant: Participant, context: dict[str, Any]) -> dict[str, Any]:
        """An end scene's context with the recruitment platform's way back (and its code)."""
        way_back = self.way_back(participant) if participant.finished and participant.scene.terminal else None
        if way_back is None:
            return context
        out = {**context, "way_back": way_back.wire()}
        out.pop("redirect_url", None)  # the platform's way back replaces the scene's own redirect
        if way_back.code is not None:
            out["completion_code"] = way_back.code
        return out

    def draft(self, participant: Participant, message: Draft) -> Reply:
        if message.position != participant.position or participant.finished:
            return _stale(message.seq, participant.position)
        refusal = self._draft_refusal(participant, message.answers)
        if refusal is not None:
            code, text = refusal
            log.warning("draft_refused", participant_id=participant.participant_id, code=code, reason=text)
            return ErrorMessage(code=code, message=text, seq=message.seq).wire()
        # Only the current scene's draft is worth keeping: positions only move forward.
        participant.drafts.clear()
        participant.drafts[participant.position] = dict(message.answers)
        return Ack(seq=message.seq).wire()

    async def submit(self, participant: Participant, message: Submit) -> list[Reply]:
        lock = self._locks.setdefault(participant.participant_id, asyncio.Lock())
        async with lock:
            waiting = participant.participant_id in self.saves  # its page shows "saving", no scene
            if message.position != participant.position or participant.finished or waiting:
                # Resend the current scene so that a page that fell behind (a lost ack, a retry
                # after an error) catches up instead of staying stuck on an old scene.
                return [_stale(message.seq, participant.position), *self.scene_replies(participant)]
            slot = participant.slot
            if slot.scene.game_runtime():
                return [
                    ErrorMessage(
                        code="game_scene",
                        message="A game scene ends when its game ends; it takes no submissions.",
                        seq=message.seq,
                    ).wire()
                ]
            unknown = _unknown_keys(message.answers, slot.scene.answer_ids())
            if unknown:
                return [self._refuse_unknown_answers(participant, message, unknown)]
            early = self._too_early(participant, message)
            if early is not None:
                return [early]
            errors = slot.scene.validate_response(message.answers)
            if errors:
                shown = _bounded_errors(errors)
                extra = {"error_count": len(errors)} if len(shown) < len(errors) else {}
                self._event(participant, "submission_rejected", errors=shown, **extra)
                return [
                    Rejected(
                        seq=message.seq,
                        position=message.position,
                        errors=shown,
                        message="Please check the highlighted answers.",
                        error_count=len(errors) if len(shown) < len(errors) else None,
                    ).wire()
                ]
            submitted_at = time.time()
            for row in slot.scene.response_rows(message.answers):
                self.recorder.write(
                    "responses",
                    {
                        **self._who(participant),
                        "scene_id": slot.scene.scene_id,
                        "scene_kind": slot.scene.kind,
                        "instance": slot.instance,
                        "position": participant.position,
                        **row,
                        "entered_at": _iso(participant.entered_at),
                        "submitted_at": _iso(submitted_at),
                        "rt_ms": round((submitted_at - participant.entered_at) * 1000),
                    },
                )
            judgement = slot.scene.judge_response(message.answers, self._context(participant))
            if judgement is not None:
                self._event(participant, judgement.event, **judgement.detail)
            participant.drafts.pop(participant.position, None)
            if judgement is not None and judgement.exit_outcome is not None:
                # Out of the study (an entry screening): to the end scene, which says why and
                # returns them to the platform with the outcome's code once this is stored.
                _mark_outcome(participant, judgement.exit_outcome)
                participant.values["exit_reasons"] = list(judgement.reasons)
                self._event(participant, "scene_left", outcome=judgement.exit_outcome)
                participant.position = _exit_target(
                    participant, GameExit(outcome=judgement.exit_outcome, to_end=True)
                )
            else:
                self._event(participant, "scene_left")
                participant.position += 1
            await self._enter(participant)  # (which stores the records before showing the next scene)
            return [Ack(seq=message.seq).wire(), *self.scene_replies(participant)]

    # --- records ------------------------------------------------------------------------------
    def _who(self, participant: Participant) -> dict[str, Any]:
        return {
            "participant_id": participant.participant_id,
            "condition": participant.condition,
            "params": participant.params,
        }

    def _event(self, participant: Participant, event: str, **detail: Any) -> None:
        slot = participant.slots[participant.position] if participant.slots else None
        self.recorder.write(
            "sessions",
            {
                **self._who(participant),
                "event": event,
                "position": participant.position if slot else None,
                "scene_id": slot.scene.scene_id if slot else None,
                "instance": slot.instance if slot else None,
                "detail": detail,
            },
        )
        for listener in self.event_listeners:
            try:
                listener(participant, event, detail)
            except Exception:  # a dashboard's bookkeeping never fails a participant's step
                log.exception("event_listener_failed", event=event)

    def summary(self) -> dict[str, Any]:
        """Counts for ``/stats``: kept up to date as things happen, never a loop over participants."""
        return {
            "participants": len(self.by_id),
            "participants_evicted": len(self._evicted),
            "connected": self.by_id.connected,
            "finished": self.by_id.finished,
            "conditions": dict(self.ledger.counts),
            **self.games.stats(),
        }


_UNAVAILABLE = (
    "This study cannot take new participants right now because it cannot save data. "
    "Please keep this page open: it tries again by itself."
)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_MAX_SHOWN_ERRORS = 20
"""How many of a scene's validation errors a reply and the record carry (the rest are counted)."""


def _bounded_errors(errors: Mapping[str, str]) -> dict[str, str]:
    """A scene's validation errors, at most ``_MAX_SHOWN_ERRORS`` of them, keys and texts cut short."""
    out: dict[str, str] = {}
    for key, text in errors.items():
        if len(out) >= _MAX_SHOWN_ERRORS:
            break
        out[str(key)[:64]] = str(text)[:300]
    return out


def _exit_target(participant: Participant, exit: GameExit) -> int:
    """The position a game's ``exit`` sends the participant to (the next scene if it names none
    that is ahead of them)."""
    last = len(participant.slots) - 1
    later = range(participant.position + 1, last + 1)
    if exit.to_end:
        ends = [i for i in later if participant.slots[i].scene.terminal]
        return ends[0] if ends else last
    if exit.to_scene is not None:
        named = [i for i in later if participant.slots[i].scene.scene_id == exit.to_scene]
        if named:
            return named[0]
        log.warning(
            "exit_scene_not_ahead",
            participant_id=participant.participant_id,
            scene_id=exit.to_scene,
            detail="not later in this participant's sequence; going to the next scene",
        )
    return min(participant.position + 1, last)


def _stale(seq: int, position: int) -> Reply:
    return ErrorMessage(
        code="stale_position",
        message=f"That message is for another scene; the current scene is at position {position}.",
        seq=seq,
    ).wire()
