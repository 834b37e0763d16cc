"""The game: one env, its seats and its episode machine (the parts run by a ticker at each tick).

Action choice, frames and presence are the game's other parts, in their own modules
(:class:`ActionChoice`, :class:`Frames`, :class:`Presence`); every record goes through
``igym_core.runtime.records``.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

import structlog

from igym_core.builtin.runtime_server.actions import ActionChoice, StepResult
from igym_core.builtin.runtime_server.frames import Frames
from igym_core.builtin.runtime_server.presence import Player, Presence, quantile, rtt_summary
from igym_core.data.recorder import iso_utc
from igym_core.runtime import records
from igym_core.runtime.interface import Continuation, GameHandle, GameInfo
from igym_core.runtime.notify import call_scene_callback, notify_plugins

if TYPE_CHECKING:
    from igym_core.builtin.runtime_server.runtime import ServerRuntime
    from igym_core.builtin.runtime_server.scheduler import Ticker

__all__ = ["ServerGame"]

log = structlog.get_logger(__name__)

#: The env's CPU time is measured at one tick in this many (a thread CPU clock read is a system call).
ENV_CPU_EVERY = 8
_GAME_SERIAL = itertools.count()


class ServerGame(ActionChoice, Frames, Presence, GameHandle):
    """One game: its env, players, bots, episode loop, records and frames."""

    def __init__(
        self, runtime: ServerRuntime, info: GameInfo, prepared: Any, *, continues: Continuation | None = None
    ) -> None:
        self.continues = continues

        self.runtime = runtime
        self.host = runtime.host
        self.info = info
        self.prepared = prepared
        self.scene = prepared.scene
        self.ticker: Ticker | None = None
        self.env, self.raw_env = self._make_env(prepared)
        self._init_frames(prepared)  # the renderer, made with the env as before the bots
        self.table = prepared.action_table
        self.players: dict[str, Player] = {
            s.participant_id: Player(s.participant_id, s.agent) for s in info.seats if s.participant_id
        }
        self.agent_names = {a: str(a) for a in prepared.agents}
        self.agent_of_name = prepared.agent_by_name
        self.multiplayer = len(prepared.human_seats) > 1
        self.bots, self.batched_bots = self._seat_bots(prepared, info)
        self.human_agents = {self.agent_of_name[p.agent]: p for p in self.players.values()}
        self.participant_ids = [p.participant_id for p in self.players.values()]
        # The ids every record of this game starts with; built once (records are written every tick).
        self._ids_row = records.game_ids(
            game_id=info.game_id,
            scene_id=info.scene_id,
            instance=info.instance,
            participant_ids=self.participant_ids,
        )
        self._held_mode = self.scene.input_mode == "held"
        self._episode_open = False  # an episode has started and has no record yet
        self.phase = "waiting"
        # The number of the last episode started (a game continuing an interrupted one starts on).
        self._first_episode = continues.from_episode if continues is not None else 1
        self.episode = self._first_episode - 1
        self.step = 0
        self.tick_count = 0
        self.obs: dict[Any, Any] = {}
        self.returns: dict[Any, float] = {}
        self.last_rewards: dict[Any, float] = {}
        self.seed = 0
        self.created = time.monotonic()
        self.phase_until = 0.0
        self.episode_started_wall = 0.0
        self.episode_started_mono = 0.0
        self.episode_lateness: list[float] = []
        self.episode_dropped: dict[str, int] = {}
        self.episode_skipped_at_start = 0
        # Which ticks sample the env's CPU time: games spread over the ENV_CPU_EVERY phases, so
        # that a group's samples do not all fall on the same tick.
        self._cpu_phase = next(_GAME_SERIAL) % ENV_CPU_EVERY
        self.ended = False
        self.end_message = ""
        self._period = 1.0 / self.scene.fps
        self._max_steps = self.scene.max_steps
        self._record_obs = self.scene.record_observations
        self._stepped: StepResult | None = None  # tick_step's results, for the parts after it
        self._init_presence(prepared)
        #: The seats whose observations are read, as last told to the env (see tell_observed).
        self.observed_agents: frozenset[Any] | None = None
        self.tell_observed()

    def _make_env(self, prepared: Any) -> tuple[Any, Any]:
        """The game's ``(parallel env, the factory's object)``: here, in this process (a game whose
        env steps in a worker process overrides it, see ``pooled``)."""
        return prepared.make_env()  # type: ignore[no-any-return]

    # --- lifecycle ---------------------------------------------------------------------------
    def begin(self) -> None:
        self.host.record(
            records.GAMES,
            records.game_started_row_of(
                self._ids_row,
                info=self.info,
                scene=self.scene,
                runtime=self.runtime.kind,
                continues=self.continues,
            ),
        )
        log.info(
            "game_started",
            game_id=self.info.game_id,
            scene_id=self.info.scene_id,
            participants=self.participant_ids,
        )
        self._notify("notify_game_started", self.info)
        self.runtime.scheduler.add(self, self.scene.fps)

    def fail(self) -> None:
        if not self.ended:
            if self._episode_open:  # its record, with the seed that reproduces the failure
                try:
                    self._end_episode("error", then_continue=False)
                except Exception:
                    log.exception("episode_record_failed", game_id=self.info.game_id)
            self._end_game("error", "Something went wrong with the game. The study continues.")

    async def stop(self, reason: str) -> None:
        if not self.ended:
            if self._episode_open:
                self._end_episode("game_stopped")
            self._end_game(reason, "The study server is restarting.")

    async def end_early(self, reason: str) -> None:
        """The admin dashboard's "end game": the scene's partner-left ending (see GameHandle)."""
        if not self.ended:
            if self._episode_open:
                self._end_episode(reason, then_continue=False)
            self._end_game(reason, self.scene.partner_left_message)

    def live_stats(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "ticks": self.tick_count,
            "fps": self.scene.fps,
            "rtt_ms": {
                pid: (round(p.link.last_rtt_ms, 1) if p.link.last_rtt_ms is not None else None)
                for pid, p in self.players.items()
            },
        }

    # --- ticking -----------------------------------------------------------------------------
    def tick_step(self, lateness_ms: float) -> bool:
        """The first part of a tick: read the inputs, choose the actions and step the env (or, when
        not playing, everything the tick does). True when the other parts must follow, in the order
        of ``FINISH``: a ticker steps all its games first and then runs each part for all of them
        (see ``Ticker._run``)."""
        self.tick_count += 1
        phase = self.phase
        if phase == "playing":
            self.episode_lateness.append(lateness_ms)
            self._step_env()
            return True
        self._tick_not_playing(phase)
        return False

    def _tick_not_playing(self, phase: str) -> None:
        mono = time.monotonic()
        if phase == "waiting":
            # A player whose page has gone (closed right after the match) does not hold the others
            # for ready_timeout_s: the game starts, and their seat is absent, then the partner rule.
            # If every page has gone, the game pauses before its first episode.
            frame_sink = self.host.frame_sink
            present = [p for p in self.players.values() if frame_sink(p.participant_id) is not None]
            if not present:
                self._pause()
                return
            all_ready = all(p.ready for p in present)
            if all_ready or mono - self.created >= self.scene.ready_timeout_s:
                self._start_episode()
            return
        if phase == "countdown":
            if mono >= self.phase_until:
                self.phase = "playing"
                self._broadcast_status()
            elif not self._send_frames(rendered=None):  # keyframes for anyone who (re)joined
                self._pause()
                return
        if self.multiplayer and not self.ended:
            self._check_partners(mono)

    def _step_env(self) -> None:
        # The hot path of the server (with the parts after it): runs for every game at every tick.
        # Locals over attribute look-ups, one clock read per purpose, and nothing built that the tick
        # does not send or record.
        env = self.env
        step = self.step
        actions, sources, held_by_agent = self.choose_actions()
        # The env's share of the CPU, sampled at one tick in ENV_CPU_EVERY (a thread CPU clock read
        # is a system call); wall time around step and render at every tick (for env_slow).
        sampled = not (self.tick_count + self._cpu_phase) % ENV_CPU_EVERY
        if sampled:
            cpu_started = time.thread_time()
        started = time.perf_counter()
        obs, rewards, terminations, truncations, infos = env.step(actions)
        stepped = time.perf_counter()
        env_cpu = time.thread_time() - cpu_started if sampled else None
        self.step = step + 1
        # For tick_record, tick_render and tick_send (by position: see StepResult).
        self._stepped = StepResult(
            actions,
            sources,
            held_by_agent,
            obs,
            rewards,
            terminations,
            truncations,
            infos,
            stepped - started,
            env_cpu,
            round(time.time() * 1000, 1),
        )

    def tick_record(self) -> None:
        """One step record per agent for the step :meth:`tick_step` made."""
        stepped = self._stepped
        assert stepped is not None
        actions = stepped.actions
        sources = stepped.sources
        held = stepped.held
        rewards = stepped.rewards
        terminations = stepped.terminations
        truncations = stepped.truncations
        infos = stepped.infos
        t_server_ms = stepped.t_server_ms
        human_agents = self.human_agents
        agent_names = self.agent_names
        step = self.step
        record_obs = self._record_obs
        record = self.host.record
        ids = self._ids_row
        episode = self.episode
        tick = self.tick_count
        returns = self.returns
        step_row = records.step_row
        for agent, action in actions.items():
            player = human_agents.get(agent)
            row = step_row(
                ids,
                episode=episode,
                step=step,
                tick=tick,
                agent=agent_names[agent],
                participant_id=player.participant_id if player else None,
                action=action,
                action_source=sources[agent],
                keys_held=held[agent] if player else None,
                reward=rewards.get(agent, 0.0),
                terminated=terminations.get(agent, False),
                truncated=truncations.get(agent, False),
                info=infos.get(agent) if infos else None,
                t_server_ms=t_server_ms,
                observation=self.obs.get(agent) if record_obs else records.NOT_RECORDED,
            )
            returns[agent] = returns.get(agent, 0.0) + (row["reward"] or 0.0)
            record(records.STEPS, row)
        self.last_rewards = rewards  # made plain only if a custom HUD asks for them

    def tick_send(self) -> None:
        """Send the frame of the step and end the episode if it is over."""
        stepped = self._stepped
        assert stepped is not None
        self._stepped = None
        actions = stepped.actions
        terminations = stepped.terminations
        truncations = stepped.truncations
        t_server_ms = stepped.t_server_ms
        obs = stepped.obs
        self.obs = obs
        rendered = self._rendered
        self._rendered = None
        env = self.env
        step = self.step
        connected = self._send_frames(rendered, t_server_ms)
        done = True  # every agent terminated or truncated (a loop: a generator costs more here)
        for agent in actions:
            if not (terminations.get(agent, False) or truncations.get(agent, False)):
                done = False
                break
        if done or not env.agents:
            ended_by = "terminated" if any(terminations.get(a, False) for a in actions) else "truncated"
            self._end_episode(ended_by)
        elif self._max_steps is not None and step >= self._max_steps:
            self._end_episode("max_steps")
        elif not connected:
            self._pause()
        else:
            mono = time.monotonic()
            if self.multiplayer:
                self._check_partners(mono)
            if mono >= self._next_probe:
                self._probe(mono)

    def _start_episode(self) -> None:
        self.episode += 1
        self.seed = self.prepared.episode_seed(self.info.instance, self.participant_ids, self.episode)
        self.step = 0
        self.returns = {a: 0.0 for a in self.prepared.agents}
        self.last_rewards = {}
        self.episode_lateness = []
        self.episode_dropped = {p.participant_id: p.dropped for p in self.players.values()}
        for player in self.players.values():
            player.rtt_ms = []
            player.page_delay_ms = []
        self.episode_skipped_at_start = self.runtime.scheduler.stats.ticks_skipped
        self.episode_started_wall = time.time()
        self.episode_started_mono = time.monotonic()
        self.episode_paused_s = 0.0
        self.episode_pauses = 0
        self.episode_pause_reasons = {}
        self._episode_open = True  # from here on the episode gets a record, also if the env fails
        self._reset_env()

    def _reset_env(self) -> None:
        """Reset the env with the episode's seed and draw it, then :meth:`_episode_reset`. (A game
        whose env steps in a worker process does both there and continues when it answers.)"""
        obs, _infos = self.env.reset(seed=self.seed)
        self._episode_reset(obs, self.renderer.render(self.raw_env))

    def _episode_reset(self, obs: dict[Any, Any], rendered: Any) -> None:
        """The rest of an episode's start, once the env was reset (``obs``) and drawn (``rendered``)."""
        from igym_core.envs import agent_seed

        self.obs = obs
        for agent, bot in self.bots.items():
            bot.new_episode()
            reset = getattr(bot.policy, "reset", None)
            if reset is not None:
                reset(seed=agent_seed(self.seed, self.agent_names[agent]))
        for player in self.players.values():
            player.presses.clear()
        self._notify("notify_episode_started", self.info, self.episode, self.seed)
        self._callback("on_episode_start", self.info, self.episode, self.seed)
        countdown = self.scene.countdown_s
        self.phase = "countdown" if countdown > 0 else "playing"
        self.phase_until = time.monotonic() + countdown
        self._broadcast_status()
        self._send_frames(rendered)
        log.info("episode_started", game_id=self.info.game_id, episode=self.episode, seed=self.seed)

    def _end_episode(self, end_reason: str, *, then_continue: bool = True) -> None:
        self._episode_open = False
        duration = time.monotonic() - self.episode_started_mono
        lateness = sorted(self.episode_lateness)
        summary = records.episode_row(
            self._ids_row,
            episode=self.episode,
            seed=self.seed,
            steps=self.step,
            end_reason=end_reason,
            returns={self.agent_names[a]: v for a, v in self.returns.items()},
            seats={p.agent: p.participant_id for p in self.players.values()},
            started_at=iso_utc(self.episode_started_wall),
            duration_ms=round(duration * 1000),
            fps=self.scene.fps,
            frames_dropped={
                p.participant_id: p.dropped - self.episode_dropped.get(p.participant_id, 0)
                for p in self.players.values()
            },
            tick_lateness_ms_p50=quantile(lateness, 0.5),
            tick_lateness_ms_p99=quantile(lateness, 0.99),
            tick_lateness_ms_max=round(lateness[-1], 3) if lateness else None,
            rtt_ms={p.participant_id: rtt_summary(p.rtt_ms) for p in self.players.values()},
            page_delay_ms={p.participant_id: rtt_summary(p.page_delay_ms) for p in self.players.values()},
            paused_ms=round((self.episode_paused_s + self._paused_for()) * 1000),
            pauses=self.episode_pauses,
            pause_reasons=dict(self.episode_pause_reasons),
        )
        self.host.record(records.EPISODES, summary)
        log.info(
            "episode_ended",
            game_id=self.info.game_id,
            episode=self.episode,
            steps=self.step,
            end_reason=end_reason,
            duration_ms=summary["duration_ms"],
        )
        self._notify("notify_episode_ended", self.info, self.episode, summary)
        self._callback("on_episode_end", self.info, summary)
        if not then_continue or end_reason == "game_stopped":
            return
        if self.episode < self.scene.num_episodes:
            self._start_episode()
        else:
            self._end_game("completed", "Well done! This game is over.")

    def _end_game(self, reason: str, message: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.phase = "ended"
        self.end_message = message
        if self._abandon_timer is not None:
            self._abandon_timer.cancel()
            self._abandon_timer = None
        self.runtime.forget(self)
        self._broadcast_status()
        self._final_connection_report()
        self.host.record(
            records.GAMES, records.game_ended_row(self._ids_row, reason=reason, episodes_played=self.episode)
        )
        log.info("game_ended", game_id=self.info.game_id, reason=reason, episodes=self.episode)
        self._notify("notify_game_ended", self.info, reason)
        self._callback("on_game_end", self.info, reason)
        try:
            self.env.close()
        except Exception:
            log.debug("env_close_failed", game_id=self.info.game_id)
        self.host.game_ended(self.info.game_id, reason)

    def _notify(self, method: str, *args: Any) -> None:
        notify_plugins(self.host.plugins, method, self.info.game_id, *args)

    def _callback(self, name: str, *args: Any) -> None:
        call_scene_callback(self.prepared.callbacks, name, self.info.game_id, *args)

    # The parts of a playing tick after the step, each run for all the games of a ticker in a row.
    FINISH: tuple[Any, ...] = ()


ServerGame.FINISH = (ServerGame.tick_record, ServerGame.tick_render, ServerGame.tick_send)
