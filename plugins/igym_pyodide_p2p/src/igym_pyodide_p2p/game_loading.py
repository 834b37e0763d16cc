"""The ``pyodide`` game's load and presence rules: the page reports that it loaded the game (or could
not), a load timeout, a reload in the middle of an episode, a page that stalls, a participant who is
gone for too long.

:class:`LoadRules` is a part of :class:`igym_pyodide_p2p.game.PyodideGame` (its other parts: the
episode machine in ``game.py``, the ingest side in ``game_ingest.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from igym_core.runtime import records
from igym_pyodide_p2p.messages import RuntimeLoaded, RuntimeLoadFailed

if TYPE_CHECKING:
    from igym_core.runtime.interface import GameHost, GameInfo
    from igym_pyodide_p2p.ingest import GameLedger
    from igym_pyodide_p2p.options import PyodideOptions
    from igym_pyodide_p2p.runtime import PyodideRuntime

__all__ = ["LoadRules"]

log = structlog.get_logger("igym_pyodide_p2p.runtime")


class LoadRules:
    """What happens while a game's page loads it, reloads, stalls or is gone."""

    runtime: PyodideRuntime
    host: GameHost
    info: GameInfo
    options: PyodideOptions
    ledger: GameLedger
    scene: Any
    participant_ids: list[str]
    loaded: bool
    ended: bool
    plays: int
    round: int
    absent_since: float | None
    last_progress: float
    _ids: dict[str, Any]

    # --- loading -----------------------------------------------------------------------------
    def _loaded(self, message: RuntimeLoaded) -> None:
        reload = self.loaded
        self.loaded = True
        self.host.record(
            records.GAMES,
            records.runtime_loaded_row(
                self._ids,
                ms=round(message.ms, 1),
                stages={k: round(v, 1) for k, v in message.stages.items()},
                reload=reload,
            ),
        )
        log.info("runtime_loaded", game_id=self.info.game_id, ms=round(message.ms), reload=reload)
        if not reload:
            self._cancel_timer()
            self._countdown()
            return
        # A new page: what the old one was playing is lost beyond what it sent (an episode still in
        # its countdown was not played yet: it is issued again).
        if not self._withdraw_unstarted_episode() and self.ledger.episode_open:
            rule = self.options.on_reload
            self.host.record(
                records.GAMES,
                records.reloaded_row(self._ids, episode=self.plays, step=self.ledger.last_step, rule=rule),
            )
            self._end_episode("interrupted", then_continue=False)
            if rule == "next":
                self.round += 1
            if self.round > self.scene.num_episodes:
                self._completed()
                return
        self._countdown()

    def _load_failed(self, message: RuntimeLoadFailed) -> None:
        self.host.record(
            records.GAMES,
            records.runtime_load_failed_row(self._ids, stage=message.stage, message=message.message),
        )
        log.info(
            "runtime_load_failed", game_id=self.info.game_id, stage=message.stage, message=message.message
        )
        self._give_up("runtime_load_failed")

    def _load_timed_out(self) -> None:
        self._timer = None
        if self.ended or self.loaded:
            return
        self.runtime.counters["load_timeouts"] += 1
        self.host.record(
            records.GAMES, records.load_timeout_row(self._ids, load_timeout_s=self.options.load_timeout_s)
        )
        log.info(
            "runtime_load_timed_out", game_id=self.info.game_id, load_timeout_s=self.options.load_timeout_s
        )
        self._give_up("load_timeout")

    # --- presence ----------------------------------------------------------------------------
    def check_presence(self, now: float) -> None:
        """Once a second: a game whose participant has been away ``abandon_after_s`` is abandoned;
        one whose connected page sent no steps of its episode for ``load_timeout_s`` has stalled."""
        if self.ended:
            return
        connected = any(self.host.frame_sink(pid) is not None for pid in self.participant_ids)
        if connected:
            self.absent_since = None
            if self.ledger.episode_open and now - self.last_progress >= self.options.load_timeout_s:
                self._stalled(now)
            return
        if self.absent_since is None:
            self.absent_since = now
        elif now - self.absent_since >= self.prepared.abandon_after_s:
            self._withdraw_unstarted_episode()
            if self.ledger.episode_open:
                self._end_episode("abandoned", then_continue=False)
            self._end_game("abandoned", "Nobody was connected to this game for too long.")
