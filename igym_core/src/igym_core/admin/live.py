"""What the dashboard shows, kept as things happen and read into a snapshot about once a second.

Counts that would need a loop over every participant ever seen (arrivals, completions per
outcome, the per-minute series) are kept up to date from the study's session events
(:attr:`Study.event_listeners`). Participants by scene (and how many of them are connected) are
kept by the study's participant index as participants join, move, connect, leave, finish, are
evicted or restored (:class:`~igym_core.session.participant.ParticipantIndex`);
:func:`recount_by_scene` is the loop they replace (for tests and ``bench/admin_snapshot.py``).
Everything kept is bounded: the series keep :data:`SERIES_MINUTES` minutes, the error ring
:data:`MAX_ERRORS` entries, and at most :data:`MAX_GAMES_SHOWN` games are listed (the total is given).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from igym_core.data.recorder import utc_now_iso
from igym_core.scenes.stager import iter_scenes

if TYPE_CHECKING:
    from igym_core.session.participant import Participant
    from igym_core.session.study import Study

__all__ = ["MAX_ERRORS", "MAX_GAMES_SHOWN", "SERIES_MINUTES", "ErrorRing", "LiveView", "recount_by_scene"]

SERIES_MINUTES = 120
MAX_ERRORS = 50
MAX_GAMES_SHOWN = 200
#: Characters kept of each field of a logged error (its event, and each detail value).
_MAX_TEXT = 300


class ErrorRing(logging.Handler):
    """The last :data:`MAX_ERRORS` warnings and errors the process logged (a logging handler).

    structlog hands the standard library its event dict as the record's ``msg``: the event name
    and its key-value detail are kept apart; plain records (uvicorn's) keep their message.
    """

    def __init__(self, size: int = MAX_ERRORS) -> None:
        super().__init__(level=logging.WARNING)
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)
        self.total = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.msg
            if isinstance(message, Mapping):
                event = str(message.get("event", ""))
                detail = {
                    str(k): _short(v)
                    for k, v in message.items()
                    if k not in ("event", "level", "logger", "timestamp", "exc_info")
                }
            else:
                event = record.getMessage()
                detail = {}
            self.total += 1
            self.entries.append(
                {
                    "at": utc_now_iso(),
                    "level": record.levelname.lower(),
                    "logger": record.name,
                    "event": event[:_MAX_TEXT],
                    "detail": dict(list(detail.items())[:12]),
                }
            )
        except Exception:  # a log handler must never raise into the code that logged
            self.handleError(record)


def _short(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:_MAX_TEXT]


def recount_by_scene(participants: Iterable[Participant]) -> tuple[Counter[str], Counter[str]]:
    """Unfinished participants per scene id, and those of them connected, counted one by one."""
    by_scene: Counter[str] = Counter()
    connected_by_scene: Counter[str] = Counter()
    for participant in participants:
        if participant.finished or not participant.slots:
            continue
        scene_id = participant.slots[participant.position].scene.scene_id
        by_scene[scene_id] += 1
        if participant.connection_id is not None:
            connected_by_scene[scene_id] += 1
    return by_scene, connected_by_scene


class LiveView:
    """Counts and series for the dashboard, fed by the study's session events."""

    def __init__(self, study: Study, *, clock: Any = time.time) -> None:
        self.study = study
        self._clock = clock
        self.arrivals = 0
        self.outcomes: Counter[str] = Counter()
        # minute (unix time // 60) → count, oldest first; at most SERIES_MINUTES minutes.
        self._arrivals_by_minute: dict[int, int] = {}
        self._completions_by_minute: dict[int, int] = {}
        self._scene_order = [scene.scene_id for scene, _path in iter_scenes(study.experiment.scenes)]
        self._ticks: dict[str, tuple[float, int]] = {}
        study.event_listeners.append(self.on_event)

    def seed_from_memory(self) -> None:
        """Count the participants restored at start (a restarted server) as arrivals and outcomes."""
        for participant in self.study.by_id.values():
            self.arrivals += 1
            if participant.finished:
                self.outcomes[participant.outcome or "completed"] += 1

    def on_event(self, participant: Participant, event: str, detail: Mapping[str, Any]) -> None:
        if event == "joined":
            self.arrivals += 1
            _bump(self._arrivals_by_minute, self._minute())
        elif event == "finished":
            outcome = detail.get("outcome") or participant.outcome or "completed"
            self.outcomes[str(outcome)[:64]] += 1
            _bump(self._completions_by_minute, self._minute())

    def _minute(self) -> int:
        return int(self._clock() // 60)

    def snapshot(self) -> dict[str, Any]:
        """Everything the dashboard shows now (JSON-ready)."""
        study = self.study
        now = self._clock()
        # Kept up to date as participants move (ParticipantIndex), never a loop over them.
        by_scene, connected_by_scene = study.by_id.by_scene, study.by_id.connected_by_scene
        scenes = [
            {
                "scene_id": sid,
                "participants": by_scene.get(sid, 0),
                "connected": connected_by_scene.get(sid, 0),
            }
            for sid in dict.fromkeys(self._scene_order)
        ]
        coordinator = study.games
        games = []
        seen: dict[str, tuple[float, int]] = {}
        mono = time.monotonic()
        for game_id, game in list(coordinator.games.items())[:MAX_GAMES_SHOWN]:
            stats = dict(game.live_stats())
            ticks = stats.pop("ticks", None)
            measured = None
            if isinstance(ticks, int):
                seen[game_id] = (mono, ticks)
                before = self._ticks.get(game_id)
                if before is not None and mono - before[0] > 0.2:
                    measured = round((ticks - before[1]) / (mono - before[0]), 1)
            games.append(
                {
                    "game_id": game_id,
                    "scene_id": game.info.scene_id,
                    "participant_ids": list(game.info.participant_ids),
                    "measured_fps": measured,
                    **stats,
                }
            )
        self._ticks = seen
        minute = int(now // 60)
        first = minute - SERIES_MINUTES + 1
        _trim(self._arrivals_by_minute, first)
        _trim(self._completions_by_minute, first)
        return {
            "type": "snapshot",
            "at": utc_now_iso(),
            "experiment_id": study.experiment.experiment_id,
            "arrivals_paused": study.arrivals_paused is not None,
            "pause_message": study.arrivals_paused,
            "participants": {
                "in_memory": len(study.by_id),
                "connected": study.by_id.connected,
                "finished": study.by_id.finished,
                "arrivals": self.arrivals,
            },
            "scenes": scenes,
            "waiting_rooms": coordinator.waiting_rooms(),
            "games": games,
            "games_total": len(coordinator.games),
            "outcomes": dict(self.outcomes),
            "series": {
                "minute_s": 60,
                "first_minute": first,
                "arrivals": [self._arrivals_by_minute.get(m, 0) for m in range(first, minute + 1)],
                "completions": [self._completions_by_minute.get(m, 0) for m in range(first, minute + 1)],
            },
        }


def _bump(series: dict[int, int], minute: int) -> None:
    series[minute] = series.get(minute, 0) + 1


def _trim(series: dict[int, int], first: int) -> None:
    for minute in [m for m in series if m < first]:
        del series[minute]
