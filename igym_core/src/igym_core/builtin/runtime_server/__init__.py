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

Heavy envs
    A scene with ``runtime_options={"step_in_worker": True}`` keeps its envs in step worker
    processes instead (``step_pool``, ``step_worker``, ``pooled``): only the actions go to the
    worker and only the bots' observations, the step's results and the frame's delta come back,
    so the env's state never crosses the pipe. Every game tells its env which seats' observations
    are read (``ActionChoice.tell_observed``; ``set_observed_agents`` in the env contract).

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
    the step records of all of them, renders all, and encodes all their frames (``ServerGame.FINISH``). A
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

Modules
    ``scheduler`` (tickers, their groups and the process's tick figures), ``game`` (the episode
    machine and the parts of a tick), ``actions`` (players' keys, bot seats, bots batched across
    games), ``frames`` (render, deltas, keyframes, HUD, delivery), ``presence`` (players away, left
    and back, pauses, abandon, round-trip probes, the status each player sees), ``runtime`` (the
    runtime class and its hookimpl), ``pooled`` / ``step_pool`` / ``step_worker`` (games stepped in
    worker processes). Records are built by ``igym_core.runtime.records``, messages by
    ``igym_core.protocol.server_messages``.
"""

from igym_core.builtin.runtime_server.actions import StepResult
from igym_core.builtin.runtime_server.game import ServerGame
from igym_core.builtin.runtime_server.runtime import ServerRuntime, igym_register_runtimes
from igym_core.builtin.runtime_server.scheduler import TickScheduler, TickStats

__all__ = [
    "ServerGame",
    "ServerRuntime",
    "StepResult",
    "TickScheduler",
    "TickStats",
    "igym_register_runtimes",
]
