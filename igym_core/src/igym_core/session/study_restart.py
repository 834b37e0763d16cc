"""The restart part of :class:`~igym_core.session.study.Study`: participants rebuilt from the
``sessions`` records of earlier runs, and the games a stopped server was running."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from igym_core.config.urls import mark_url_params
from igym_core.scenes.stager import expand_sequence, iter_scenes
from igym_core.session.participant import Participant
from igym_core.session.recovery import RecordReader, recover_interrupted_games

log = structlog.get_logger(__name__)


class StudyRestart:
    """The restart part of :class:`~igym_core.session.study.Study`."""

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
                if not token_hash:
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
            elif event == "values_added":  # a game's server-side score or bonus
                participant.values.update(detail.get("values") or {})
            elif event == "scene_left" and detail.get("reason") == "abandoned":
                _mark_outcome(participant, "game_abandoned")
            elif event == "waiting_timeout":
                _mark_outcome(participant, "waiting_timeout")
            elif event == "resumed" and detail.get("token_sha256"):
                # Resumed from another browser by the recruiter's identity: a new token since.
                token_hashes[participant.participant_id] = str(detail["token_sha256"])
            elif event == "url_params_missing":
                # Marked at joining or by an earlier restore: the row carries the marked values.
                participant.params.update(row.get("params") or {})
            elif event == "finished":
                participant.finished = True
                participant.outcome = str(detail.get("outcome") or participant.outcome)
                self._note_finished(participant)
                if isinstance(detail.get("final_status"), dict):  # finished by a waiting room
                    final_statuses[participant.participant_id] = detail["final_status"]
        count = 0
        for pid, participant in restored.items():
            if only_token_hash is not None and token_hashes[pid] != only_token_hash:
                continue
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
            self._note_resume_key(participant)
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
