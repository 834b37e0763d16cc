"""One ``pyodide`` game on the server; see ``runtime.py`` for the life of a game.

:class:`PyodideGame` is built from three parts: the episode machine it shares with the
``pyodide_p2p`` runtime (``game_base.py``: episodes issued, statuses, the saving hold, the end), the
ingest side (``game_ingest.py``: step batches stored, acknowledged or refused) and the load and
presence rules (``game_loading.py``). This module gives the base its one page and one ledger.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from igym_core.builtin.rtt_echo import RttEcho
from igym_core.errors import ProtocolError
from igym_core.runtime.interface import Continuation, GameInfo
from igym_pyodide_p2p.game_base import SAVING, BaseBrowserGame
from igym_pyodide_p2p.game_ingest import BatchIntake
from igym_pyodide_p2p.game_loading import LoadRules
from igym_pyodide_p2p.ingest import GameLedger
from igym_pyodide_p2p.messages import (
    EpisodeDone,
    RuntimeLoaded,
    RuntimeLoadFailed,
    StepBatchMessage,
)
from igym_pyodide_p2p.options import PyodideOptions

if TYPE_CHECKING:
    from igym_pyodide_p2p.runtime import PyodideRuntime

__all__ = ["SAVING", "PyodideGame"]

log = structlog.get_logger("igym_pyodide_p2p.runtime")


class PyodideGame(LoadRules, BatchIntake, BaseBrowserGame):
    """One browser-run game: the episodes the server issues and the records the page sends."""

    log = log

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
        humans = [s for s in info.seats if s.participant_id is not None]
        players = {s.agent: s.participant_id for s in humans if s.participant_id is not None}
        super().__init__(runtime, info, prepared, options, players, continues=continues)
        self.ledger = GameLedger(
            actions_ok=actions_ok,
            humans=list(self.players),
            fps=self.scene.fps,
            max_steps=self.scene.max_steps,
            options=options,
        )
        self.loaded = False
        self.created = time.monotonic()
        #: Every agent's actions are ints (what ``action_test`` passes for a Discrete space).
        self.ints_for_actions = False
        #: Acknowledgements: when the last ``batch_ack`` went (monotonic), and to whom the held-back
        #: one goes (None: none is held back). An ack names the last stored batch (``next_batch - 1``).
        self._acked_at = -math.inf
        self._ack_to: str | None = None
        self._ack_interval_s = options.ack_interval_ms / 1000
        #: Batches of this game the server refused, by rule (``BatchProblem.kind``).
        self.refused: dict[str, int] = {}

    # --- the base game's questions: one page, one ledger ----------------------------------------
    @property
    def episode_open(self) -> bool:  # type: ignore[override]
        return self.ledger.episode_open

    @property
    def last_step(self) -> int:  # type: ignore[override]
        return self.ledger.last_step

    def _open_episode(self, start: float) -> None:
        self.ledger.open_episode(self.plays, start)

    def _close_episode(self) -> None:
        self.ledger.close_episode()

    def _send_episode(self, message: dict[str, Any]) -> None:
        message["next_batch"] = self.ledger.next_batch
        for pid in self.participant_ids:
            self._send(pid, message)

    def _ended_notes(self) -> None:
        if self.refused:  # the page's data was refused: one line per game says how much, by rule
            log.warning(
                "game_batches_rejected",
                game_id=self.info.game_id,
                scene_id=self.info.scene_id,
                batches=sum(self.refused.values()),
                by_rule=dict(self.refused),
            )

    # --- GameHandle --------------------------------------------------------------------------
    def player_connected(self, participant_id: str) -> None:
        self.absent_since = None

    def player_message(self, participant_id: str, message: Any) -> None:
        if self.ended:
            return
        if isinstance(message, StepBatchMessage):
            self._ingest(participant_id, message)
        elif isinstance(message, EpisodeDone):
            self._episode_done(message)
        elif isinstance(message, RuntimeLoaded):
            self._loaded(message)
        elif isinstance(message, RuntimeLoadFailed):
            self._load_failed(message)
        elif isinstance(message, RttEcho):
            self._rtt_echo(participant_id, message)
        else:
            raise ProtocolError("unknown_type", f"{message.type!r} is not a message of the pyodide runtime")

    # --- episodes ----------------------------------------------------------------------------
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
