"""The study service: participants joining, resuming, answering and finishing.

Transport-free: the WebSocket handler turns frames into calls here and sends what comes back, so
the rules of the study live in one place and are tested without a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs
import msgpack
import structlog

from igym_core.config.experiment import Experiment
from igym_core.config.urls import apply_url_params, fill_url_template, mark_url_params, refusal_text
from igym_core.data.recorder import Recorder
from igym_core.data.recorder import iso_utc as _iso
from igym_core.errors import AdmissionError, DataNotSavedError, EntryRefusedError, StudyUnavailableError
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
from igym_core.scenes.interface import PrepareContext, SceneContext
from igym_core.scenes.stager import expand_sequence, iter_scenes
from igym_core.session.admission import NewParticipantRate, address_key, check_url_params
from igym_core.session.conditions import ConditionLedger
from igym_core.session.games import GameCoordinator, WaitingTimeout
from igym_core.session.participant import Participant, ParticipantIndex
from igym_core.session.recovery import RecordReader, recover_interrupted_games
from igym_core.session.saving import SaveWaits, Then, saving_reply
from igym_core.settings import Settings

__all__ = ["Connection", "Study"]

log = structlog.get_logger(__name__)

Reply = dict[str, Any]

#: How much earlier than a scene's minimum time on the page a submit may arrive and still count
#: (see ``Study._too_early``).
SUBMIT_EARLY_TOLERANCE_MS = 250


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


class Study:
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
        )
        # Participants whose next scene waits for their records to be saved (a full disk).
        self.saves = SaveWaits(
            recorder, retry_interval_s=self.settings.flush_interval_ms / 1000, resume=self._resume_saved
        )
        # Records piling up while they cannot be stored (IGYM_MAX_UNSAVED_BYTES): games pause.
        recorder.hold_listeners.append(self.games.hold_for_saving)

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
        if participant is None:
            self._admit(connection)
            participant = await self._join(message.params)
            resumed = False
        else:
            resumed = True
            if not participant.token and message.token:  # restored after a restart
                participant.token = message.token
            await self._take_over(participant, connection)
        participant.connection_id = connection.id
        connection.participant_id = participant.participant_id
        if resumed:
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

    # --- restart ------------------------------------------------------------------------------
    def restore(self, events: Iterable[Mapping[str, Any]], *, only_token_hash: str | None = None) -> int:
        """Rebuild participants from the ``sessions`` records of earlier runs; return how many.

        ``only_token_hash``: rebuild only the participant whose token has this hash (one evicted
        from memory who came back); the condition ledger counted them when they joined.

        The scene sequence is drawn again from the seed and compared with the recorded one; a
        participant whose sequence no longer matches (the experiment changed) is not restored and
        starts afresh if they come back. Typed-but-unsubmitted answers are not restored.
        """
        restored: dict[str, Participant] = {}
        final_statuses: dict[str, dict[str, Any]] = {}
        token_hashes: dict[str, str] = {}
        recorded_sequence: dict[str, list[tuple[str, int]]] = {}
        for row in events:
            if row.get("experiment_id") != self.experiment.experiment_id:
                continue
            pid = row.get("participant_id")
            event = row.get("event")
            detail = row.get("detail") or {}
            if event == "joined" and isinstance(pid, str) and pid not in self.by_id:
                token_hash = detail.get("token_sha256")
                if not token_hash or (only_token_hash is not None and token_hash != only_token_hash):
                    continue
                participant = Participant(participant_id=pid, token="", params=dict(row.get("params") or {}))
                restored[pid] = participant
                token_hashes[pid] = token_hash
                continue
            participant = restored.get(pid or "")
            if participant is None:
                continue
            if event == "condition_assigned":
                participant.condition = detail.get("condition")
                if participant.condition in self.experiment.conditions and only_token_hash is None:
                    self.ledger.record(participant.condition)
            elif event == "sequence_drawn":
                recorded_sequence[participant.participant_id] = [
                    (item["scene_id"], item["instance"]) for item in detail.get("sequence", [])
                ]
            elif event == "scene_entered":
                participant.position = int(row.get("position") or 0)
                participant.entered_at = _parse_timestamp(row.get("timestamp"), participant.entered_at)
                participant.values.update(detail.get("values") or {})
            elif event == "scene_left" and detail.get("reason") == "abandoned":
                _mark_outcome(participant, "game_abandoned")
            elif event == "waiting_timeout":
                _mark_outcome(participant, "waiting_timeout")
            elif event == "url_params_missing":
                # Marked at joining or by an earlier restore: the row carries the marked values.
                participant.params.update(row.get("params") or {})
            elif event == "finished":
                participant.finished = True
                participant.outcome = str(detail.get("outcome") or participant.outcome)
                if isinstance(detail.get("final_status"), dict):  # finished by a waiting room
                    final_statuses[participant.participant_id] = detail["final_status"]
        count = 0
        for pid, participant in restored.items():
            try:
                slots, draws = expand_sequence(
                    self.experiment.scenes,
                    participant_id=pid,
                    condition=participant.condition,
                    experiment_seed=self.experiment.seed,
                )
            except LookupError:
                slots, draws = [], {}
            if [(s.scene.scene_id, s.instance) for s in slots] != recorded_sequence.get(pid):
                log.warning("participant_not_restored", participant_id=pid, reason="sequence changed")
                continue
            participant.slots, participant.draws = slots, draws
            participant.position = min(participant.position, len(slots) - 1)
            self.by_id[pid] = participant
            participant.token_hash = token_hashes[pid]
            self.by_token_hash[token_hashes[pid]] = participant
            if pid in final_statuses:
                self.games.final_status[pid] = final_statuses[pid]
            self._mark_restored_url_params(participant)
            count += 1
        if count:
            log.info("participants_restored", count=count)
        return count

    def _mark_restored_url_params(self, participant: Participant) -> None:
        """A participant who joined before a URL parameter was declared lacks it: mark it as joining
        would (recorded once, so a later restart finds it marked), so a redirect never fails or
        goes out with an empty value."""
        participant.params, marked = mark_url_params(self.experiment.url_params, participant.params)
        if marked:
            self._event(participant, "url_params_missing", names=marked, action="marked", reason="restored")
            log.warning(
                "url_params_missing",
                participant_id=participant.participant_id,
                names=marked,
                reason="restored",
            )

    def recover_games(self, read: RecordReader) -> int:
        """Complete the records of the games a killed server was running, and note every game a
        server stopped for its players' return; return how many games a player may come back to.

        Call after :meth:`restore`. Each player's game scene then follows its ``on_restart``.
        """
        prepared = {
            scene.scene_id: self._prepared[id(scene)]
            for scene, _path in iter_scenes(self.experiment.scenes)
            if scene.game_runtime()
        }

        def seed(scene_id: str, instance: int, participant_ids: tuple[str, ...], episode: int) -> int | None:
            scene = prepared.get(scene_id)
            return scene.episode_seed(instance, participant_ids, episode) if scene is not None else None

        interrupted = recover_interrupted_games(
            read, experiment_id=self.experiment.experiment_id, episode_seed=seed, record=self.recorder.write
        )
        self.games.interrupted(interrupted)
        if interrupted:
            log.info("interrupted_games_found", count=len(interrupted))
        return len(interrupted)

    async def _resume_game_scene(self, participant: Participant) -> None:
        """A participant is back in a game scene: in its running game (a reload), or, after a
        restart, in the game its ``on_restart`` says (or on to the next scene, for ``skip``)."""
        lock = self._locks.setdefault(participant.participant_id, asyncio.Lock())
        async with lock:
            skipped = self.games.skips_after_restart(participant, self._prepared[id(participant.scene)])
            if skipped is not None:
                self._event(participant, "scene_left", game_id=skipped.game_id, reason="server_restart")
                await self._move_to(participant, min(participant.position + 1, len(participant.slots) - 1))
                return
        await self._enter_game(participant)
        self.games.connected(participant.participant_id)

    # --- joining ------------------------------------------------------------------------------
    def _url_params(self, params: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
        """The link's parameters with missing declared ones marked (and their names), or
        :class:`EntryRefusedError` (recorded and logged) when a missing one refuses entry."""
        filled, marked, refused = apply_url_params(self.experiment.url_params, params)
        if refused:
            names = [p.name for p in refused]
            # Not a participant (no token, no scenes), but recorded: who was turned away and why.
            self.recorder.write(
                "sessions",
                {
                    "participant_id": f"p-{secrets.token_hex(6)}",
                    "condition": None,
                    "params": dict(params),
                    "event": "entry_refused",
                    "position": None,
                    "scene_id": None,
                    "instance": None,
                    "detail": {"missing_url_params": names},
                },
            )
            log.warning("entry_refused", missing_url_params=names)
            raise EntryRefusedError(refusal_text(refused))
        return filled, marked

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
            recruitment_ids=participant.recruitment_ids,
            token_sha256=_token_hash(participant.token),
        )
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
        participant.values.update(drawn)
        self._event(participant, "scene_entered", **({"values": drawn} if drawn else {}))
        if slot.scene.terminal:
            participant.finished = True
            self.games.participant_finished(participant.participant_id)
            self._event(participant, "finished", outcome=participant.outcome, values=participant.values)
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

    def game_message(self, participant: Participant, message: Input | GameReady | RuntimeMessage) -> None:
        self.games.handle(participant.participant_id, message)

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
        ).wire()
        participant.finished = True
        participant.outcome = outcome
        self.games.participant_finished(participant.participant_id)
        self._event(
            participant, "finished", outcome=outcome, values=participant.values, final_status=status, **detail
        )
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
            context=slot.scene.client_context(self._context(participant)),
        ).wire()

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
            self._event(participant, "scene_left")
            participant.drafts.pop(participant.position, None)
            participant.position += 1
            await self._enter(participant)  # (which stores the records before showing the next scene)
            return [Ack(seq=message.seq).wire(), *self.scene_replies(participant)]

    # --- bounded input and participant state -------------------------------------------------
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


_NAMED_KEYS = 3
"""How many unknown answer keys an error names (the rest are counted)."""
_MAX_SHOWN_ERRORS = 20
"""How many of a scene's validation errors a reply and the record carry (the rest are counted)."""


def _unknown_keys(answers: Mapping[str, Any], allowed: frozenset[str] | None) -> list[str]:
    if allowed is None:
        return []
    return [key for key in answers if key not in allowed]


def _some(keys: list[str]) -> str:
    shown = ", ".join(repr(key[:32]) for key in keys[:_NAMED_KEYS])
    more = len(keys) - _NAMED_KEYS
    return f"{shown} and {more} more" if more > 0 else shown


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


def _mark_outcome(participant: Participant, outcome: str) -> None:
    """Note how the participant's study went off course; the first such outcome is the one kept
    (a study goes on after a waiting room's or a game's ``continue``)."""
    if participant.outcome == "completed":
        participant.outcome = outcome


def _parse_timestamp(value: Any, default: float) -> float:
    """A record's ``timestamp`` (``2026-11-23T17:00:00.123Z``) as a Unix time; ``default`` if unreadable."""
    try:
        return datetime.datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return default


def _stale(seq: int, position: int) -> Reply:
    return ErrorMessage(
        code="stale_position",
        message=f"That message is for another scene; the current scene is at position {position}.",
        seq=seq,
    ).wire()
