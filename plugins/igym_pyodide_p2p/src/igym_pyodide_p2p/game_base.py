"""The episode machine the ``pyodide`` and ``pyodide_p2p`` games share: :class:`BaseBrowserGame`
issues each episode (seed, countdown, the ``pyodide_episode`` message), holds it back while records
cannot be stored, ends it (the ``episodes`` record) and ends the game; it gives statuses and applies the
load-failure rule.

Where the two runtimes differ it asks its subclass (``game.PyodideGame``: one page, one ledger;
``p2p_runtime.P2PGame``: two pages, a ledger each, the frame book):

- :meth:`_open_episode` / :meth:`_close_episode`: the ledgers that take the episode's steps;
- :meth:`_send_episode`: who gets the ``pyodide_episode`` message, with which ``next_batch``;
- :meth:`_episode_closed`, :meth:`_summary_records`, :meth:`_ended_notes`: records and log lines of
  their own at an episode's and a game's end;
- :meth:`_seat_of` / :meth:`_status_note`: a participant's seat and the line their status shows;
- :meth:`_slow_connection_ended`: the scene's slow-connection rule ended a player's part;
- ``episode_open`` and ``last_step``.

Connections: as the server runtime does, the server sends each page a round-trip probe
(``rtt_probe``) every ``rtt_interval_s`` while an episode is issued; the page answers ``rtt_echo``
(``static/page/page_game.js``). Each player's :class:`~igym_core.runtime.connection.Link` keeps the
round trips (the ``episodes`` row's ``rtt_ms``, the admin dashboard's), the steps their page sent
that were stored, the ``connection_stats`` rows every ``connection_report_s``, and the scene's
``slow_connection`` rule: warned (the status's notice), then :meth:`_slow_connection_ended`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import structlog

from igym_core.builtin.rtt_echo import RttEcho
from igym_core.data.recorder import iso_utc
from igym_core.protocol.server_messages import GameStatus, RttProbe, pack
from igym_core.runtime import records
from igym_core.runtime.connection import ENDED, RECOVERED, WARNED, Link, report_rows, rtt_summary
from igym_core.runtime.interface import Continuation, GameExit, GameHandle, GameInfo
from igym_core.runtime.notify import call_scene_callback, notify_plugins
from igym_core.session.saving import SAVING_MESSAGE
from igym_pyodide_p2p.messages import PyodideEpisode
from igym_pyodide_p2p.options import LOAD_FAILED_OUTCOME

#: Episode end reasons that mean the page ended the episode before the env did.
CUT_SHORT_REASONS = frozenset({"incomplete", "batch_refused"})
#: The ``ended`` reason of a game with such episodes, and the outcome its players' study gets.
CUT_SHORT_REASON = "completed_cut_short"
CUT_SHORT_OUTCOME = "episodes_cut_short"

__all__ = ["SAVING", "BaseBrowserGame"]

#: Why a game waits (the ``reason`` of its ``paused`` / ``resumed`` records), as the server runtime names it.
SAVING = "saving"


class BaseBrowserGame(GameHandle):
    """A game whose env steps in its players' pages; the server issues the episodes and stores records."""

    #: The subclass's logger (each runtime logs under its own module name).
    log: ClassVar[Any] = structlog.get_logger("igym_pyodide_p2p.runtime")

    episode_open: bool
    last_step: int

    def __init__(
        self,
        runtime: Any,
        info: GameInfo,
        prepared: Any,
        options: Any,
        players: Mapping[str, str],
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
        #: Human seat (agent name) → participant id.
        self.players = dict(players)
        self.participant_ids = list(self.players.values())
        self._ids = records.game_ids(
            game_id=info.game_id,
            scene_id=info.scene_id,
            instance=info.instance,
            participant_ids=self.participant_ids,
        )
        self.phase = "loading"
        self.ended = False
        self.end_message = ""
        #: Which of the scene's episodes (1 … num_episodes) is being played or comes next.
        self.round = continues.from_episode if continues is not None else 1
        #: Episodes the page ended before the env did (``CUT_SHORT_REASONS``).
        self.episodes_cut_short = 0
        #: Plays so far (the ``episode`` number of data and of the pages' messages).
        self.plays = 0
        self.seed = 0
        self.phase_until = 0.0
        self.episode_started_wall = 0.0
        self.episode_started_mono = 0.0
        self.returns: dict[str, float] = {}
        self.absent_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._paused_at = 0.0
        #: When a page last sent steps of the open episode (or it was issued), monotonic.
        self.last_progress = 0.0
        #: Each player's connection (participant id → link): round trips, steps received, the rule.
        self.links = {pid: Link() for pid in self.participant_ids}
        #: Steps (frames) of this game stored so far: the admin dashboard's ``ticks``.
        self.ticks = 0
        self._probe_n = 0
        self._probe_timer: asyncio.TimerHandle | None = None
        self._reported_at = time.monotonic()
        self._next_report = self._reported_at + (self.scene.connection_report_s or 0.0)

    # --- what a subclass says ----------------------------------------------------------------
    def _open_episode(self, start: float) -> None:
        """Episode ``self.plays`` is issued, to start at ``start`` (monotonic): open its ledgers."""
        raise NotImplementedError

    def _close_episode(self) -> None:
        """The open episode is over (or taken back): its ledgers take no more steps."""
        raise NotImplementedError

    def _send_episode(self, message: dict[str, Any]) -> None:
        """Send the ``pyodide_episode`` message (``next_batch`` still to be set) to the pages."""
        raise NotImplementedError

    def _episode_closed(self) -> None:
        """Records of the subclass's own when an episode ends, before its ``episodes`` row."""

    def _summary_records(self) -> None:
        """Records of the subclass's own when the game ends, before its ``game_ended`` row."""

    def _ended_notes(self) -> None:
        """Log lines of the subclass's own when the game ends, after ``game_ended``."""

    def _seat_of(self, participant_id: str) -> str | None:
        return next((agent for agent, pid in self.players.items() if pid == participant_id), None)

    def _status_note(self, participant_id: str, message: str) -> str:
        """The line a participant's status shows (``message``: the phase's)."""
        return message

    # --- lifecycle ---------------------------------------------------------------------------
    def begin(self) -> None:
        self.host.record(
            records.GAMES,
            records.game_started_row_of(
                self._ids,
                info=self.info,
                scene=self.scene,
                runtime=self.runtime.kind,
                continues=self.continues,
            ),
        )
        self.log.info(
            "game_started", game_id=self.info.game_id, scene_id=self.info.scene_id, runtime=self.runtime.kind
        )
        self._notify("notify_game_started", self.info)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.options.load_timeout_s, self._load_timed_out)
        self._probe_timer = loop.call_later(self.scene.rtt_interval_s, self._probe)

    def _load_timed_out(self) -> None:
        raise NotImplementedError

    async def stop(self, reason: str) -> None:
        if not self.ended:
            self._withdraw_unstarted_episode()
            if self.episode_open:
                self._end_episode("game_stopped", then_continue=False)
            self._end_game(reason, "The study server is restarting.")

    def live_stats(self) -> dict[str, Any]:
        """For the admin dashboard: the phase, the scene's fps, the steps stored so far (``ticks``:
        the pages step the env and send the steps in batches, so the rate shown is the steps
        stored per second) and each player's last round trip."""
        return {
            "phase": self.phase,
            "fps": self.scene.fps,
            "ticks": self.ticks,
            "rtt_ms": {
                pid: (round(link.last_rtt_ms, 1) if link.last_rtt_ms is not None else None)
                for pid, link in self.links.items()
            },
        }

    async def end_early(self, reason: str) -> None:
        """The admin dashboard's "end game": the scene's partner-left ending (see GameHandle)."""
        if not self.ended:
            self._withdraw_unstarted_episode()
            if self.episode_open:
                self._end_episode(reason, then_continue=False)
            self._end_game(reason, self.scene.partner_left_message)

    # --- GameHandle --------------------------------------------------------------------------
    def player_ready(self, participant_id: str) -> None:
        """The page has mounted the scene; it loads the runtime next (``runtime_loaded``)."""

    def player_input(
        self, participant_id: str, *, keys: Sequence[str] | None, press: Sequence[str] | None
    ) -> None:
        """Keys go to the page's own env; the server has nothing to do with them."""

    def status_message(self, participant_id: str) -> dict[str, Any]:
        countdown_ms = 0
        if self.phase == "countdown":
            countdown_ms = max(0, round((self.phase_until - time.monotonic()) * 1000))
        message = {"loading": "Loading the game…", "ended": self.end_message, "paused": SAVING_MESSAGE}.get(
            self.phase, ""
        )
        return GameStatus(
            game_id=self.info.game_id,
            phase=self.phase,
            episode=min(self.round, self.scene.num_episodes),
            num_episodes=self.scene.num_episodes,
            seat=self._seat_of(participant_id),
            message=self._status_note(participant_id, message),
            countdown_ms=countdown_ms,
            pause_reason=SAVING if self.phase == "paused" else None,
            notice=self._slow_notice(participant_id),
        ).wire()

    # --- episodes ----------------------------------------------------------------------------
    def _countdown(self) -> None:
        """The next episode: issued now, played after the scene's countdown (the pages show its first
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
                records.game_paused_row(self._ids, reason=SAVING, episode=self.plays, step=self.last_step),
            )
            self._paused_at = time.monotonic()
            self._broadcast_status()
            return
        self.plays += 1
        self.seed = self.prepared.episode_seed(self.info.instance, self.participant_ids, self.round)
        self.returns = {str(a): 0.0 for a in self.prepared.agents}
        for link in self.links.values():
            link.new_episode()
        start = time.monotonic() + start_in_s
        self.episode_started_wall = time.time() + start_in_s
        self.episode_started_mono = start
        self._open_episode(start)
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
            next_batch=1,
            start_in_ms=round(start_in_s * 1000),
        ).wire()
        if start_in_s > 0:
            self.phase = "countdown"
            self._timer = asyncio.get_running_loop().call_later(start_in_s, self._begin_episode)
        else:
            self._begin_episode()
        self._broadcast_status()
        self._send_episode(episode)
        self.log.info("episode_started", game_id=self.info.game_id, episode=self.plays, seed=self.seed)

    def _begin_episode(self) -> None:
        """The countdown is over: the pages step the episode from now on."""
        self._timer = None
        if self.ended or not self.episode_open:
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
        if not (self.episode_open and self.phase == "countdown"):
            return False
        self._cancel_timer()
        self._close_episode()
        self.plays -= 1
        self.runtime.counters["episodes"] -= 1
        return True

    def _end_episode(self, end_reason: str, *, then_continue: bool = True) -> None:
        if end_reason in CUT_SHORT_REASONS:
            self.episodes_cut_short += 1
        self._close_episode()
        self._episode_closed()
        duration = max(0.0, time.monotonic() - self.episode_started_mono)  # 0 if still in its countdown
        summary = records.episode_row(
            self._ids,
            episode=self.plays,
            seed=self.seed,
            steps=self.last_step,
            end_reason=end_reason,
            returns=self.returns,
            seats=self.players,
            started_at=iso_utc(self.episode_started_wall),
            duration_ms=round(duration * 1000),
            fps=self.scene.fps,
            frames_dropped={},  # the pages draw their own frames
            tick_lateness_ms_p50=None,  # and keep their own time
            tick_lateness_ms_p99=None,
            tick_lateness_ms_max=None,
            rtt_ms={pid: rtt_summary(link.rtt_ms) for pid, link in self.links.items()},
            page_delay_ms={pid: rtt_summary(link.page_delay_ms) for pid, link in self.links.items()},
            paused_ms=0,
            pauses=0,
            pause_reasons={},
        )
        self.host.record(records.EPISODES, summary)
        self.log.info(
            "episode_ended",
            game_id=self.info.game_id,
            episode=self.plays,
            steps=self.last_step,
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
            self._completed()

    def _completed(self) -> None:
        """Every episode was played. If the page ended any of them before the env did (it said the
        episode was over when the steps stored do not end it, or it sent a batch that was refused),
        the game ends ``completed_cut_short`` and the players' study is marked ``episodes_cut_short``
        (the ``finished`` record; ``EndScene.codes_by_outcome`` can give it another code); they go on
        to the next scene either way."""
        if self.episodes_cut_short:
            self.log.info(
                "game_cut_short", game_id=self.info.game_id, episodes_cut_short=self.episodes_cut_short
            )
            exit = GameExit(outcome=CUT_SHORT_OUTCOME)
            self._end_game(CUT_SHORT_REASON, "Well done! This game is over.", exit=exit)
        else:
            self._end_game("completed", "Well done! This game is over.")

    def saving_resumed(self) -> None:
        """Records are stored again: an episode held back by the runtime's ``hold_for_saving``
        starts after a countdown."""
        if self.phase == "paused" and not self.ended:
            self.host.record(
                records.GAMES,
                records.game_resumed_row(
                    self._ids,
                    reason=SAVING,
                    episode=self.plays,
                    step=self.last_step,
                    paused_ms=round((time.monotonic() - self._paused_at) * 1000),
                ),
            )
            self._countdown()

    # --- stalls and load failures ------------------------------------------------------------
    def _stalled(self, now: float) -> None:
        """The pages are connected but have sent no steps for ``load_timeout_s`` in an episode (a
        worker died, or a reloaded page never loaded): the game cannot be played in this browser,
        so the load timeout's rule applies."""
        silent_s = round(now - self.last_progress, 1)
        self.host.record(
            records.GAMES,
            records.stalled_row(self._ids, episode=self.plays, step=self.last_step, silent_s=silent_s),
        )
        self.log.info("game_stalled", game_id=self.info.game_id, episode=self.plays, silent_s=silent_s)
        self._end_episode("stalled", then_continue=False)
        self._give_up("stalled")

    def _give_up(self, reason: str) -> None:
        """The game cannot be played here: the participants go where ``on_load_timeout`` says."""
        self._withdraw_unstarted_episode()
        if self.episode_open:  # a reloaded page that could not load: the episode ends here
            self._end_episode("interrupted", then_continue=False)
        options = self.options
        exit = GameExit(
            outcome=LOAD_FAILED_OUTCOME,
            to_scene=options.load_timeout_scene,
            to_end=options.on_load_timeout == "end",
        )
        self._end_game(reason, "The game could not be loaded in this browser.", exit=exit)

    # --- connections: round trips, reports, the slow-connection rule ----------------------------
    def _probe(self) -> None:
        """Every ``rtt_interval_s``: a round-trip probe to each connected page while an episode is
        issued (a probe still out past the rule's limit counts as slow), and the reports when due."""
        self._probe_timer = None
        if self.ended:
            return
        self._probe_timer = asyncio.get_running_loop().call_later(self.scene.rtt_interval_s, self._probe)
        if self.phase not in ("countdown", "playing"):
            return
        try:
            self._probe_pages()
        except Exception:  # the next probe comes all the same
            self.log.exception("probe_failed", game_id=self.info.game_id)

    def _probe_pages(self) -> None:
        self._probe_n += 1
        probe = RttProbe(game_id=self.info.game_id, n=self._probe_n, t=round(time.time() * 1000, 1))
        data = pack(probe.wire())
        now = time.monotonic()
        rule = self.scene.slow_connection
        for pid, link in self.links.items():
            sink = self.host.frame_sink(pid)
            if sink is None:  # away: the presence rules apply, not this one
                continue
            link.on_socket(sink.connection_id)
            if rule is not None and not self._gone(pid):
                overdue = link.overdue_ms(now)
                if overdue is not None and overdue > rule.max_rtt_ms:
                    self._judge(pid, overdue)
                    if self.ended:
                        return
            if sink.offer(data):
                link.probe_sent(self._probe_n, now)
        if self.scene.connection_report_s is not None and now >= self._next_report:
            self._report_connection(now)

    def _rtt_echo(self, participant_id: str, message: RttEcho) -> None:
        """A page answered probe ``message.n``: its round trip, judged by the scene's rule."""
        link = self.links.get(participant_id)
        if link is None:
            return
        rtt = link.echoed(message.n, message.page_delay_ms, time.monotonic())
        if rtt is not None and self.scene.slow_connection is not None and not self._gone(participant_id):
            self._judge(participant_id, rtt)

    def _gone(self, participant_id: str) -> bool:
        """Whether the player's part of the game is over (a partner who left)."""
        return False

    def _judge(self, participant_id: str, rtt_ms: float) -> None:
        rule = self.scene.slow_connection
        if rule is None or self.ended:
            return
        now = time.monotonic()
        link = self.links[participant_id]
        event = link.judge(rule, rtt_ms, now)
        if event is None:
            return
        row: dict[str, Any] = {
            "participant_id": participant_id,
            "seat": self._seat_of(participant_id),
            "rtt_ms": round(rtt_ms, 1),
        }
        if event != RECOVERED:
            row["slow_for_s"] = link.slow_for_s(now)
            row["max_rtt_ms"] = rule.max_rtt_ms
        self.host.record(records.GAMES, {**self._ids, "event": event, **row})
        if event == RECOVERED:
            self._send(participant_id, self.status_message(participant_id))
            return
        self.log.warning(event, game_id=self.info.game_id, **row)
        if event == WARNED:
            self._send(participant_id, self.status_message(participant_id))
        elif event == ENDED:
            self._slow_connection_ended(participant_id)

    def _slow_connection_ended(self, participant_id: str) -> None:
        """The scene's rule for a player whose connection stayed slow: a one-player game ends with
        the outcome ``slow_connection`` (a multiplayer runtime applies its partner-left rule)."""
        rule = self.scene.slow_connection
        self._withdraw_unstarted_episode()
        if self.episode_open:
            self._end_episode("slow_connection", then_continue=False)
        self._end_game("slow_connection", rule.end_message if rule is not None else "")

    def _slow_notice(self, participant_id: str) -> str | None:
        rule = self.scene.slow_connection
        link = self.links.get(participant_id)
        if rule is not None and link is not None and link.slow_warned and self.phase != "ended":
            return rule.warning
        return None

    def _report_connection(self, now: float) -> None:
        """Each player's ``connection_stats`` row for the period since the last one."""
        self._next_report = now + (self.scene.connection_report_s or 0.0)
        period_ms = round((now - self._reported_at) * 1000)
        self._reported_at = now
        links = {pid: (self._seat_of(pid), link) for pid, link in self.links.items()}
        connected = {pid: self.host.frame_sink(pid) is not None and not self._gone(pid) for pid in self.links}
        rows = report_rows(
            self._ids,
            links,
            episode=self.plays,
            step=self.last_step,
            period_ms=period_ms,
            connected=connected,
            runtime_draws=False,
        )
        self.host.record_many(records.CONNECTION_STATS, rows)

    # --- the end -----------------------------------------------------------------------------
    def _end_game(self, reason: str, message: str, *, exit: GameExit | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        self._cancel_timer()
        if self._probe_timer is not None:
            self._probe_timer.cancel()
            self._probe_timer = None
        self._close_episode()
        self.phase = "ended"
        self.end_message = message
        self.runtime.forget(self)
        self._broadcast_status()
        if self.scene.connection_report_s is not None and self.plays:
            self._report_connection(time.monotonic())
        self._summary_records()
        self.host.record(
            records.GAMES, records.game_ended_row(self._ids, reason=reason, episodes_played=self.plays)
        )
        self.log.info("game_ended", game_id=self.info.game_id, reason=reason, episodes=self.plays)
        self._ended_notes()
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

    def _send(self, participant_id: str, message: Mapping[str, Any]) -> None:
        self.runtime.spawn(self.host.send(participant_id, message))

    def _broadcast_status(self) -> None:
        for pid in self.participant_ids:
            self._send(pid, self.status_message(pid))

    def _notify(self, method: str, *args: Any) -> None:
        notify_plugins(self.host.plugins, method, self.info.game_id, *args)

    def _callback(self, name: str, *args: Any) -> None:
        call_scene_callback(self.prepared.callbacks, name, self.info.game_id, *args)
