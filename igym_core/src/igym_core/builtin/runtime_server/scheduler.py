"""Tick scheduling: phase-shifted tickers that step groups of games, and the process's tick figures.

See the package docstring (Timing, Groups, Stepping first, Sending after the group) for why it is
built this way.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from igym_core.builtin.runtime_server.actions import act_batched
from igym_core.builtin.runtime_server.frames import deliver
from igym_core.runtime.histogram import LatencyHistogram

if TYPE_CHECKING:
    from igym_core.builtin.runtime_server.game import ServerGame
    from igym_core.builtin.runtime_server.presence import Player

__all__ = ["TickScheduler", "TickStats", "Ticker"]

log = structlog.get_logger(__name__)


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
        """CPU time in env.step and the renderer, measured at one tick in ``game.ENV_CPU_EVERY``."""
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


class Ticker:
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
        outgoing: list[tuple[Any, bytes, Player]] = []
        later: list[Callable[[], None]] = []
        try:
            self.scheduler.outgoing = outgoing
            self.scheduler.later = later
            if self.scheduler.batched_games:
                try:
                    act_batched(games)
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
            for part in self.scheduler.finish:
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
                deliver(stats, sink, data, player)
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


class _LoopClock:
    """Deadlines and lateness on ``time.monotonic()``, timers on the event loop.

    uvloop's ``loop.time()`` counts whole milliseconds of a clock that can lag ``time.monotonic()``
    (the same clock at full resolution), and it rounds each delay to a whole millisecond, so a timer
    set for a deadline can fire up to about a millisecond before it, and lateness read from
    ``loop.time()`` would be up to a millisecond too small. Here lateness is measured on
    ``time.monotonic()``; uvloop delays are rounded up to the next millisecond, and a ticker whose
    timer still fires early waits again (``Ticker._run``), so no tick runs before its deadline.
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

    def __init__(self, groups: int, finish: Sequence[Callable[[ServerGame], None]]) -> None:
        self.groups = max(0, groups)
        #: The parts of a playing tick after the step, each run for all the games of a ticker in a
        #: row (``ServerGame.FINISH``).
        self.finish = tuple(finish)
        #: What keeps time and schedules the tickers: None for ``time.monotonic()`` and the running
        #: event loop's timers, or any object with ``time()`` and ``call_at(when, callback)`` (a
        #: test's virtual clock).
        self.time_source: Any = None
        #: How many running games have bots whose policies evaluate in batches.
        self.batched_games = 0
        #: While a ticker runs: the frames its games produced, written to the sockets once every
        #: game of the group has ticked (see ``Ticker._run``).
        self.outgoing: list[tuple[Any, bytes, Player]] | None = None
        #: While a ticker runs: what to send once the group's frames are written (RTT probes).
        self.later: list[Callable[[], None]] | None = None
        self.stats = TickStats()
        self.epoch = 0.0
        self._loop_clock: _LoopClock | None = None
        self._tickers: dict[tuple[int, int], Ticker] = {}
        self._solo: dict[str, Ticker] = {}
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
            ticker = Ticker(self, period, offset)
            self._solo[game.info.game_id] = ticker
        else:
            for index in range(self.groups):
                self._tickers.setdefault((fps, index), Ticker(self, period, index * period / self.groups))
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
