"""The built-in ``server`` runtime: the server steps each game's env at the scene's tick rate.

Timing
    Ticks follow absolute deadlines (``epoch + offset + k * period``), so a slow tick delays only
    itself. A tick more than one period late skips the deadlines it missed (counted as
    ``ticks_skipped``) instead of running a burst of catch-up ticks that would show as a jump.
    Deadlines and lateness are on ``time.monotonic()``, and no tick runs before its deadline (on
    uvloop, whose timers count whole milliseconds, see ``_LoopClock``).

Groups
    Games with the same tick rate are stepped by a few tickers (``Settings.tick_groups``, 4 by
    default) whose deadlines are spread evenly over the period, each stepping, rendering and sending
    its games one after another. Games that all start at once are therefore not all due at the same
    instant, and there is one timer wake-up per group rather than per game. ``tick_groups=0`` gives
    every game a ticker of its own with a spread phase (``bench/server_tick.py`` compares the two).

Stepping inline
    ``env.step`` and the renderer run on the event loop, inline. A step therefore delays the other
    games of the process by exactly its own cost and no more; for the envs igym targets (tens of µs
    for classic control, a few ms for grid worlds) a thread would cost more in hand-offs than it
    saves, and a separate process would need the env's state to cross a pipe every tick. A game
    whose step + render takes a large share of its tick period is logged (``env_slow``) once.

Nobody connected
    A game none of whose players has a socket pauses at the tick that notices: it leaves its
    ticker (no steps, records or CPU) until a player returns, and a loop timer ends it as
    ``abandoned`` after the scene's ``abandon_after_s``. See ``ServerGame._pause``.

Data that cannot be saved
    While a required data sink fails and the records waiting in memory reach
    ``IGYM_MAX_UNSAVED_BYTES``, the recorder holds recording back and every game pauses the same way
    (reason ``saving``; its players see the saving message), resuming with a countdown once the
    records are stored. See ``ServerRuntime.hold_for_saving`` and ``ServerGame.pause``.

Slow clients
    Frames are offered to each player's socket (see ``igym_core.server.outbox``): a client whose
    socket is still busy with the previous frame misses this one (``frames_dropped``, recorded in the
    episode summary) and gets a keyframe next, so the game never waits for anyone's network.

Stepping first, then each part for all games
    A ticker reads the inputs and steps the env of every game of its group first; then it writes
    the step records of all of them, renders all, and encodes all their frames (``_FINISH``). A
    game's step waits only for the steps of the games before it in the group, not for their
    drawing, records and frames, and each part's code runs for all the games in a row, with warm
    caches. Measured at 100 games with alternating runs of the code before and after: stepping
    first halved the tick lateness p50 and took p99 from 6-12 ms to 3-6 ms on a slow day
    (``bench/server_tick.py``); running each later part for all games in a row then cut the CPU
    per game-tick in process by about a seventh (68.9-77.4 µs vs 80.9-86.2 µs; virtual clock, no
    sockets). Both together: 5-25 % less CPU in the benchmark, whose figures move with the VM's
    speed.

Sending after the group
    A ticker steps, renders and encodes all its games first and then writes their frames to the
    sockets one after another. Each socket write is a system call whose kernel work (on loopback,
    the receiving side's too) evicts the interpreter's caches; interleaved with the games, it made
    every game's Python code run cold. Measured with ``bench/server_tick.py`` (100 games,
    alternating runs): about a fifth less CPU per game-tick. Frames leave at most the group's own
    tick time later (about 1 ms for 12 games).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import numbers
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import structlog

from igym_core.builtin.rtt_echo import RttEcho
from igym_core.data.recorder import iso_utc as _iso
from igym_core.errors import EnvContractError
from igym_core.plugins.markers import hookimpl
from igym_core.runtime.histogram import LatencyHistogram
from igym_core.runtime.interface import (
    Continuation,
    GameHandle,
    GameHost,
    GameInfo,
    PreparedGame,
    Runtime,
    RuntimeMessage,
    Seat,
)
from igym_core.session.saving import SAVING_MESSAGE
from igym_core.tasks import BackgroundTasks

__all__ = ["ServerGame", "ServerRuntime", "TickScheduler"]

log = structlog.get_logger(__name__)

_ENV_CPU_EVERY = 8
_GAME_SERIAL = itertools.count()

# Frames are msgpack maps of str, int, float, bool, bytes, lists and maps; msgspec writes them byte
# for byte as msgpack.packb(use_bin_type=True) does, at a third of the cost.
_pack = msgspec.msgpack.Encoder().encode


@hookimpl(trylast=True)
def igym_register_runtimes() -> list[type[Runtime]]:
    return [ServerRuntime]


class TickStats:
    """Process-wide tick figures (what ``/stats`` and the benchmark report), in constant memory."""

    def __init__(self) -> None:
        self.lateness = LatencyHistogram()
        """How late each tick began after its deadline (ms)."""
        self.ticks = 0
        self.ticks_skipped = 0
        self.frames_sent = 0
        self.frames_dropped = 0
        self.bytes_sent = 0
        self.env_s = 0.0
        """Wall time in env.step and the renderer (all ticks)."""
        self.env_ticks = 0
        self.env_cpu_s = 0.0
        """CPU time in env.step and the renderer, measured at one tick in ``_ENV_CPU_EVERY``."""
        self.env_cpu_samples = 0
        self.tick_cpu_s = 0.0
        """CPU time of the main thread spent inside tickers (stepping, rendering, sending games)."""

    def add_lateness(self, value_ms: float) -> None:
        self.lateness.add(value_ms)

    def summary(self) -> dict[str, Any]:
        """The figures so far; the same work however long the server has run."""
        return {
            "ticks": self.ticks,
            "ticks_skipped": self.ticks_skipped,
            "frames_sent": self.frames_sent,
            "frames_dropped": self.frames_dropped,
            "bytes_per_frame": round(self.bytes_sent / self.frames_sent, 1) if self.frames_sent else None,
            # p50/p99 to within 0.02 ms or 2 %, rounded up; "histogram" (bucket upper bound in ms ->
            # count) lets a caller summarise a window: igym_core.runtime.histogram.quantiles_between.
            "lateness_ms": {**self.lateness.summary(), "histogram": self.lateness.counts()},
            "env_us_per_tick": round(self.env_s / self.env_ticks * 1e6, 1) if self.env_ticks else None,
            "env_s": round(self.env_s, 6),
            "env_ticks": self.env_ticks,
            "env_cpu_us_per_tick": round(self.env_cpu_s / self.env_cpu_samples * 1e6, 1)
            if self.env_cpu_samples
            else None,
            "env_cpu_s": round(self.env_cpu_s, 6),
            "env_cpu_samples": self.env_cpu_samples,
            "tick_cpu_s": round(self.tick_cpu_s, 6),
        }


def _quantile(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


class _Ticker:
    """Ticks a set of games at one rate and phase.

    A timer callback rather than a task: each wake-up is one ``loop.call_at`` handle, without the
    future, task step and running-loop look-up that ``await asyncio.sleep()`` adds (the look-up is
    a ``getpid`` system call on Python 3.11), 120 times a second with the default 4 groups at 30 fps.
    """

    def __init__(self, scheduler: TickScheduler, period: float, offset: float) -> None:
        self.scheduler = scheduler
        self.period = period
        self.offset = offset
        self.games: list[ServerGame] = []
        self.handle: asyncio.TimerHandle | None = None
        self._loop: Any = None
        self._k = 0

    def start(self) -> None:
        if self.handle is None:
            loop = self._loop = self.scheduler.clock()
            base = self.scheduler.epoch + self.offset
            self._k = math.ceil((loop.time() - base) / self.period)
            self.handle = loop.call_at(base + self._k * self.period, self._run)

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        stats = self.scheduler.stats
        period = self.period
        deadline = self.scheduler.epoch + self.offset + self._k * period
        late = loop.time() - deadline
        if late < 0:  # a timer that fired before its deadline (see _LoopClock): wait for it
            self.handle = loop.call_at(deadline, self._run)
            return
        if late >= period:
            missed = int(late // period)
            self._k += missed
            deadline += missed * period
            stats.ticks_skipped += missed * len(self.games)
        cpu_started = time.thread_time()
        games = tuple(self.games)
        outgoing: list[tuple[Any, bytes, _Player]] = []
        later: list[Callable[[], None]] = []
        try:
            self.scheduler.outgoing = outgoing
            self.scheduler.later = later
            if self.scheduler.batched_games:
                try:
                    _act_batched(games)
                except Exception:  # each bot then asks its own policy
                    log.exception("batched_act_failed")
            # Every game's inputs and env step first, then every game's records, render and frame:
            # a game's step waits only for the steps of the games before it in the group, not for
            # their rendering and encoding, and each part's code runs for all games in a row.
            stepped: list[ServerGame] = []
            for game in games:
                lateness_ms = (loop.time() - deadline) * 1000
                stats.add_lateness(lateness_ms)
                stats.ticks += 1
                try:
                    if game.tick_step(lateness_ms):
                        stepped.append(game)
                except Exception:
                    _failed(game)
            for part in _FINISH:
                finished: list[ServerGame] = []
                for game in stepped:
                    try:
                        part(game)
                        finished.append(game)
                    except Exception:
                        _failed(game)
                stepped = finished
        finally:  # whatever happened to one game, the others keep their ticks
            self.scheduler.outgoing = None
            self.scheduler.later = None
            for sink, data, player in outgoing:
                _deliver(stats, sink, data, player)
            for send in later:  # round-trip probes: never ahead of a frame in a socket's buffer
                try:
                    send()
                except Exception:
                    log.exception("probe_failed")
            stats.tick_cpu_s += time.thread_time() - cpu_started
            self._k += 1
            if self.games:
                self.handle = loop.call_at(self.scheduler.epoch + self.offset + self._k * period, self._run)
            else:
                self.handle = None


def _failed(game: ServerGame) -> None:
    """A game whose tick raised: logged, and the game ends (the others keep their ticks)."""
    log.exception("game_tick_failed", game_id=game.info.game_id, error=str(sys.exc_info()[1]))
    try:
        game.fail()
    except Exception:
        log.exception("game_fail_failed", game_id=game.info.game_id)


def _deliver(stats: TickStats, sink: Any, data: bytes, player: _Player) -> None:
    """Offer one frame to one player's socket; a frame the socket cannot take now is dropped."""
    if sink.offer(data):
        player.need_key = False
        stats.frames_sent += 1
        stats.bytes_sent += len(data)
    else:
        player.need_key = True
        player.dropped += 1
        stats.frames_dropped += 1


def _act_batched(games: Sequence[ServerGame]) -> None:
    """Evaluate, in one call per batcher, every batched bot of ``games`` that acts at this tick.

    Games in ticker order (start order), seats in env order: a deterministic order, so seeded
    sampling reproduces. The actions wait in each bot's ``pending`` for its game's step. If a
    batcher fails, its bots are left without a pending action and each asks its own policy.
    """
    groups: dict[int, tuple[Any, list[Any], list[Any], list[_BotSeat]]] = {}
    for game in games:
        if game.batched_bots and game.phase == "playing":
            for agent, bot in game.due_batched():
                group = groups.get(id(bot.batcher))
                if group is None:
                    group = groups[id(bot.batcher)] = (bot.batcher, [], [], [])
                group[1].append(bot.policy)
                group[2].append(game.obs.get(agent))
                group[3].append(bot)
    for batcher, policies, observations, bots in groups.values():
        try:
            actions = list(batcher.act_batch(policies, observations))
            if len(actions) != len(bots):
                raise ValueError(f"act_batch returned {len(actions)} actions for {len(bots)} policies")
        except Exception:
            log.exception("batched_act_failed", batcher=type(batcher).__qualname__, bots=len(bots))
            continue
        for bot, action in zip(bots, actions, strict=True):
            bot.pending = action


class _LoopClock:
    """Deadlines and lateness on ``time.monotonic()``, timers on the event loop.

    uvloop's ``loop.time()`` counts whole milliseconds of a clock that can lag ``time.monotonic()``
    (the same clock at full resolution), and it rounds each delay to a whole millisecond, so a timer
    set for a deadline can fire up to about a millisecond before it, and lateness read from
    ``loop.time()`` would be up to a millisecond too small. Here lateness is measured on
    ``time.monotonic()``; uvloop delays are rounded up to the next millisecond, and a ticker whose
    timer still fires early waits again (``_Ticker._run``), so no tick runs before its deadline.
    asyncio's own loop keeps time on ``time.monotonic()`` and takes deadlines as they are.
    """

    __slots__ = ("_whole_ms", "loop")

    time = staticmethod(time.monotonic)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._whole_ms = not isinstance(loop, asyncio.BaseEventLoop)

    def call_at(self, when: float, callback: Any) -> asyncio.TimerHandle:
        loop = self.loop
        if self._whole_ms:
            return loop.call_later(math.ceil((when - time.monotonic()) * 1000) / 1000, callback)
        return loop.call_at(when, callback)


class TickScheduler:
    """Assigns games to phase-shifted tickers (see the module docstring)."""

    def __init__(self, groups: int) -> None:
        self.groups = max(0, groups)
        #: What keeps time and schedules the tickers: None for ``time.monotonic()`` and the running
        #: event loop's timers, or any object with ``time()`` and ``call_at(when, callback)`` (a
        #: test's virtual clock).
        self.time_source: Any = None
        #: How many running games have bots whose policies evaluate in batches.
        self.batched_games = 0
        #: While a ticker runs: the frames its games produced, written to the sockets once every
        #: game of the group has ticked (see ``_Ticker._run``).
        self.outgoing: list[tuple[Any, bytes, _Player]] | None = None
        #: While a ticker runs: what to send once the group's frames are written (RTT probes).
        self.later: list[Callable[[], None]] | None = None
        self.stats = TickStats()
        self.epoch = 0.0
        self._loop_clock: _LoopClock | None = None
        self._tickers: dict[tuple[int, int], _Ticker] = {}
        self._solo: dict[str, _Ticker] = {}
        self._count = 0

    def clock(self) -> Any:
        if self.time_source is not None:
            return self.time_source
        if self._loop_clock is None or self._loop_clock.loop is not asyncio.get_running_loop():
            self._loop_clock = _LoopClock(asyncio.get_running_loop())
        return self._loop_clock

    def add(self, game: ServerGame, fps: int) -> None:
        loop = self.clock()
        if not self.epoch:
            self.epoch = loop.time()
        period = 1.0 / fps
        self._count += 1
        if self.groups == 0:
            # A ticker of its own, at a phase spread by the golden ratio (even for any count).
            offset = ((self._count * 0.6180339887) % 1.0) * period
            ticker = _Ticker(self, period, offset)
            self._solo[game.info.game_id] = ticker
        else:
            for index in range(self.groups):
                self._tickers.setdefault((fps, index), _Ticker(self, period, index * period / self.groups))
            ticker = min(
                (self._tickers[(fps, index)] for index in range(self.groups)), key=lambda t: len(t.games)
            )
        ticker.games.append(game)
        game.ticker = ticker
        if game.batched_bots:
            self.batched_games += 1
        ticker.start()

    def remove(self, game: ServerGame) -> None:
        ticker = game.ticker
        if ticker is not None and game in ticker.games:
            ticker.games.remove(game)
            if game.batched_bots:
                self.batched_games -= 1
        self._solo.pop(game.info.game_id, None)
        game.ticker = None

    async def stop(self) -> None:
        for ticker in [*self._tickers.values(), *self._solo.values()]:
            ticker.games.clear()
            ticker.stop()


class ServerRuntime(Runtime):
    """Steps games on the server (see the module docstring)."""

    kind = "server"
    messages = (RttEcho,)

    def __init__(self, host: GameHost) -> None:
        super().__init__(host)
        self.scheduler = TickScheduler(host.settings.tick_groups)
        self.games: dict[str, ServerGame] = {}
        #: True while the study's records cannot be stored and too many wait: games stay paused.
        self.holding = False

    def create_game(
        self,
        *,
        game_id: str,
        scene: Any,
        prepared: PreparedGame,
        instance: int,
        seats: Sequence[Seat],
        continues: Continuation | None = None,
    ) -> ServerGame:
        info = GameInfo(
            game_id=game_id,
            scene_id=scene.scene_id,
            instance=instance,
            seats=tuple(seats),
            experiment_id=self.host.experiment_id,
        )
        game = ServerGame(self, info, prepared, continues=continues)
        self.games[game_id] = game
        game.begin()
        if self.holding:
            game.pause(SAVING)
        return game

    def hold_for_saving(self, hold: bool) -> None:
        """Pause every game while records cannot be stored (reason ``saving``), resume them after."""
        self.holding = hold
        for game in list(self.games.values()):
            if hold:
                game.pause(SAVING)
            else:
                game.unpause(SAVING)

    def forget(self, game: ServerGame) -> None:
        self.scheduler.remove(game)
        self.games.pop(game.info.game_id, None)

    async def stop(self) -> None:
        await self.scheduler.stop()

    def stats(self) -> dict[str, Any]:
        return {
            "games": len(self.games),
            "tick_groups": self.scheduler.groups,
            **self.scheduler.stats.summary(),
        }


class _Player:
    __slots__ = (
        "absent_since",
        "agent",
        "connection_id",
        "dropped",
        "held",
        "hud_text",
        "left",
        "need_key",
        "participant_id",
        "presses",
        "probes",
        "ready",
        "rtt_ms",
    )

    def __init__(self, participant_id: str, agent: str) -> None:
        self.participant_id = participant_id
        self.agent = agent
        self.held: tuple[str, ...] = ()
        self.presses: deque[str] = deque(maxlen=64)
        self.ready = False
        self.need_key = True
        self.connection_id: int | None = None
        self.dropped = 0
        #: Since when (monotonic) the player has had no socket, or None while connected.
        self.absent_since: float | None = None
        #: Away past the grace period (a bot plays the seat, or the game ended).
        self.left = False
        #: Round-trip-time probes in flight: number -> monotonic send time.
        self.probes: dict[int, float] = {}
        #: Round-trip times measured this episode, in ms.
        self.rtt_ms: list[float] = []
        #: The HUD text this player last got (multiplayer games: each player has their own).
        self.hud_text: str | None = None


_NO_ACTION = object()


class _BotSeat:
    __slots__ = ("act_every", "action_ok", "batcher", "between", "last_action", "pending", "policy")

    def __init__(self, policy: Any, act_every: int, between: str, space: Any) -> None:
        from igym_core.policies.interface import batcher_of

        self.policy = policy
        #: Whether an action the policy chose is in the seat's action space.
        self.action_ok = _action_check(space)
        self.act_every = act_every
        self.between = between
        self.last_action: Any = None
        #: The policy's shared batcher, if it evaluates in batches across games (see _Ticker).
        self.batcher = batcher_of(policy)
        #: The action the ticker's batched call chose for this tick (``_NO_ACTION`` if none).
        self.pending: Any = _NO_ACTION


def _action_check(space: Any) -> Callable[[Any], bool]:
    """A test for actions in ``space``: inline for a Discrete space (a bot acts at every tick), the
    space's own ``contains`` otherwise."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        low, high = int(space.start), int(space.start) + int(space.n)

        def discrete(action: Any) -> bool:
            if isinstance(action, numbers.Integral) and not isinstance(action, bool):
                return low <= action < high
            return _contains(space, action)

        return discrete
    return functools.partial(_contains, space)


def _contains(space: Any, action: Any) -> bool:
    try:
        return bool(space.contains(action))
    except Exception:
        return False


class ServerGame(GameHandle):
    """One game: its env, players, bots, episode loop, records and frames."""

    def __init__(
        self, runtime: ServerRuntime, info: GameInfo, prepared: Any, *, continues: Continuation | None = None
    ) -> None:
        from igym_core.rendering.delta import DeltaEncoder

        self.continues = continues

        self.runtime = runtime
        self.host = runtime.host
        self.info = info
        self.prepared = prepared
        self.scene = prepared.scene
        self.ticker: _Ticker | None = None
        self.env, self.raw_env = prepared.make_env()
        self.renderer = prepared.make_renderer()
        self.encoder = DeltaEncoder()
        self.table = prepared.action_table
        self.players: dict[str, _Player] = {
            s.participant_id: _Player(s.participant_id, s.agent) for s in info.seats if s.participant_id
        }
        self.agent_names = {a: str(a) for a in prepared.agents}
        self.agent_of_name = prepared.agent_by_name
        self.bots: dict[Any, _BotSeat] = {}
        for name, (_config, bot) in prepared.bots.items():
            agent = self.agent_of_name[name]
            self.bots[agent] = _BotSeat(
                prepared.load_policy(name, self.env), bot.act_every, bot.between, self.env.action_space(agent)
            )
        for seat in info.seats:  # a human seat left to a bot (a group that stays together, a member gone)
            if seat.participant_id is None and seat.agent in prepared.human_seats:
                agent = self.agent_of_name[seat.agent]
                self.bots[agent] = _BotSeat(
                    prepared.load_partner_policy(seat.agent, self.env),
                    1,
                    "repeat",
                    self.env.action_space(agent),
                )
        self.multiplayer = len(prepared.human_seats) > 1
        self._shared_delta: tuple[int, bytes] | None = None
        # The bots that would take a seat whose player leaves: loaded now, not in a tick.
        self._partner_policies: dict[str, Any] = {}
        if self.multiplayer and self.scene.on_partner_left == "bot":
            for player in self.players.values():
                self._partner_policies[player.agent] = prepared.load_partner_policy(player.agent, self.env)
        self.notice = ""
        self._probe_n = 0
        self._next_probe = 0.0
        order = {agent: index for index, agent in enumerate(prepared.agents)}
        self.batched_bots = sorted(
            ((agent, bot) for agent, bot in self.bots.items() if bot.batcher is not None),
            key=lambda item: order.get(item[0], len(order)),
        )
        self.human_agents = {self.agent_of_name[p.agent]: p for p in self.players.values()}
        self.participant_ids = [p.participant_id for p in self.players.values()]
        # The ids every record of this game starts with; built once (records are written every tick).
        self._ids_row = {
            "game_id": info.game_id,
            "scene_id": info.scene_id,
            "instance": info.instance,
            "participant_ids": self.participant_ids,
        }
        self._held_mode = self.scene.input_mode == "held"
        self._hud_key: float | None = None
        self._hud_default = ""
        self._hud_failed = False
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
        self.hud_text: str | None = None
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
        self.env_cost_s = 0.0
        self.env_cost_ticks = 0  # the first 100 steps' wall time, for env_slow
        # Which ticks sample the env's CPU time: games spread over the _ENV_CPU_EVERY phases, so
        # that a group's samples do not all fall on the same tick.
        self._cpu_phase = next(_GAME_SERIAL) % _ENV_CPU_EVERY
        self.ended = False
        self.end_message = ""
        self._period = 1.0 / self.scene.fps
        self._max_steps = self.scene.max_steps
        self._record_obs = self.scene.record_observations
        self._stepped: tuple[Any, ...] | None = None  # tick_step's results, for the parts after it
        self._rendered: Any = None  # tick_render's, for tick_send

    # --- lifecycle ---------------------------------------------------------------------------
    def begin(self) -> None:
        from igym_core.session.games import seats_description

        self.host.record(
            "games",
            {
                **self._ids(),
                "event": "started",
                "seats": seats_description(self.info.seats),
                "fps": self.scene.fps,
                "num_episodes": self.scene.num_episodes,
                "runtime": "server",
                **(
                    {
                        "continues": {
                            "game_id": self.continues.game_id,
                            "from_episode": self.continues.from_episode,
                        }
                    }
                    if self.continues is not None
                    else {}
                ),
            },
        )
        log.info(
            "game_started",
            game_id=self.info.game_id,
            scene_id=self.info.scene_id,
            participants=self.participant_ids,
        )
        self._notify("notify_game_started", self.info)
        self.runtime.scheduler.add(self, self.scene.fps)

    def _ids(self) -> dict[str, Any]:
        return self._ids_row

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

    # --- GameHandle --------------------------------------------------------------------------
    def player_ready(self, participant_id: str) -> None:
        player = self.players.get(participant_id)
        if player is not None:
            player.ready = True
            player.need_key = True

    def player_input(
        self, participant_id: str, *, keys: Sequence[str] | None, press: Sequence[str] | None
    ) -> None:
        player = self.players.get(participant_id)
        if player is None:
            return
        if keys is not None:
            player.held = self.table.listened(keys)
        elif press and self.phase == "playing":  # a press in a countdown is not a move of the episode
            player.presses.extend(self.table.listened(press, unique=False))

    def player_connected(self, participant_id: str) -> None:
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

    def status_message(self, participant_id: str) -> dict[str, Any]:
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
        status = {
            "type": "game_status",
            "game_id": self.info.game_id,
            "phase": self.phase,
            "episode": max(self.episode, self._first_episode),
            "num_episodes": self.scene.num_episodes,
            "seat": player.agent if player else None,
            "message": message,
            "countdown_ms": countdown_ms,
        }
        if self.phase == "paused":
            status["pause_reason"] = SAVING if SAVING in self.pause_reasons else NOBODY_CONNECTED
        if self.multiplayer:
            status["players"] = self._players_view(participant_id)
            status["notice"] = "" if self.phase == "ended" else self._notice_for(participant_id)
        return status

    def _players_view(self, participant_id: str) -> list[dict[str, Any]]:
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

    def _notice_for(self, participant_id: str) -> str:
        others = [p for pid, p in self.players.items() if pid != participant_id]
        if any(p.left for p in others):
            return f"{self.scene.partner_left_message} A computer player has taken their seat."
        if any(p.absent_since is not None for p in others):
            return "Your partner's connection dropped. The game goes on while they reconnect."
        return ""

    # --- ticking -----------------------------------------------------------------------------
    def tick_step(self, lateness_ms: float) -> bool:
        """The first part of a tick: read the inputs, choose the actions and step the env (or, when
        not playing, everything the tick does). True when the other parts must follow, in the order
        of ``_FINISH``: a ticker steps all its games first and then runs each part for all of them
        (see ``_Ticker._run``)."""
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

    def due_batched(self) -> list[tuple[Any, _BotSeat]]:
        """The batched bots that choose a new action at this tick's step, in env agent order."""
        step = self.step
        live = self.env.agents
        return [
            (agent, bot)
            for agent, bot in self.batched_bots
            if agent in live and (step % bot.act_every == 0 or bot.last_action is None)
        ]

    def _step_env(self) -> None:
        # The hot path of the server (with the parts after it): runs for every game at every tick.
        # Locals over attribute look-ups, one clock read per purpose, and nothing built that the tick
        # does not send or record.
        env = self.env
        table = self.table
        human_agents = self.human_agents
        actions: dict[Any, Any] = {}
        sources: dict[Any, str] = {}
        held_by_agent: dict[Any, tuple[str, ...]] = {}
        step = self.step
        for agent in env.agents:
            player = human_agents.get(agent)
            if player is not None:
                if player.absent_since is not None:  # disconnected, within the grace period
                    held_by_agent[agent] = ()
                    actions[agent] = table.default
                    sources[agent] = "absent"
                    continue
                if self._held_mode:
                    held = player.held
                else:
                    held = (player.presses.popleft(),) if player.presses else ()
                action, mapped = table.lookup(held)
                held_by_agent[agent] = held
                actions[agent] = action
                sources[agent] = "human" if mapped else "default"
                continue
            bot = self.bots.get(agent)
            if bot is None:
                actions[agent] = table.default
                sources[agent] = "default"
            elif step % bot.act_every == 0 or bot.last_action is None:
                pending = bot.pending
                if pending is not _NO_ACTION:  # chosen by the ticker's batched call
                    bot.pending = _NO_ACTION
                    bot.last_action = pending
                else:
                    bot.last_action = bot.policy.act(self.obs.get(agent))
                if not bot.action_ok(bot.last_action):
                    raise EnvContractError(
                        f"The policy of {self.agent_names[agent]!r} chose {bot.last_action!r}, which is not "
                        f"in the seat's action space {self.env.action_space(agent)}. Fix the policy."
                    )
                actions[agent] = bot.last_action
                sources[agent] = "bot"
            elif bot.between == "repeat":
                actions[agent] = bot.last_action
                sources[agent] = "bot_repeat"
            else:
                actions[agent] = table.default
                sources[agent] = "default"
        # The env's share of the CPU, sampled at one tick in _ENV_CPU_EVERY (a thread CPU clock read
        # is a system call); wall time around step and render at every tick (for env_slow).
        sampled = not (self.tick_count + self._cpu_phase) % _ENV_CPU_EVERY
        if sampled:
            cpu_started = time.thread_time()
        started = time.perf_counter()
        obs, rewards, terminations, truncations, infos = env.step(actions)
        stepped = time.perf_counter()
        env_cpu = time.thread_time() - cpu_started if sampled else None
        self.step = step + 1
        # For tick_record, tick_render and tick_send, which unpack it in this order.
        self._stepped = (
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
        actions, sources, held, _, rewards, terminations, truncations, infos, _, _, t_server_ms = stepped
        human_agents = self.human_agents
        step = self.step
        record_obs = self._record_obs
        record = self.host.record
        ids = self._ids_row
        episode = self.episode
        tick = self.tick_count
        returns = self.returns
        for agent, action in actions.items():
            reward = _plain(rewards.get(agent, 0.0))
            returns[agent] = returns.get(agent, 0.0) + (reward or 0.0)
            player = human_agents.get(agent)
            row = {
                **ids,
                "episode": episode,
                "step": step,
                "tick": tick,
                "agent": self.agent_names[agent],
                "seat": "human" if player else "bot",
                "participant_id": player.participant_id if player else None,
                "action": _plain(action),
                "action_source": sources[agent],
                "keys_held": list(held[agent]) if player else None,
                "reward": reward,
                "terminated": bool(terminations.get(agent, False)),
                "truncated": bool(truncations.get(agent, False)),
                "info": _flatten(infos.get(agent)) if infos else None,
                "t_server_ms": t_server_ms,
            }
            if record_obs:
                row["observation"] = _plain(self.obs.get(agent))
            record("steps", row)
        self.last_rewards = rewards  # made plain only if a custom HUD asks for them

    def tick_render(self) -> None:
        """Render the env after the step (its cost counts as the env's, with the step's)."""
        stepped = self._stepped
        assert stepped is not None
        *_, step_cost, env_cpu, _ = stepped
        if env_cpu is not None:
            cpu_started = time.thread_time()
        rendered_start = time.perf_counter()
        rendered = self.renderer.render(self.raw_env)
        rendered_end = time.perf_counter()
        cost = step_cost + (rendered_end - rendered_start)
        stats = self.runtime.scheduler.stats
        stats.env_s += cost
        stats.env_ticks += 1
        if env_cpu is not None:
            stats.env_cpu_s += env_cpu + time.thread_time() - cpu_started
            stats.env_cpu_samples += 1
        if self.env_cost_ticks < 100:
            self.env_cost_s += cost
            self.env_cost_ticks += 1
            if self.env_cost_ticks == 100:
                self._check_cost()
        self._rendered = rendered

    def tick_send(self) -> None:
        """Send the frame of the step and end the episode if it is over."""
        stepped = self._stepped
        assert stepped is not None
        self._stepped = None
        actions, _, _, obs, _, terminations, truncations, _, _, _, t_server_ms = stepped
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

    # --- players coming and going ----------------------------------------------------------
    def _check_partners(self, mono: float) -> None:
        grace = self.scene.reconnect_grace_s
        for player in self.players.values():
            if not player.left and player.absent_since is not None and mono - player.absent_since >= grace:
                self._partner_left(player)
                if self.ended:
                    return

    def _partner_left(self, player: _Player) -> None:
        player.left = True
        outcome = self.scene.on_partner_left
        log.info(
            "partner_left", game_id=self.info.game_id, participant_id=player.participant_id, outcome=outcome
        )
        self.host.record(
            "games",
            {
                **self._ids(),
                "event": "partner_left",
                "left": player.participant_id,
                "seat": player.agent,
                "outcome": outcome,
            },
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
        bot = _BotSeat(policy, 1, "repeat", self.env.action_space(agent))
        reset = getattr(bot.policy, "reset", None)
        if reset is not None:
            from igym_core.envs import agent_seed

            reset(seed=agent_seed(self.seed, player.agent))
        self.bots[agent] = bot
        self._broadcast_status()

    def _seat_returned(self, player: _Player) -> None:
        agent = self.agent_of_name[player.agent]
        self.bots.pop(agent, None)
        self.human_agents[agent] = player
        player.left = False
        self.host.record(
            "games",
            {
                **self._ids(),
                "event": "seat_returned",
                "participant_id": player.participant_id,
                "seat": player.agent,
            },
        )
        self.host.player_returned(self.info, player.participant_id)

    def _presence_changed(self) -> None:
        if self.multiplayer and not self.ended:
            self._broadcast_status()

    # --- round-trip times ------------------------------------------------------------------
    def _probe(self, mono: float) -> None:
        self._next_probe = mono + self.scene.rtt_interval_s
        self._probe_n += 1
        n = self._probe_n
        data = _pack(
            {"type": "rtt_probe", "game_id": self.info.game_id, "n": n, "t": round(time.time() * 1000, 1)}
        )
        later = self.runtime.scheduler.later
        if later is not None:  # inside a ticker: after the group's frames, which matter more
            later.append(lambda: self._send_probe(n, data))
        else:
            self._send_probe(n, data)

    def _send_probe(self, n: int, data: bytes) -> None:
        frame_sink = self.host.frame_sink
        sent = time.monotonic()
        for player in self.players.values():
            sink = frame_sink(player.participant_id)
            if sink is not None and sink.offer(data):
                probes = player.probes
                probes[n] = sent
                if len(probes) > 8:  # unanswered ones are forgotten
                    del probes[min(probes)]

    def player_message(self, participant_id: str, message: RuntimeMessage) -> None:
        if isinstance(message, RttEcho):
            self.player_rtt_echo(participant_id, message.n)
        else:
            super().player_message(participant_id, message)

    def player_rtt_echo(self, participant_id: str, n: int) -> None:
        player = self.players.get(participant_id)
        if player is None:
            return
        sent = player.probes.pop(n, None)
        if sent is not None:
            player.rtt_ms.append((time.monotonic() - sent) * 1000)

    def _check_cost(self) -> None:
        """After 100 steps (once per game): warn if step + render take a large share of the tick."""
        mean = self.env_cost_s / self.env_cost_ticks
        if mean > 0.25 * self._period:
            log.warning(
                "env_slow",
                game_id=self.info.game_id,
                step_render_ms=round(mean * 1000, 2),
                period_ms=round(self._period * 1000, 1),
                advice="env.step + render take a large share of each tick; lower fps or speed up the env",
            )

    # --- pauses: nobody connected, or records that cannot be stored -------------------------
    def _pause(self) -> None:
        """No player is connected: stop ticking until one returns (no steps, no records, no CPU).

        A game whose players have all gone would otherwise play on with no input, recording whole
        episodes nobody saw, and cost as much as a game someone plays. The game leaves its ticker;
        a timer ends it as abandoned after the scene's ``abandon_after_s``; a returning player
        resumes it (:meth:`unpause`) with a countdown.
        """
        self.pause(NOBODY_CONNECTED)

    def pause(self, reason: str) -> None:
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
                self.host.record("games", {**self._ids(), "event": "paused", "reason": reason, **self._at()})
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
        self.host.record("games", {**self._ids(), "event": "paused", "reason": reason, **self._at()})
        log.info(
            "game_paused", game_id=self.info.game_id, reason=reason, episode=self.episode, step=self.step
        )
        if reason == SAVING:  # its players are there: they see why the game stopped
            self._broadcast_status()

    def _count_pause(self, reason: str) -> None:
        self.episode_pause_reasons[reason] = self.episode_pause_reasons.get(reason, 0) + 1

    def _at(self) -> dict[str, Any]:
        return {"episode": self.episode, "step": self.step}

    def _paused_for(self) -> float:
        """Seconds of the current pause so far (0 when not paused)."""
        if self.paused_since is None:
            return 0.0
        return max(0.0, self.runtime.scheduler.clock().time() - self.paused_since)

    def unpause(self, reason: str) -> None:
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

    def _resume(self, reason: str) -> None:
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
            "games",
            {
                **self._ids(),
                "event": "resumed",
                "reason": reason,
                "episode": self.episode,
                "step": self.step,
                "paused_ms": round(paused_s * 1000),
            },
        )
        log.info("game_resumed", game_id=self.info.game_id, reason=reason, paused_ms=round(paused_s * 1000))
        self.runtime.scheduler.add(self, self.scene.fps)
        self._broadcast_status()

    def _abandon(self) -> None:
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

    # --- frames ------------------------------------------------------------------------------
    def _player_frame(
        self, player: _Player, base: dict[str, Any], rendered: Any, delta: Any, image: Any
    ) -> bytes | None:
        """The frame for one player of a multiplayer game (their HUD), or None if nothing is due."""
        changed = False
        if rendered is not None:
            hud = self._hud(player)
            changed = hud != player.hud_text
            player.hud_text = hud
        if player.need_key:
            message = {**base, "key": True, "hud": player.hud_text or "", "add": self.encoder.keyframe()}
        elif rendered is None:
            return None
        else:
            shared = self._shared_delta
            if not changed and shared is not None and shared[0] == self.tick_count:
                return shared[1]
            message = {**base, "key": False}
            if delta is not None:
                message.update(delta)
            if changed:
                message["hud"] = player.hud_text
        if image is not None:
            message["image"] = image
        data = _pack(message)
        if not player.need_key and not changed:
            self._shared_delta = (self.tick_count, data)  # the same bytes for every unchanged HUD
        return data

    def _hud(self, human: _Player | None) -> str:
        """The HUD text ``human`` sees (in a multiplayer game each player gets their own)."""
        hud = self.prepared.hud
        if hud is None:
            if human is None:
                return ""
            score = self.returns.get(self.agent_of_name[human.agent], 0.0)
            if self.multiplayer:
                return f"Your score {score:g}"  # (the page shows the episode itself)
            key = score
            if key != self._hud_key:  # the text changes only with the score; formatting it costs
                self._hud_key = key
                self._hud_default = f"Score {score:g}"  # (the page shows the episode itself)
            return self._hud_default
        from igym_core.builtin.scene_gym import HudView

        view = HudView(
            episode=self.episode,
            num_episodes=self.scene.num_episodes,
            step=self.step,
            max_steps=self.scene.max_steps,
            seat=human.agent if human else "",
            returns={self.agent_names[a]: v for a, v in self.returns.items()},
            rewards={self.agent_names.get(a, str(a)): _plain(v) for a, v in self.last_rewards.items()},
            env=self.raw_env,
        )
        try:
            return str(hud(view))
        except Exception:
            if not self._hud_failed:  # once per game: it would fail again at every tick
                self._hud_failed = True
                log.exception("hud_failed", game_id=self.info.game_id, note="logged once per game")
            return ""

    def _send_frames(self, rendered: Any, t_ms: float | None = None) -> bool:
        """Render deltas (``rendered``) or only keyframes (``rendered=None``) to every player.

        Returns whether any player is connected. The frame for players who got the previous one
        and the keyframe for the others are each encoded once, and only if someone needs them.
        ``t_ms``: the frame's server time (the step's, when called after one); now if None.
        """
        scheduler = self.runtime.scheduler
        stats = scheduler.stats
        frame_sink = self.host.frame_sink
        base = {
            "type": "frame",
            "game_id": self.info.game_id,
            "tick": self.tick_count,
            "episode": self.episode,
            "step": self.step,
            "t": round(time.time() * 1000, 1) if t_ms is None else t_ms,
        }
        image = None
        delta = None
        hud_changed = False
        delta_bytes = None
        key_bytes = None
        connected = False
        multiplayer = self.multiplayer
        if rendered is not None:
            image = rendered.image_png
            if not multiplayer:
                hud = self._hud(next(iter(self.players.values()), None))
                hud_changed = hud != self.hud_text
                self.hud_text = hud
            if rendered.objects is not None:
                delta = self.encoder.update_fields(rendered.objects)
        for player in self.players.values():
            sink = frame_sink(player.participant_id)
            if sink is None:
                player.need_key = True
                if player.absent_since is None:
                    player.absent_since = time.monotonic()
                    self._presence_changed()
                continue
            if player.absent_since is not None:
                player.absent_since = None
                self._presence_changed()
            connected = True
            if sink.connection_id != player.connection_id:
                player.connection_id = sink.connection_id
                player.need_key = True
            if not player.ready:
                continue
            if multiplayer:  # each player's own HUD: frames with a HUD change are theirs alone
                data = self._player_frame(player, base, rendered, delta, image)
                if data is None:
                    continue
            elif player.need_key:
                if key_bytes is None:
                    message = {
                        **base,
                        "key": True,
                        "hud": self.hud_text or "",
                        "add": self.encoder.keyframe(),
                    }
                    if image is not None:
                        message["image"] = image
                    key_bytes = _pack(message)
                data = key_bytes
            elif rendered is None:
                continue
            else:
                if delta_bytes is None:
                    message = {**base, "key": False}
                    if delta is not None:
                        message.update(delta)
                    if hud_changed:
                        message["hud"] = self.hud_text
                    if image is not None:
                        message["image"] = image
                    delta_bytes = _pack(message)
                data = delta_bytes
            outgoing = scheduler.outgoing
            if outgoing is not None:  # inside a ticker: written after every game of the group ticked
                player.need_key = False
                outgoing.append((sink, data, player))
            else:
                _deliver(stats, sink, data, player)
        return connected

    # --- episodes ----------------------------------------------------------------------------
    def _start_episode(self) -> None:
        from igym_core.envs import agent_seed

        self.episode += 1
        self.seed = self.prepared.episode_seed(self.info.instance, self.participant_ids, self.episode)
        self.step = 0
        self.returns = {a: 0.0 for a in self.prepared.agents}
        self.last_rewards = {}
        self.episode_lateness = []
        self.episode_dropped = {p.participant_id: p.dropped for p in self.players.values()}
        for player in self.players.values():
            player.rtt_ms = []
        self.episode_skipped_at_start = self.runtime.scheduler.stats.ticks_skipped
        self.episode_started_wall = time.time()
        self.episode_started_mono = time.monotonic()
        self.episode_paused_s = 0.0
        self.episode_pauses = 0
        self.episode_pause_reasons = {}
        self._episode_open = True  # from here on the episode gets a record, also if the env fails
        self.obs, _infos = self.env.reset(seed=self.seed)
        for agent, bot in self.bots.items():
            bot.last_action = None
            bot.pending = _NO_ACTION
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
        rendered = self.renderer.render(self.raw_env)
        self._broadcast_status()
        self._send_frames(rendered)
        log.info("episode_started", game_id=self.info.game_id, episode=self.episode, seed=self.seed)

    def _end_episode(self, end_reason: str, *, then_continue: bool = True) -> None:
        self._episode_open = False
        duration = time.monotonic() - self.episode_started_mono
        lateness = sorted(self.episode_lateness)
        summary = {
            **self._ids(),
            "episode": self.episode,
            "seed": self.seed,
            "steps": self.step,
            "end_reason": end_reason,
            "returns": {self.agent_names[a]: v for a, v in self.returns.items()},
            "seats": {p.agent: p.participant_id for p in self.players.values()},
            "started_at": _iso(self.episode_started_wall),
            "duration_ms": round(duration * 1000),
            "fps": self.scene.fps,
            "frames_dropped": {
                p.participant_id: p.dropped - self.episode_dropped.get(p.participant_id, 0)
                for p in self.players.values()
            },
            "tick_lateness_ms_p50": _quantile(lateness, 0.5),
            "tick_lateness_ms_p99": _quantile(lateness, 0.99),
            "tick_lateness_ms_max": round(lateness[-1], 3) if lateness else None,
            "rtt_ms": {p.participant_id: _rtt_summary(p.rtt_ms) for p in self.players.values()},
            "paused_ms": round((self.episode_paused_s + self._paused_for()) * 1000),
            "pauses": self.episode_pauses,
            "pause_reasons": dict(self.episode_pause_reasons),
        }
        self.host.record("episodes", summary)
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
        self.host.record(
            "games", {**self._ids(), "event": "ended", "reason": reason, "episodes_played": self.episode}
        )
        log.info("game_ended", game_id=self.info.game_id, reason=reason, episodes=self.episode)
        self._notify("notify_game_ended", self.info, reason)
        self._callback("on_game_end", self.info, reason)
        try:
            self.env.close()
        except Exception:
            log.debug("env_close_failed", game_id=self.info.game_id)
        self.host.game_ended(self.info.game_id, reason)

    def _broadcast_status(self) -> None:
        for pid in self.players:
            _background.spawn(self.host.send(pid, self.status_message(pid)))

    def _notify(self, method: str, *args: Any) -> None:
        try:
            getattr(self.host.plugins, method)(*args)
        except Exception:
            log.exception("game_hook_failed", game_id=self.info.game_id, hook=method)

    def _callback(self, name: str, *args: Any) -> None:
        callback = self.prepared.callbacks.get(name)
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("scene_callback_failed", game_id=self.info.game_id, callback=name)


_background = BackgroundTasks()

#: Why a game pauses (the ``reason`` of its ``paused`` / ``resumed`` records).
NOBODY_CONNECTED = "nobody_connected"
SAVING = "saving"


_PLAIN_TYPES = (bool, int, float, str)  # a tuple: `bool | int | ...` would build a union per call


def _rtt_summary(samples: Sequence[float]) -> dict[str, Any]:
    """Round-trip times of one player in one episode: how many, median, p95 and max (ms)."""
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "median": _quantile(ordered, 0.5),
        "p95": _quantile(ordered, 0.95),
        "max": round(ordered[-1], 3) if ordered else None,
    }


def _plain(value: Any) -> Any:
    """JSON-ready form of an action, reward or observation (numpy → lists and Python numbers)."""
    if value is None or isinstance(value, _PLAIN_TYPES):
        return value
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return repr(value)


def _flatten(info: Any, prefix: str = "") -> dict[str, Any] | None:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``, values made JSON-ready; empty → None."""
    if not info:
        return None
    if not isinstance(info, Mapping):
        return {prefix or "value": _plain(info)}
    out: dict[str, Any] = {}
    for key, value in info.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{name}.") or {})
        else:
            out[name] = _plain(value)
    return out


# The parts of a playing tick after the step, each run for all the games of a ticker in a row.
_FINISH = (ServerGame.tick_record, ServerGame.tick_render, ServerGame.tick_send)
