"""The ``unity`` runtime: the server side of a ``UnityScene``'s game.

The build runs in the participant's page; the server keeps what must not depend on the page: which
episode the participant is in, how many episodes are done, the score, the load and scene timeouts
and the way out. Every bridge call of the game is validated (type, size, JSON, rate, count) and
becomes a ``unity_events`` record; a refused one a ``unity_rejected`` record (the first
:data:`MAX_REJECTED_ROWS` of a game, then counted). A reloaded page resumes at the episode the server
counted: an episode that was open when the page went away is recorded ``interrupted`` and played again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import structlog

from igym_core.errors import ProtocolError
from igym_core.protocol.server_messages import GameStatus
from igym_core.runtime import records
from igym_core.runtime.interface import (
    Continuation,
    GameExit,
    GameHandle,
    GameHost,
    GameInfo,
    PreparedGame,
    Runtime,
    RuntimeCheck,
    RuntimeMessage,
    Seat,
)
from igym_core.runtime.notify import notify_plugins
from igym_unity.config import LOAD_FAILED_OUTCOME, TIMEOUT_OUTCOME, score_values
from igym_unity.messages import UnityEvent, UnityLoaded, UnityLoadFailed, UnityWayOut
from igym_unity.prepared import HUMAN_SEAT, PreparedUnity
from igym_unity.scoring import BridgeEvent, EpisodeEvents, EpisodeScore, episode_score_from, error_text

__all__ = ["MAX_REJECTED_ROWS", "UNITY_EVENTS", "UNITY_REJECTED", "UnityGame", "UnityRuntime"]

log = structlog.get_logger(__name__)

#: Record type of the game's bridge calls (and the server's ``SendMessage`` calls), one row each.
UNITY_EVENTS = "unity_events"
#: Record type of bridge calls the server refused.
UNITY_REJECTED = "unity_rejected"
#: A game records at most this many refused calls; later ones are counted in its ``ended`` row.
MAX_REJECTED_ROWS = 100
_PRESENCE_INTERVAL_S = 1.0


def _utc_iso(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall % 1 * 1000):03d}Z"


def _total(row: Any, key: str) -> float:
    """A running total from an ``episodes`` row this runtime wrote (0 without one)."""
    value = row.get(key) if isinstance(row, Mapping) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return 0.0


class UnityGame(GameHandle):
    """One participant's Unity scene on the server."""

    def __init__(
        self,
        runtime: UnityRuntime,
        *,
        info: GameInfo,
        prepared: PreparedUnity,
        continues: Continuation | None,
    ) -> None:
        self.runtime = runtime
        self.host: GameHost = runtime.host
        self.info = info
        self.prepared = prepared
        self.scene = prepared.scene
        self.participant_id = info.participant_ids[0]
        self._ids = records.game_ids(
            game_id=info.game_id,
            scene_id=info.scene_id,
            instance=info.instance,
            participant_ids=info.participant_ids,
        )
        self.episodes_done = continues.from_episode - 1 if continues else 0
        # A game resumed after a server restart goes on from the totals its predecessor recorded.
        resumed = continues.last_episode if continues and self.episodes_done > 0 else None
        self.score = _total(resumed, "score_total")
        self.open_episode: int | None = None
        self.episode_started_wall = 0.0
        self.episode_started_mono = 0.0
        self.episode_score: float | None = None
        self.bonus = _total(resumed, "bonus_total")
        """The sum of ``score_episode``'s bonuses of the counted episodes."""
        self.episode_events: list[BridgeEvent] = []
        """The open episode's recorded bridge events (for ``score_episode``)."""
        self.episode_scored: EpisodeScore | None = None
        self.loaded = False
        self.failed = False
        """The current page reported a failed load, or was told the load timed out (its participant
        is offered the way out)."""
        self.timed_out_loading = False
        """``load_timeout_s`` passed with this page open (the page shows the way out)."""
        self.ended = False
        self.end_message = ""
        self.events = 0
        self.rejected = 0
        self._tokens = 2 * self.scene.max_events_per_s
        self._tokens_at = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._absent_since: float | None = None
        self._deadline: float | None = None
        self.host.record(
            records.GAMES,
            records.game_started_row(
                self._ids,
                seats=[{"agent": s.agent, "participant_id": s.participant_id} for s in info.seats],
                fps=0,
                num_episodes=self.scene.num_episodes,
                runtime="unity",
                continues_game_id=continues.game_id if continues else None,
                continues_from_episode=continues.from_episode if continues else None,
            ),
        )
        notify_plugins(self.host.plugins, "notify_game_started", info.game_id, info)
        log.info("unity_game_started", game_id=info.game_id, scene_id=info.scene_id)
        self._start_timer(self.scene.load_timeout_s, self._load_timed_out)

    # --- the core's calls ----------------------------------------------------------------------
    def player_ready(self, participant_id: str) -> None:
        """Not used: the page says ``unity_loaded`` once the build runs."""

    def player_input(
        self, participant_id: str, *, keys: Sequence[str] | None, press: Sequence[str] | None
    ) -> None:
        raise ProtocolError("bad_message", "A Unity scene takes no key input: the game handles its own keys.")

    def player_connected(self, participant_id: str) -> None:
        """A new page (a reload): it loads the build again; an open episode is played again."""
        if self.ended:
            return
        self._absent_since = None
        timed_out = self.timed_out_loading
        self.failed = self.timed_out_loading = False  # the new page tries again
        if self.open_episode is not None:
            self._close_episode("interrupted")
        if self.loaded or timed_out:  # a new load_timeout_s for the new page's load
            self.loaded = False
            self._start_timer(self.scene.load_timeout_s, self._load_timed_out)

    def status_message(self, participant_id: str) -> dict[str, Any]:
        total = self.scene.num_episodes
        if self.ended:
            phase, message = "ended", self.end_message
        elif not self.loaded:
            phase, message = "waiting", "Loading the game…"
        else:
            phase, message = "playing", ""
        status = GameStatus(
            game_id=self.info.game_id,
            phase=phase,
            episode=min(self.episodes_done + 1, total),
            num_episodes=total,
            seat=HUMAN_SEAT,
            message=message,
        ).wire()
        status["episodes_done"] = self.episodes_done
        status["score"] = self.score
        return status

    async def stop(self, reason: str) -> None:
        self._end(reason, "The study was stopped.", notify_core=False)

    def player_message(self, participant_id: str, message: RuntimeMessage) -> None:
        if self.ended:
            return
        if isinstance(message, UnityLoaded):
            self._loaded(message)
        elif isinstance(message, UnityLoadFailed):
            self._load_failed(message)
        elif isinstance(message, UnityEvent):
            self._bridge(message)
        elif isinstance(message, UnityWayOut):
            if not self.failed:
                raise ProtocolError(
                    "bad_message", "No way out to take: this page has not reported a failed load."
                )
            reason = "load_timeout" if self.timed_out_loading else "runtime_load_failed"
            self._way_out(reason, LOAD_FAILED_OUTCOME)
        else:
            super().player_message(participant_id, message)

    # --- loading and timeouts ---------------------------------------------------------------
    def _loaded(self, message: UnityLoaded) -> None:
        if self.timed_out_loading:
            raise ProtocolError(
                "bad_message", "The game loaded after load_timeout_s: this page was told to take the way out."
            )
        reload = self.loaded
        self.loaded = True
        self.host.record(
            records.GAMES,
            records.runtime_loaded_row(self._ids, ms=round(message.ms, 1), stages={}, reload=reload),
        )
        log.info("unity_loaded", game_id=self.info.game_id, ms=round(message.ms))
        self._cancel_timer()
        if self.scene.timeout_s is not None:
            # The scene's time limit counts from the first load; a reload does not extend it.
            if self._deadline is None:
                self._deadline = time.monotonic() + self.scene.timeout_s
            self._start_timer(max(0.0, self._deadline - time.monotonic()), self._timed_out)
        self._send_status()

    def _load_failed(self, message: UnityLoadFailed) -> None:
        if self.loaded:
            raise ProtocolError(
                "bad_message", "The game has loaded on this page: it cannot fail to load now."
            )
        self.host.record(
            records.GAMES,
            records.runtime_load_failed_row(self._ids, stage=message.stage, message=message.message),
        )
        log.info("unity_load_failed", game_id=self.info.game_id, stage=message.stage, message=message.message)
        # Recorded now; the way out applies when the participant takes it (unity_way_out), or when
        # load_timeout_s runs out (a participant who closed the tab).
        self.failed = True

    def _load_timed_out(self) -> None:
        self._timer = None
        if self.ended or self.loaded:
            return
        self.runtime.counters["load_timeouts"] += 1
        self.host.record(
            records.GAMES, records.load_timeout_row(self._ids, load_timeout_s=self.scene.load_timeout_s)
        )
        log.info("unity_load_timed_out", game_id=self.info.game_id, load_timeout_s=self.scene.load_timeout_s)
        if self.host.frame_sink(self.participant_id) is None:
            # Nobody is looking (the tab was closed): the way out applies now; they find the next scene.
            self._way_out("load_timeout", LOAD_FAILED_OUTCOME)
            return
        # The page is open: it shows the failure message and the way out, which applies when the
        # participant takes it (unity_way_out), or abandon_after_s later if nobody does.
        self.timed_out_loading = True
        if not self.failed:
            self.failed = True
            self._post({"type": "unity_load_timeout", "game_id": self.info.game_id})
        self._start_timer(self.scene.abandon_after_s, self._way_out_untaken)

    def _way_out_untaken(self) -> None:
        self._timer = None
        if not self.ended:
            log.info("unity_way_out_untaken", game_id=self.info.game_id, after_s=self.scene.abandon_after_s)
            self._way_out("load_timeout", LOAD_FAILED_OUTCOME)

    def _timed_out(self) -> None:
        self._timer = None
        if self.ended:
            return
        log.info("unity_scene_timed_out", game_id=self.info.game_id, timeout_s=self.scene.timeout_s)
        if self.open_episode is not None:
            self._close_episode("timeout")
        self._way_out("timeout", TIMEOUT_OUTCOME)

    def _way_out(self, reason: str, outcome: str) -> None:
        scene = self.scene
        exit = GameExit(outcome=outcome, to_scene=scene.failure_scene, to_end=scene.on_failure == "end")
        message = scene.failure_message if outcome == LOAD_FAILED_OUTCOME else "Time is up for this game."
        self._end(reason, message, exit=exit)

    # --- the bridge ------------------------------------------------------------------------------
    def _refuse(self, message: UnityEvent | None, reason: str, detail: str) -> None:
        self.rejected += 1
        if self.rejected <= MAX_REJECTED_ROWS:
            self.host.record(
                UNITY_REJECTED,
                {
                    **self._ids,
                    "participant_id": self.participant_id,
                    "event": message.event if message else None,
                    "reason": reason,
                    "payload_chars": len(message.payload) if message else None,
                    "client_time_ms": message.t if message else None,
                    "server_time": _utc_iso(time.time()),
                },
            )
        if self.rejected == 1 or self.rejected % 100 == 0:
            log.warning(
                "unity_event_refused", game_id=self.info.game_id, reason=reason, refused=self.rejected
            )
        raise ProtocolError("bad_message", detail)

    def _take_token(self) -> bool:
        now = time.monotonic()
        rate = self.scene.max_events_per_s
        self._tokens = min(2 * rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _bridge(self, message: UnityEvent) -> None:
        scene = self.scene
        if not self.loaded:  # the page holds the game's calls until it has sent unity_loaded
            self._refuse(
                message, "not_loaded", "Bridge events count only once the game has loaded (unity_loaded)."
            )
        if self.events >= scene.max_events:
            self._refuse(message, "too_many", f"This game has recorded its {scene.max_events} bridge events.")
        if not self._take_token():
            self._refuse(
                message, "rate", f"More than {scene.max_events_per_s:g} bridge events a second; slow down."
            )
        size = len(message.payload.encode("utf-8", "surrogatepass"))
        if size > scene.max_payload_bytes:
            self._refuse(
                message,
                "too_large",
                f"The payload has {size} bytes; this scene takes at most {scene.max_payload_bytes}.",
            )
        try:
            value = json.loads(message.payload) if message.payload else None
        except ValueError as exc:
            self._refuse(message, "not_json", f"The payload is not JSON ({str(exc)[:80]}): pass JSON text.")
        if message.event == "episode_ended" and self.open_episode is None:
            self._refuse(
                message,
                "no_open_episode",
                "EpisodeEnded without an episode started: call Igym.EpisodeStarted first.",
            )
        self.events += 1
        if message.event == "episode_started":
            if self.open_episode is not None:
                self._close_episode("superseded")
            self.open_episode = self.episodes_done + 1
            self.episode_started_wall = time.time()
            self.episode_started_mono = time.monotonic()
            self.episode_score = None
            self.episode_scored = None
            self.episode_events = []
        self._record_event(message.event, message.payload, client_time_ms=message.t, value=value)
        if message.event == "episode_started":
            self._episode_started()
        elif message.event == "episode_ended":
            if self.prepared.score_episode is not None:  # the server's score; the game's claim is ignored
                self.episode_scored = self._score_on_server()
                self.episode_score = self.episode_scored.score
            else:
                score = value.get("score") if isinstance(value, dict) else None
                if isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score):
                    self.episode_score = float(score)
            done = isinstance(value, dict) and value.get("done") is True
            self._close_episode("ended")
            if self.episodes_done >= scene.num_episodes:
                self._end("completed", "Well done! This game is over.")
            elif done:
                self._end("game_done", "This game is over.")
            else:
                self._send_status()

    def _score_on_server(self) -> EpisodeScore:
        """``score_episode`` of the episode ending now; a failure is an ``EpisodeScore`` with its error."""
        episode = self.open_episode
        assert episode is not None and self.prepared.score_episode is not None  # checked by the caller
        events = EpisodeEvents(
            game=self.info,
            episode=episode,
            participant_id=self.participant_id,
            events=tuple(self.episode_events),
            duration_ms=round((time.monotonic() - self.episode_started_mono) * 1000),
        )
        try:
            value = self.prepared.score_episode(events)
        except Exception as exc:
            log.exception(
                "scene_callback_failed", game_id=self.info.game_id, callback="score_episode", episode=episode
            )
            return EpisodeScore(error=f"score_episode raised {error_text(exc)}")
        try:
            return episode_score_from(value)
        except ValueError as exc:
            error = f"score_episode returned a value igym cannot use: {exc}"
            log.error(
                "scene_callback_failed",
                game_id=self.info.game_id,
                callback="score_episode",
                episode=episode,
                error=error,
            )
            return EpisodeScore(error=error[:500])

    def _record_event(
        self, event: str, payload: str, *, client_time_ms: float | None, value: Any = None
    ) -> None:
        wall = time.time()
        self.host.record(
            UNITY_EVENTS,
            {
                **self._ids,
                "participant_id": self.participant_id,
                "episode": self.open_episode if self.open_episode is not None else self.episodes_done,
                "event": event,
                "payload": payload,
                "client_time_ms": client_time_ms,
                "server_time_ms": round(wall * 1000, 1),
                "server_time": _utc_iso(wall),
            },
        )
        if self.open_episode is not None and self.prepared.score_episode is not None:
            self.episode_events.append(
                BridgeEvent(
                    event=event,
                    payload=payload,
                    value=value,
                    server_time_ms=round(wall * 1000, 1),
                    client_time_ms=client_time_ms,
                )
            )

    def _episode_started(self) -> None:
        episode = self.open_episode
        assert episode is not None  # set just before: not client input
        seed = self.prepared.episode_seed(self.info.instance, self.info.participant_ids, episode)
        notify_plugins(
            self.host.plugins, "notify_episode_started", self.info.game_id, self.info, episode, seed
        )
        callback = self.prepared.on_episode_start
        if callback is None:
            self._send_status()
            return
        try:
            value = callback(self.info, episode)
            text = None if value is None else json.dumps(value, ensure_ascii=False, allow_nan=False)
        except Exception:
            log.exception("scene_callback_failed", game_id=self.info.game_id, callback="on_episode_start")
            text = None
        self._send_status()
        if text is None:
            return
        self._record_event("send_message", text, client_time_ms=None, value=json.loads(text))
        self._post(
            {
                "type": "unity_send",
                "game_id": self.info.game_id,
                "object": self.scene.send_message_object,
                "method": self.scene.send_message_method,
                "value": text,
            }
        )

    def _close_episode(self, end_reason: str) -> None:
        episode = self.open_episode
        if episode is None:
            return
        self.open_episode = None
        counted = end_reason == "ended"
        scored = self.episode_scored if counted else None
        self.episode_scored = None
        self.episode_events = []
        if counted:
            self.episodes_done += 1
            self.score += self.episode_score or 0.0
            self.bonus += scored.bonus if scored is not None else 0.0
        summary = records.episode_row(
            self._ids,
            episode=episode,
            seed=self.prepared.episode_seed(self.info.instance, self.info.participant_ids, episode),
            steps=0,
            end_reason=end_reason,
            returns={HUMAN_SEAT: self.episode_score if self.episode_score is not None else 0.0},
            seats={HUMAN_SEAT: self.participant_id},
            started_at=_utc_iso(self.episode_started_wall),
            duration_ms=round((time.monotonic() - self.episode_started_mono) * 1000),
            fps=0,
            frames_dropped={},
            tick_lateness_ms_p50=None,
            tick_lateness_ms_p99=None,
            tick_lateness_ms_max=None,
            rtt_ms={},
            paused_ms=0,
            pauses=0,
            pause_reasons={},
        )
        summary["counted"] = counted
        summary["score_total"] = self.score
        if self.prepared.score_episode is not None:
            summary["score_source"] = "server"
            summary["bonus"] = scored.bonus if scored is not None else 0.0
            summary["bonus_total"] = self.bonus
            summary["score_fields"] = dict(scored.fields) if scored is not None else {}
            summary["score_error"] = scored.error if scored is not None else None
        else:
            summary["score_source"] = "game"
        self.host.record(records.EPISODES, summary)
        notify_plugins(
            self.host.plugins, "notify_episode_ended", self.info.game_id, self.info, episode, summary
        )

    # --- presence and the end ------------------------------------------------------------------
    def check_presence(self, now: float) -> None:
        if self.ended:
            return
        if self.host.frame_sink(self.participant_id) is not None:
            self._absent_since = None
            return
        if self._absent_since is None:
            self._absent_since = now
        elif now - self._absent_since >= self.scene.abandon_after_s:
            if self.open_episode is not None:
                self._close_episode("abandoned")
            self._end("abandoned", "Nobody was connected to this game for too long.")

    def _end(
        self, reason: str, message: str, *, exit: GameExit | None = None, notify_core: bool = True
    ) -> None:
        if self.ended:
            return
        if self.open_episode is not None:
            self._close_episode("interrupted")
        self.ended = True
        self.end_message = message
        self._cancel_timer()
        self.runtime.forget(self)
        self._send_status()
        row = records.game_ended_row(self._ids, reason=reason, episodes_played=self.episodes_done)
        row["score"] = self.score
        if self.prepared.score_episode is not None:
            row["bonus"] = self.bonus
        row["events"] = self.events
        row["events_refused"] = self.rejected
        self.host.record(records.GAMES, row)
        notify_plugins(self.host.plugins, "notify_game_ended", self.info.game_id, self.info, reason)
        log.info("unity_game_ended", game_id=self.info.game_id, reason=reason, episodes=self.episodes_done)
        if notify_core:
            if self.prepared.score_episode is not None:  # the server's totals, for later scenes and the data
                # Added to what earlier plays of the scene gave (RepeatScene): the values are the
                # scene's totals; each play's own are this call's increments and its ended row.
                self.host.add_participant_values(
                    self.participant_id,
                    score_values(self.info.scene_id, self.score, self.bonus),
                    accumulate=True,
                )
            self.host.game_ended(self.info.game_id, reason, exit)

    def _send_status(self) -> None:
        self._post(self.status_message(self.participant_id))

    def _post(self, message: dict[str, Any]) -> None:
        self.runtime.spawn(self.host.send(self.participant_id, message))

    def _start_timer(self, delay_s: float, then: Any) -> None:
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(delay_s, then)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class UnityRuntime(Runtime):
    """Runs ``UnityScene`` games: the build plays in the page, the server keeps count and records."""

    kind: ClassVar[str] = "unity"
    messages: ClassVar[tuple[type[RuntimeMessage], ...]] = (
        UnityLoaded,
        UnityLoadFailed,
        UnityWayOut,
        UnityEvent,
    )
    client_module: ClassVar[str | None] = None  # the scene renderer is the plugin's entry module

    @classmethod
    def check_scene(cls, scene: Any, prepared: PreparedGame, settings: Any) -> RuntimeCheck:
        if not isinstance(prepared, PreparedUnity):
            return RuntimeCheck(
                problems=(
                    "$.runtime: the 'unity' runtime runs UnityScene scenes only (a Unity WebGL build); "
                    "use UnityScene(build_dir=...) for a Unity game, or another runtime for this scene.",
                )
            )
        if prepared.build.framework.compression == "unityweb":
            # Unity's loader with decompression fallback decompresses the framework itself and runs
            # it from a blob: URL (<script src="blob:...">): the page's script-src must allow blob:.
            return RuntimeCheck(
                script_sources=("blob:",),
                notes=(
                    "the build uses decompression fallback (.unityweb): the participant page's "
                    "Content-Security-Policy allows blob: scripts for this study (Unity's loader runs "
                    "the framework from a blob: URL); export with gzip or brotli and no fallback to "
                    "keep the stricter policy",
                ),
            )
        return RuntimeCheck()

    def __init__(self, host: GameHost) -> None:
        super().__init__(host)
        self.games: dict[str, UnityGame] = {}
        self.counters = {"games": 0, "load_timeouts": 0}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._presence: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._presence = asyncio.get_running_loop().create_task(self._watch_presence())

    async def stop(self) -> None:
        if self._presence is not None:
            self._presence.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._presence
        for game in list(self.games.values()):
            await game.stop("server_stopped")
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task

    def create_game(
        self,
        *,
        game_id: str,
        scene: Any,
        prepared: PreparedGame,
        instance: int,
        seats: Sequence[Seat],
        continues: Continuation | None = None,
    ) -> UnityGame:
        if not isinstance(prepared, PreparedUnity):
            raise TypeError(f"the unity runtime runs UnityScene scenes only; got {type(prepared).__name__}")
        info = GameInfo(
            game_id=game_id,
            scene_id=prepared.scene_id,
            instance=instance,
            seats=tuple(seats),
            experiment_id=self.host.experiment_id,
        )
        game = UnityGame(self, info=info, prepared=prepared, continues=continues)
        self.games[game_id] = game
        self.counters["games"] += 1
        return game

    def forget(self, game: UnityGame) -> None:
        self.games.pop(game.info.game_id, None)

    def spawn(self, awaitable: Any) -> None:
        task = asyncio.get_running_loop().create_task(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch_presence(self) -> None:
        while True:
            await asyncio.sleep(_PRESENCE_INTERVAL_S)
            now = time.monotonic()
            for game in list(self.games.values()):
                try:
                    game.check_presence(now)
                except Exception:
                    log.exception("unity_presence_check_failed", game_id=game.info.game_id)

    def stats(self) -> dict[str, Any]:
        return {"games_running": len(self.games), **self.counters}
