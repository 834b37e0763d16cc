"""Presence: players joining, going away and coming back, partners who left, pauses (nobody
connected, records that cannot be saved), abandoned games, round-trip probes, and the status each
player sees."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from igym_core.builtin.rtt_echo import RttEcho
from igym_core.builtin.runtime_server.actions import BotSeat
from igym_core.protocol.server_messages import GameStatus, RttProbe, pack
from igym_core.runtime import records
from igym_core.runtime.connection import ENDED, RECOVERED, WARNED, Link, quantile, report_rows, rtt_summary
from igym_core.runtime.interface import GameHandle, RuntimeMessage
from igym_core.session.saving import SAVING_MESSAGE
from igym_core.tasks import BackgroundTasks

if TYPE_CHECKING:
    from igym_core.builtin.runtime_server.game import ServerGame

__all__ = ["NOBODY_CONNECTED", "SAVING", "Player", "Presence", "quantile", "rtt_summary"]

log = structlog.get_logger(__name__)

#: Why a game pauses (the ``reason`` of its ``paused`` / ``resumed`` records).
NOBODY_CONNECTED = "nobody_connected"
SAVING = "saving"

_background = BackgroundTasks()


class Player:
    __slots__ = (
        "absent_since",
        "agent",
        "bytes_sent",
        "connection_id",
        "dropped",
        "held",
        "hud_text",
        "left",
        "link",
        "need_key",
        "participant_id",
        "presses",
        "ready",
        "sent",
    )

    def __init__(self, participant_id: str, agent: str) -> None:
        self.participant_id = participant_id
        self.agent = agent
        self.held: tuple[str, ...] = ()
        self.presses: deque[str] = deque(maxlen=64)
        self.ready = False
        self.need_key = True
        self.connection_id: int | None = None
        #: Frames this player's socket took, their bytes, and frames dropped because it was still
        #: busy (counted here, on the hot path; copied into ``link`` for each report).
        self.sent = 0
        self.bytes_sent = 0
        self.dropped = 0
        #: Since when (monotonic) the player has had no socket, or None while connected.
        self.absent_since: float | None = None
        #: Away past the grace period (a bot plays the seat, or the game ended).
        self.left = False
        #: Round-trip probes, their times, the reports' counters and the slow-connection rule's state.
        self.link = Link()
        #: The HUD text this player last got (multiplayer games: each player has their own).
        self.hud_text: str | None = None

    @property
    def rtt_ms(self) -> list[float]:
        """Network round-trip times measured this episode (the page's own delay taken out), in ms."""
        return self.link.rtt_ms

    @rtt_ms.setter
    def rtt_ms(self, value: list[float]) -> None:
        self.link.rtt_ms = value

    @property
    def page_delay_ms(self) -> list[float]:
        """How long each answered probe of this episode waited in the page, in ms."""
        return self.link.page_delay_ms

    @page_delay_ms.setter
    def page_delay_ms(self, value: list[float]) -> None:
        self.link.page_delay_ms = value


class Presence:
    """The presence part of :class:`~igym_core.builtin.runtime_server.game.ServerGame`."""

    def _init_presence(self: ServerGame, prepared: Any) -> None:
        # The bots that would take a seat whose player leaves: loaded now, not in a tick.
        self._partner_policies: dict[str, Any] = {}
        if self.multiplayer and self.scene.on_partner_left == "bot":
            for player in self.players.values():
                self._partner_policies[player.agent] = prepared.load_partner_policy(player.agent, self.env)
        self.notice = ""
        self._probe_n = 0
        self._next_probe = 0.0
        report_s = self.scene.connection_report_s
        self._report_s = report_s
        self._next_report = time.monotonic() + (report_s or 0.0)
        self._reported_at = time.monotonic()
        # A pause (see _pause): since when (scheduler clock), why (NOBODY_CONNECTED, SAVING: the
        # game resumes once there is no reason left), the phase to go back to, the timer that ends
        # the game as abandoned while nobody is connected, and the episode's totals.
        self.paused_since: float | None = None
        self.pause_reasons: set[str] = set()
        self._paused_from = ""
        self._abandon_timer: Any = None
        self.episode_paused_s = 0.0
        self.episode_pauses = 0
        self.episode_pause_reasons: dict[str, int] = {}

    def _broadcast_status(self: ServerGame) -> None:
        for pid in self.players:
            _background.spawn(self.host.send(pid, self.status_message(pid)))

    # --- GameHandle --------------------------------------------------------------------------
    def player_ready(self: ServerGame, participant_id: str) -> None:
        player = self.players.get(participant_id)
        if player is not None:
            player.ready = True
            player.need_key = True

    def player_input(
        self: ServerGame, participant_id: str, *, keys: Sequence[str] | None, press: Sequence[str] | None
    ) -> None:
        player = self.players.get(participant_id)
        if player is None:
            return
        if keys is not None:
            player.held = self.table.listened(keys)
        elif press and self.phase == "playing":  # a press in a countdown is not a move of the episode
            player.presses.extend(self.table.listened(press, unique=False))

    def player_connected(self: ServerGame, participant_id: str) -> None:
        player = self.players.get(participant_id)
        if player is not None:
            # The new page sends game_ready once it has mounted the scene and loaded its assets.
            player.ready = False
            player.need_key = True
            player.held = ()
            if player.left and not self.ended:  # back after a bot took the seat: it is theirs again
                self._seat_returned(player)
            if self.phase == "paused":
                self.unpause(NOBODY_CONNECTED)
            self._presence_changed()

    def status_message(self: ServerGame, participant_id: str) -> dict[str, Any]:
        player = self.players.get(participant_id)
        countdown_ms = 0
        if self.phase == "countdown":
            countdown_ms = max(0, round((self.phase_until - time.monotonic()) * 1000))
        message = ""
        if self.phase == "waiting":
            message = "Getting the game ready…"
        elif self.phase == "ended":
            message = self.end_message
        elif self.phase == "paused" and SAVING in self.pause_reasons:
            message = SAVING_MESSAGE
        pause_reason = None
        if self.phase == "paused":
            pause_reason = SAVING if SAVING in self.pause_reasons else NOBODY_CONNECTED
        players = notice = None
        if self.multiplayer:
            players = self._players_view(participant_id)
            notice = "" if self.phase == "ended" else self._notice_for(participant_id)
        rule = self.scene.slow_connection
        if rule is not None and player is not None and player.link.slow_warned and self.phase != "ended":
            notice = rule.warning
        return GameStatus(
            game_id=self.info.game_id,
            phase=self.phase,
            episode=max(self.episode, self._first_episode),
            num_episodes=self.scene.num_episodes,
            seat=player.agent if player else None,
            message=message,
            countdown_ms=countdown_ms,
            pause_reason=pause_reason,
            players=players,
            notice=notice,
        ).wire()

    def _players_view(self: ServerGame, participant_id: str) -> list[dict[str, Any]]:
        view = []
        for seat in self.info.seats:
            if seat.agent not in self.prepared.human_seats:
                continue
            other = self.players.get(seat.participant_id or "")
            if other is None or other.left:
                state = "bot"
            elif other.absent_since is not None:
                state = "away"
            else:
                state = "connected"
            view.append({"seat": seat.agent, "you": seat.participant_id == participant_id, "status": state})
        return view

    def _notice_for(self: ServerGame, participant_id: str) -> str:
        others = [p for pid, p in self.players.items() if pid != participant_id]
        if any(p.left for p in others):
            return f"{self.scene.partner_left_message} A computer player has taken their seat."
        if any(p.absent_since is not None for p in others):
            return "Your partner's connection dropped. The game goes on while they reconnect."
        return ""

    # --- players coming and going ----------------------------------------------------------
    def _check_partners(self: ServerGame, mono: float) -> None:
        grace = self.scene.reconnect_grace_s
        for player in self.players.values():
            if not player.left and player.absent_since is not None and mono - player.absent_since >= grace:
                self._partner_left(player)
                if self.ended:
                    return

    def _partner_left(self: ServerGame, player: Player) -> None:
        player.left = True
        outcome = self.scene.on_partner_left
        log.info(
            "partner_left", game_id=self.info.game_id, participant_id=player.participant_id, outcome=outcome
        )
        self.host.record(
            records.GAMES,
            records.partner_left_row(
                self._ids_row, left=player.participant_id, seat=player.agent, outcome=outcome
            ),
        )
        self.host.player_left(self.info, player.participant_id, outcome)
        if self.ended:
            return
        if outcome == "end":
            if self._episode_open:
                self._end_episode("partner_left", then_continue=False)
            self._end_game("partner_left", self.scene.partner_left_message)
            return
        agent = self.agent_of_name[player.agent]
        self.human_agents.pop(agent, None)
        policy = self._partner_policies.get(player.agent)
        if policy is None:
            policy = self.prepared.load_partner_policy(player.agent, self.env)
        bot = BotSeat(policy, 1, "repeat", self.env.action_space(agent), seat=player.agent)
        reset = getattr(bot.policy, "reset", None)
        if reset is not None:
            from igym_core.envs import agent_seed

            reset(seed=agent_seed(self.seed, player.agent))
        self.bots[agent] = bot
        self.tell_observed()  # the bot reads this seat's observations from the next step on
        self._broadcast_status()

    def _seat_returned(self: ServerGame, player: Player) -> None:
        agent = self.agent_of_name[player.agent]
        self.bots.pop(agent, None)
        self.human_agents[agent] = player
        player.left = False
        self.tell_observed()
        self.host.record(
            records.GAMES,
            records.seat_returned_row(self._ids_row, participant_id=player.participant_id, seat=player.agent),
        )
        self.host.player_returned(self.info, player.participant_id)

    def _presence_changed(self: ServerGame) -> None:
        if self.multiplayer and not self.ended:
            self._broadcast_status()

    # --- round-trip times and connection reports ------------------------------------------
    def _probe(self: ServerGame, mono: float) -> None:
        self._next_probe = mono + self.scene.rtt_interval_s
        self._probe_n += 1
        n = self._probe_n
        later = self.runtime.scheduler.later
        if later is not None:  # inside a ticker: after the group's frames, which matter more
            later.append(lambda: self._send_probe(n))
        else:
            self._send_probe(n)
        if self._report_s is not None and mono >= self._next_report:
            self._report_connection(mono)

    def _send_probe(self: ServerGame, n: int) -> None:
        # `t` is taken as the probe goes out (not when it was due): the page compares it with the
        # frames' `t` to tell how long the probe waited in the page.
        data = pack(RttProbe(game_id=self.info.game_id, n=n, t=round(time.time() * 1000, 1)).wire())
        frame_sink = self.host.frame_sink
        sent = time.monotonic()
        rule = self.scene.slow_connection
        for player in self.players.values():
            sink = frame_sink(player.participant_id)
            if sink is None:  # away: the presence rules apply, not this one
                continue
            link = player.link
            link.on_socket(sink.connection_id)
            if rule is not None:  # a probe still out past the limit is slow already (no echo at all)
                overdue = link.overdue_ms(sent)
                if overdue is not None and overdue > rule.max_rtt_ms:
                    self._judge_connection(player, overdue)
                    if self.ended:
                        return
            if sink.offer(data):
                link.probe_sent(n, sent)

    def _report_connection(self: ServerGame, mono: float) -> None:
        """Each player's ``connection_stats`` row for the period since the last one."""
        self._next_report = mono + (self._report_s or 0.0)
        period_ms = round((mono - self._reported_at) * 1000)
        self._reported_at = mono
        links = {}
        for pid, player in self.players.items():
            link = player.link
            link.frames_sent = player.sent
            link.frames_dropped = player.dropped
            link.bytes_sent = player.bytes_sent
            links[pid] = (player.agent, link)
        connected = {pid: p.absent_since is None and not p.left for pid, p in self.players.items()}
        rows = report_rows(
            self._ids_row,
            links,
            episode=self.episode,
            step=self.step,
            period_ms=period_ms,
            connected=connected,
            runtime_draws=True,
        )
        self.host.record_many(records.CONNECTION_STATS, rows)

    def _final_connection_report(self: ServerGame) -> None:
        """The game ends: the last period's rows (a game shorter than a period gets its only ones),
        after the frames of this tick went out (inside a ticker they are written after the group)."""
        if self._report_s is None:
            return

        def report() -> None:
            try:
                self._report_connection(time.monotonic())
            except Exception:
                log.exception("connection_report_failed", game_id=self.info.game_id)

        later = self.runtime.scheduler.later
        if later is not None:
            later.append(report)
        else:
            report()

    def player_message(self: ServerGame, participant_id: str, message: RuntimeMessage) -> None:
        if isinstance(message, RttEcho):
            self.player_rtt_echo(participant_id, message.n, message.page_delay_ms)
        else:
            GameHandle.player_message(self, participant_id, message)

    def player_rtt_echo(
        self: ServerGame, participant_id: str, n: int, page_delay_ms: float | None = None
    ) -> None:
        """Probe ``n`` answered: the round trip less the time it waited in the page (which the page
        reports; a page whose main thread is busy drawing answers tens of ms late) is the network's."""
        player = self.players.get(participant_id)
        if player is None:
            return
        rtt = player.link.echoed(n, page_delay_ms, time.monotonic())
        if rtt is not None and self.scene.slow_connection is not None:
            self._judge_connection(player, rtt)

    def _judge_connection(self: ServerGame, player: Player, rtt_ms: float) -> None:
        """Apply the scene's slow-connection rule to one measured round trip, or to the age of a
        probe still unanswered (see ``igym_core.builtin.slow_connection``)."""
        rule = self.scene.slow_connection
        if rule is None or player.left or self.ended:
            return
        now = time.monotonic()
        link = player.link
        event = link.judge(rule, rtt_ms, now)
        if event is None:
            return
        row: dict[str, Any] = {
            "participant_id": player.participant_id,
            "seat": player.agent,
            "rtt_ms": round(rtt_ms, 1),
        }
        if event == RECOVERED:
            self.host.record(records.GAMES, {**self._ids_row, "event": event, **row})
            _background.spawn(
                self.host.send(player.participant_id, self.status_message(player.participant_id))
            )
            return
        row["slow_for_s"] = link.slow_for_s(now)
        row["max_rtt_ms"] = rule.max_rtt_ms
        if event == WARNED:
            self._record_slow(player, event, row)
        elif event == ENDED:
            self._record_slow(player, event, row, notify=False)
            if self.multiplayer:
                self._partner_left(player)
            else:
                if self._episode_open:
                    self._end_episode("slow_connection", then_continue=False)
                self._end_game("slow_connection", rule.end_message)

    def _record_slow(
        self: ServerGame, player: Player, event: str, row: dict[str, Any], *, notify: bool = True
    ) -> None:
        """A ``games`` row and a log line; ``notify``: send the player their status (its notice)."""
        self.host.record(records.GAMES, {**self._ids_row, "event": event, **row})
        log.warning(event, game_id=self.info.game_id, **row)
        if notify:
            _background.spawn(
                self.host.send(player.participant_id, self.status_message(player.participant_id))
            )

    # --- pauses: nobody connected, or records that cannot be stored -------------------------
    def _pause(self: ServerGame) -> None:
        """No player is connected: stop ticking until one returns (no steps, no records, no CPU).

        A game whose players have all gone would otherwise play on with no input, recording whole
        episodes nobody saw, and cost as much as a game someone plays. The game leaves its ticker;
        a timer ends it as abandoned after the scene's ``abandon_after_s``; a returning player
        resumes it (:meth:`unpause`) with a countdown.
        """
        self.pause(NOBODY_CONNECTED)

    def pause(self: ServerGame, reason: str) -> None:
        """Stop ticking for ``reason`` (``NOBODY_CONNECTED``, or ``SAVING``: the study's records
        cannot be stored and too many wait in memory). A paused game steps, records and sends
        nothing; it resumes once every reason is gone (:meth:`unpause`). The ``games`` record
        ``paused`` says why; only a pause with nobody connected can end the game as abandoned."""
        if self.ended:
            return
        clock = self.runtime.scheduler.clock()
        now = clock.time()
        if reason == NOBODY_CONNECTED and self._abandon_timer is None:
            self._abandon_timer = clock.call_at(now + self.scene.abandon_after_s, self._abandon)
        if self.phase == "paused":
            if reason not in self.pause_reasons:
                self.pause_reasons.add(reason)
                if self._episode_open:
                    self._count_pause(reason)
                self.host.record(
                    records.GAMES,
                    records.game_paused_row(
                        self._ids_row, reason=reason, episode=self.episode, step=self.step
                    ),
                )
                if reason == SAVING:
                    self._broadcast_status()
            return
        self.pause_reasons = {reason}
        self._paused_from = self.phase
        self.phase = "paused"
        self.paused_since = now
        if self._episode_open:
            self.episode_pauses += 1
            self._count_pause(reason)
        for player in self.players.values():
            player.held = ()
            player.presses.clear()
        self.runtime.scheduler.remove(self)
        self.host.record(
            records.GAMES,
            records.game_paused_row(self._ids_row, reason=reason, episode=self.episode, step=self.step),
        )
        log.info(
            "game_paused", game_id=self.info.game_id, reason=reason, episode=self.episode, step=self.step
        )
        if reason == SAVING:  # its players are there: they see why the game stopped
            self._broadcast_status()

    def _count_pause(self: ServerGame, reason: str) -> None:
        self.episode_pause_reasons[reason] = self.episode_pause_reasons.get(reason, 0) + 1

    def _paused_for(self: ServerGame) -> float:
        """Seconds of the current pause so far (0 when not paused)."""
        if self.paused_since is None:
            return 0.0
        return max(0.0, self.runtime.scheduler.clock().time() - self.paused_since)

    def unpause(self: ServerGame, reason: str) -> None:
        """``reason`` for the pause is gone (a player is back, or records are stored again): once no
        reason is left, the game ticks again, from a countdown if an episode was under way."""
        if self.ended or self.phase != "paused" or reason not in self.pause_reasons:
            return
        self.pause_reasons.discard(reason)
        if reason == NOBODY_CONNECTED and self._abandon_timer is not None:
            self._abandon_timer.cancel()
            self._abandon_timer = None
        if self.pause_reasons:  # still paused for the other reason
            if reason == NOBODY_CONNECTED:
                self._broadcast_status()
            return
        self._resume(reason)

    def _resume(self: ServerGame, reason: str) -> None:
        paused_s = self._paused_for()
        self.paused_since = None
        if self._episode_open:
            self.episode_paused_s += paused_s
        # Time nobody could play does not count towards a partner's reconnect grace.
        for player in self.players.values():
            if player.absent_since is not None:
                player.absent_since += paused_s
        mono = time.monotonic()
        if self._paused_from == "waiting":
            self.phase = "waiting"
            self.created = mono  # the ready timeout counts from the return
        else:
            countdown = self.scene.countdown_s
            self.phase = "countdown" if countdown > 0 else "playing"
            self.phase_until = mono + countdown
        self.host.record(
            records.GAMES,
            records.game_resumed_row(
                self._ids_row,
                reason=reason,
                episode=self.episode,
                step=self.step,
                paused_ms=round(paused_s * 1000),
            ),
        )
        log.info("game_resumed", game_id=self.info.game_id, reason=reason, paused_ms=round(paused_s * 1000))
        self.runtime.scheduler.add(self, self.scene.fps)
        self._broadcast_status()

    def _abandon(self: ServerGame) -> None:
        """The pause lasted ``abandon_after_s``: the game ends as abandoned."""
        self._abandon_timer = None
        if self.ended or self.phase != "paused" or NOBODY_CONNECTED not in self.pause_reasons:
            return
        try:
            if self._episode_open:
                self._end_episode("abandoned", then_continue=False)
            self._end_game("abandoned", "Nobody was connected to this game for too long.")
        except Exception:
            log.exception("game_abandon_failed", game_id=self.info.game_id)
