"""One ``pyodide`` game on the server: the episodes it issues (the episode machine), its statuses and
its end; see ``runtime.py`` for the life of a game.

:class:`PyodideGame` is built from three parts: this module's episode machine, the ingest side
(``game_ingest.py``: step batches stored, acknowledged or refused) and the load and presence rules
(``game_loading.py``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from igym_core.data.recorder import iso_utc
from igym_core.errors import ProtocolError
from igym_core.protocol.server_messages import GameStatus
from igym_core.runtime import records
from igym_core.runtime.interface import Continuation, GameExit, GameHandle, GameInfo
from igym_core.runtime.notify import call_scene_callback, notify_plugins
from igym_core.session.saving import SAVING_MESSAGE
from igym_pyodide_p2p.game_ingest import BatchIntake
from igym_pyodide_p2p.game_loading import LoadRules
from igym_pyodide_p2p.ingest import GameLedger
from igym_pyodide_p2p.messages import (
    EpisodeDone,
    PyodideEpisode,
    RuntimeLoaded,
    RuntimeLoadFailed,
    StepBatchMessage,
)
from igym_pyodide_p2p.options import PyodideOptions

if TYPE_CHECKING:
    from igym_pyodide_p2p.runtime import PyodideRuntime

__all__ = ["SAVING", "PyodideGame"]

log = structlog.get_logger("igym_pyodide_p2p.runtime")

#: Why a game waits (the ``reason`` of its ``paused`` / ``resumed`` records), as the server runtime names it.
SAVING = "saving"


class PyodideGame(LoadRules, BatchIntake, GameHandle):
    """One browser-run game: the episodes the server issues and the records the page sends."""

    def __init__(
        self,
        runtime: PyodideRuntime,
        info: GameInfo,
        prepared: Any,
        options: PyodideOptions,
        actions_ok: Mapping[str, Callable[[Any], bool]],
        *,
        continues: Continuation | None = None,
    ) -> None:
        self.runtime = runtime
        self.host = runtime.host
        self.info = info
        self.prepared = prepared
        self.scene = prepared.scene
        self.options = options
        self.continues = continues
        humans = [s for s in info.seats if s.participant_id is not None]
        #: Human seat (agent name) → participant id.
        self.players = {s.agent: s.participant_id for s in humans if s.participant_id is not None}
        self.participant_ids = [pid for pid in self.players.values()]
        self.ledger = GameLedger(
            actions_ok=actions_ok,
            humans=list(self.players),
            fps=self.scene.fps,
            max_steps=self.scene.max_steps,
            options=options,
        )
        self._ids = records.game_ids(
            game_id=info.game_id,
            scene_id=info.scene_id,
            instance=info.instance,
            participant_ids=self.participant_ids,
        )
        self.phase = "loading"
        self.ended = False
        self.end_message = ""
        self.loaded = False
        self.created = time.monotonic()
        #: Which of the scene's episodes (1 … num_episodes) is being played or comes next.
        self.round = continues.from_episode if continues is not None else 1
        #: Plays so far (the ``episode`` number of data and of the page's messages).
        self.plays = 0
        self.seed = 0
        self.phase_until = 0.0
        self.episode_started_wall = 0.0
        self.episode_started_mono = 0.0
        self.returns: dict[str, float] = {}
        self.absent_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._paused_at = 0.0
        #: When the page last sent steps of the open episode (or it was issued), monotonic.
        self.last_progress = 0.0
        #: Every agent's actions are ints (what ``action_test`` passes for a Discrete space).
        self.ints_for_actions = False
        #: Acknowledgements: when the last ``batch_ack`` went (monotonic), and to whom the held-back
        #: one goes (None: none is held back). An ack names the last stored batch (``next_batch - 1``).
        self._acked_at = -math.inf
        self._ack_to: str | None = None
        self._ack_interval_s = options.ack_interval_ms / 1000
        #: Batches of this game the server refused, by rule (``BatchProblem.kind``).
        self.refused: dict[str, int] = {}

    # --- lifecycle ---------------------------------------------------------------------------
    def begin(self) -> None:
        from igym_core.session.games import seats_description

        continues = self.continues
        self.host.record(
            records.GAMES,
            records.game_started_row(
                self._ids,
                seats=seats_description(self.info.seats),
                fps=self.scene.fps,
                num_episodes=self.scene.num_episodes,
                runtime=self.runtime.kind,
                continues_game_id=continues.game_id if continues is not None else None,
                continues_from_episode=continues.from_episode if continues is not None else None,
            ),
        )
        log.info("game_started", game_id=self.info.game_id, scene_id=self.info.scene_id, runtime="pyodide")
        self._notify("notify_game_started", self.info)
        self._timer = asyncio.get_running_loop().call_later(self.options.load_timeout_s, self._load_timed_out)

    async def stop(self, reason: str) -> None:
        if not self.ended:
            self._withdraw_unstarted_episode()
            if self.ledger.episode_open:
                self._end_episode("game_stopped", then_continue=False)
            self._end_game(reason, "The study server is restarting.")

    # --- GameHandle --------------------------------------------------------------------------
    def player_ready(self, participant_id: str) -> None:
        """The page has mounted the scene; it loads the runtime next (``runtime_loaded``)."""

    def player_input(
        self, participant_id: str, *, keys: Sequence[str] | None, press: Sequence[str] | None
    ) -> None:
        """Keys go to the page's own env; the server has nothing to do with them."""

    def player_connected(self, participant_id: str) -> None:
        self.absent_since = None

    def status_message(self, participant_id: str) -> dict[str, Any]:
        countdown_ms = 0
        if self.phase == "countdown":
            countdown_ms = max(0, round((self.phase_until - time.monotonic()) * 1000))
        message = {"loading": "Loading the game…", "ended": self.end_message, "paused": SAVING_MESSAGE}.get(
            self.phase, ""
        )
        seat = next((agent for agent, pid in self.players.items() if pid == participant_id), None)
        return GameStatus(
            game_id=self.info.game_id,
            phase=self.phase,
            episode=min(self.round, self.scene.num_episodes),
            num_episodes=self.scene.num_episodes,
            seat=seat,
            message=message,
            countdown_ms=countdown_ms,
            pause_reason=SAVING if self.phase == "paused" else None,
        ).wire()

    def player_message(self, participant_id: str, message: Any) -> None:
        if self.ended:
            return
        if isinstance(message, StepBatchMessage):
            self._ingest(participant_id, message.data)
        elif isinstance(message, EpisodeDone):
            self._episode_done(message)
        elif isinstance(message, RuntimeLoaded):
            self._loaded(message)
        elif isinstance(message, RuntimeLoadFailed):
            self._load_failed(message)
        else:
            raise ProtocolError("unknown_type", f"{message.type!r} is not a message of the pyodide runtime")

    # --- episodes ----------------------------------------------------------------------------
    def _countdown(self) -> None:
        """The next episode: issued now, played after the scene's countdown (the page shows its first
        frame under the countdown, as the server runtime does)."""
        self._cancel_timer()
        self._issue_episode(start_in_s=max(0.0, self.scene.countdown_s))

    def _issue_episode(self, start_in_s: float = 0.0) -> None:
        self._timer = None
        if self.ended:
            return
        if self.runtime.holding:  # records cannot be stored: the episode waits (saving_resumed)
            self.phase = "paused"
            self.host.record(
                records.GAMES,
                records.game_paused_row(
                    self._ids, reason=SAVING, episode=self.plays, step=self.ledger.last_step
                ),
            )
            self._paused_at = time.monotonic()
            self._broadcast_status()
            return
        self.plays += 1
        self.seed = self.prepared.episode_seed(self.info.instance, self.participant_ids, self.round)
        self.returns = {str(a): 0.0 for a in self.prepared.agents}
        start = time.monotonic() + start_in_s
        self.episode_started_wall = time.time() + start_in_s
        self.episode_started_mono = start
        self.ledger.open_episode(self.plays, start)
        self.last_progress = start
        self.phase_until = start
        self.runtime.counters["episodes"] += 1
        episode = PyodideEpisode(
            game_id=self.info.game_id,
            episode=self.plays,
            seed=self.seed,
            num_episodes=self.scene.num_episodes,
            max_steps=self.scene.max_steps,
            fps=self.scene.fps,
            next_batch=self.ledger.next_batch,
            start_in_ms=round(start_in_s * 1000),
        ).wire()
        if start_in_s > 0:
            self.phase = "countdown"
            self._timer = asyncio.get_running_loop().call_later(start_in_s, self._begin_episode)
        else:
            self._begin_episode()
        self._broadcast_status()
        for pid in self.participant_ids:
            self.runtime.spawn(self.host.send(pid, episode))
        log.info("episode_started", game_id=self.info.game_id, episode=self.plays, seed=self.seed)

    def _begin_episode(self) -> None:
        """The countdown is over: the page steps the episode from now on."""
        self._timer = None
        if self.ended or not self.ledger.episode_open:
            return
        countdown = self.phase == "countdown"
        self.phase = "playing"
        if countdown:
            self._broadcast_status()
        self._notify("notify_episode_started", self.info, self.plays, self.seed)
        self._callback("on_episode_start", self.info, self.plays, self.seed)

    def _withdraw_unstarted_episode(self) -> bool:
        """An episode issued but still in its countdown (no step can have been made) is taken back,
        without a record, so that a reload or an end in a countdown leaves no empty episode behind.
        Returns whether there was one."""
        if not (self.ledger.episode_open and self.phase == "countdown"):
            return False
        self._cancel_timer()
        self.ledger.close_episode()
        self.plays -= 1
        self.runtime.counters["episodes"] -= 1
        return True

    def _episode_done(self, message: EpisodeDone) -> None:
        ledger = self.ledger
        if message.episode < self.plays or (message.episode == self.plays and not ledger.episode_open):
            return  # sent again after a reconnect: that episode's end was taken already
        if message.episode != self.plays or not ledger.episode_open:
            raise ProtocolError(
                "bad_batch",
                f"episode {message.episode} is not being played (episode {self.plays} is the last)",
            )
        reason = message.end_reason if ledger.episode_over else "incomplete"
        if message.steps != ledger.last_step or not ledger.episode_over:
            log.warning(
                "episode_incomplete",
                game_id=self.info.game_id,
                episode=self.plays,
                steps_reported=message.steps,
                steps_stored=ledger.last_step,
                end_seen=ledger.episode_over,
            )
        self._end_episode(reason)

    def _end_episode(self, end_reason: str, *, then_continue: bool = True) -> None:
        ledger = self.ledger
        ledger.close_episode()
        duration = max(0.0, time.monotonic() - self.episode_started_mono)  # 0 if still in its countdown
        summary = records.episode_row(
            self._ids,
            episode=self.plays,
            seed=self.seed,
            steps=ledger.last_step,
            end_reason=end_reason,
            returns=self.returns,
            seats=self.players,
            started_at=iso_utc(self.episode_started_wall),
            duration_ms=round(duration * 1000),
            fps=self.scene.fps,
            frames_dropped={},  # the page draws its own frames
            tick_lateness_ms_p50=None,  # and keeps its own time
            tick_lateness_ms_p99=None,
            tick_lateness_ms_max=None,
            rtt_ms={},
            paused_ms=0,
            pauses=0,
            pause_reasons={},
        )
        self.host.record(records.EPISODES, summary)
        log.info(
            "episode_ended",
            game_id=self.info.game_id,
            episode=self.plays,
            steps=ledger.last_step,
            end_reason=end_reason,
            duration_ms=summary["duration_ms"],
        )
        self._notify("notify_episode_ended", self.info, self.plays, summary)
        self._callback("on_episode_end", self.info, summary)
        if not then_continue:
            return
        self.round += 1
        if self.round <= self.scene.num_episodes:
            self._countdown()
        else:
            self._end_game("completed", "Well done! This game is over.")

    def saving_resumed(self) -> None:
        """Records are stored again: an episode held back by :meth:`PyodideRuntime.hold_for_saving`
        starts after a countdown."""
        if self.phase == "paused" and not self.ended:
            self.host.record(
                records.GAMES,
                records.game_resumed_row(
                    self._ids,
                    reason=SAVING,
                    episode=self.plays,
                    step=self.ledger.last_step,
                    paused_ms=round((time.monotonic() - self._paused_at) * 1000),
                ),
            )
            self._countdown()

    # --- the end -----------------------------------------------------------------------------
    def _end_game(self, reason: str, message: str, *, exit: GameExit | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        self._cancel_timer()
        self.ledger.close_episode()
        self.phase = "ended"
        self.end_message = message
        self.runtime.forget(self)
        self._broadcast_status()
        self.host.record(
            records.GAMES, records.game_ended_row(self._ids, reason=reason, episodes_played=self.plays)
        )
        log.info("game_ended", game_id=self.info.game_id, reason=reason, episodes=self.plays)
        if self.refused:  # the page's data was refused: one line per game says how much, by rule
            log.warning(
                "game_batches_rejected",
                game_id=self.info.game_id,
                scene_id=self.info.scene_id,
                batches=sum(self.refused.values()),
                by_rule=dict(self.refused),
            )
        self._notify("notify_game_ended", self.info, reason)
        self._callback("on_game_end", self.info, reason)
        if exit is None:
            self.host.game_ended(self.info.game_id, reason)
        else:
            self.host.game_ended(self.info.game_id, reason, exit)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _broadcast_status(self) -> None:
        for pid in self.participant_ids:
            self.runtime.spawn(self.host.send(pid, self.status_message(pid)))

    def _notify(self, method: str, *args: Any) -> None:
        notify_plugins(self.host.plugins, method, self.info.game_id, *args)

    def _callback(self, name: str, *args: Any) -> None:
        call_scene_callback(self.prepared.callbacks, name, self.info.game_id, *args)
