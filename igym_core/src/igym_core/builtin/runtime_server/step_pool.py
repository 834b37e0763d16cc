"""The step pool: worker processes that step heavy envs off the event loop (server-side half).

A scene with ``runtime_options={"step_in_worker": True}`` has each game's env, its drawing and its
delta encoding live in one of ``IGYM_STEP_WORKERS`` worker processes (:mod:`.step_worker`); the
server keeps the sockets, players, bots, records and the ledger. At a tick, a game sends its
actions to its worker and goes on; the worker's reply (observations of the bots' seats, rewards,
flags, infos, the frame's delta) runs the tick's later parts (records, frames) when it arrives.
See ``pooled.PooledServerGame`` for the game's side.

Transport: one pipe per worker (``multiprocessing.Pipe``); on this side its descriptor is
non-blocking and served by the event loop (a reader, and a writer while output waits), with
``multiprocessing.connection``'s framing (a 4-byte big-endian length, then a pickle).

Bounds:
    - :data:`MAX_REPLY_BYTES`: a reply larger than this is refused by the worker (the game fails,
      with the size in its record) and a frame announcing more is taken as a broken worker;
    - :data:`MAX_PENDING_PER_WORKER` requests in flight per worker: past it a game waits a tick;
    - :data:`MAX_OUTPUT_BYTES` of requests waiting to be written to a worker that does not read
      them: past it the worker is killed;
    - ``IGYM_STEP_WORKER_TIMEOUT_S``: a worker that leaves a request unanswered this long is
      killed (``step_worker_hung``); building a game's env (``open``, which may import the env's
      packages) and a new worker's start get :data:`START_TIMEOUT_S` (or the timeout if longer).

A worker that dies (or is killed) ends each of its games with an error: a ``games`` row
``step_worker_failed`` (worker pid, exit code, why), the log line ``step_worker_died``, then the
game's usual ``error`` ending. The other workers' games go on, and a new worker takes the dead
one's place for games that start later.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from igym_core.builtin.runtime_server.step_worker import serve

if TYPE_CHECKING:
    from igym_core.builtin.runtime_server.scheduler import TickScheduler

__all__ = ["MAX_PENDING_PER_WORKER", "MAX_REPLY_BYTES", "PoolClient", "StepPool", "default_workers"]

log = structlog.get_logger(__name__)

#: The largest reply (observations, infos, frame) a worker may send for one request.
MAX_REPLY_BYTES = 8 * 1024 * 1024
#: Requests in flight to one worker at most; a game whose request would pass it waits a tick.
MAX_PENDING_PER_WORKER = 512
#: Requests waiting to be written to one worker at most; past it the worker is taken as stuck.
MAX_OUTPUT_BYTES = 4 * 1024 * 1024

#: How long a new worker may take to start, and a worker to build a game's env (``open``).
START_TIMEOUT_S = 60.0

_HEADER = struct.Struct("!i")


def default_workers() -> int:
    """One less than the machine's CPUs (the event loop keeps one), at least 1."""
    return max(1, (os.cpu_count() or 2) - 1)


class PoolClient(Protocol):
    """What the pool calls back on a game that steps in a worker."""

    def pool_reply(self, op: str, payload: Any) -> None:
        """The worker's reply to this game's request ``op`` (``opened``, ``reset``, ``stepped``,
        ``observed``, ``failed``)."""

    def pool_worker_died(self, pid: int | None, exitcode: int | None, why: str) -> None:
        """This game's worker died (or was killed): the game must end."""


class _Worker:
    """One worker process and this side's end of its pipe."""

    def __init__(self, pool: StepPool, index: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        self.pool = pool
        self.index = index
        self.process = ctx.Process(
            target=serve, args=(child, MAX_REPLY_BYTES), name=f"igym-step-worker-{index}", daemon=True
        )
        self.process.start()
        child.close()
        self.conn = parent
        self.fd = parent.fileno()
        os.set_blocking(self.fd, False)
        self.games: dict[int, PoolClient] = {}
        #: (game key, op, when sent) of every request not yet answered, in order (replies come in order).
        self.pending: deque[tuple[int, str, float]] = deque()
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.writing = False
        self.flush_due = False
        self.alive = True
        self.started = time.monotonic()
        self.ready_at: float | None = None  # when the worker said it had started
        self.why = ""
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.fd, self._readable)
        log.info("step_worker_started", worker=index, pid=self.process.pid)

    # --- sending ----------------------------------------------------------------------------------
    def send(self, key: int, op: str, payload: Any, *, answered: bool = True) -> None:
        blob = pickle.dumps((op, key, payload), protocol=pickle.HIGHEST_PROTOCOL)
        if answered:
            self.pending.append((key, op, time.monotonic()))
        self.outbox += _HEADER.pack(len(blob))
        self.outbox += blob
        if not self.flush_due:  # one write for all the requests of a ticker's group
            self.flush_due = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_due = False
        if not self.alive:
            return
        try:
            while self.outbox:
                written = os.write(self.fd, self.outbox)
                del self.outbox[:written]
        except BlockingIOError:
            pass
        except OSError as exc:
            self.fail(f"writing to it failed: {exc}")
            return
        if self.outbox and len(self.outbox) > MAX_OUTPUT_BYTES:
            self.fail(f"it read none of {len(self.outbox)} bytes of requests waiting for it")
            return
        if self.outbox and not self.writing:
            self.writing = True
            self.loop.add_writer(self.fd, self._flush)
        elif not self.outbox and self.writing:
            self.writing = False
            self.loop.remove_writer(self.fd)

    # --- receiving --------------------------------------------------------------------------------
    def _readable(self) -> None:
        try:
            chunk = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            return
        except OSError as exc:
            self.fail(f"reading from it failed: {exc}")
            return
        if not chunk:
            self.fail("it exited")
            return
        self.inbox += chunk
        replies = []
        while len(self.inbox) >= 4:
            (size,) = _HEADER.unpack_from(self.inbox)
            if size < 0 or size > MAX_REPLY_BYTES + 1024:
                self.fail(f"it sent a reply announced as {size} bytes (at most {MAX_REPLY_BYTES})")
                return
            if len(self.inbox) < 4 + size:
                break
            blob = bytes(self.inbox[4 : 4 + size])
            del self.inbox[: 4 + size]
            replies.append(blob)
        if replies:
            self.pool.deliver(self, replies)

    def answer(self, blob: bytes) -> tuple[PoolClient | None, str, Any]:
        op, key, payload = pickle.loads(blob)
        if op == "ready":
            self.ready_at = time.monotonic()
            return None, op, payload
        if self.pending:
            self.pending.popleft()
        return self.games.get(key), op, payload

    # --- failure ----------------------------------------------------------------------------------
    def overdue(self, now: float, timeout_s: float) -> float | None:
        """How long the oldest request has waited, if longer than it may (else None)."""
        if self.ready_at is None:  # still starting
            waited = now - self.started
            return waited if waited > max(timeout_s, START_TIMEOUT_S) else None
        if not self.pending:
            return None
        _key, op, sent = self.pending[0]
        waited = now - max(sent, self.ready_at)
        limit = max(timeout_s, START_TIMEOUT_S) if op == "open" else timeout_s
        return waited if waited > limit else None

    def fail(self, why: str) -> None:
        """The worker is gone or unusable: stop it and end its games (once)."""
        if not self.alive:
            return
        self.alive = False
        self.why = why
        self.loop.remove_reader(self.fd)
        if self.writing:
            self.loop.remove_writer(self.fd)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=1)
        with contextlib.suppress(OSError):
            self.conn.close()
        exitcode = self.process.exitcode
        log.error(
            "step_worker_died",
            worker=self.index,
            pid=self.process.pid,
            exitcode=exitcode,
            why=why,
            games=len(self.games),
        )
        self.pool.replace(self)
        games = list(self.games.values())
        self.games.clear()
        self.pending.clear()
        for game in games:
            try:
                game.pool_worker_died(self.process.pid, exitcode, why)
            except Exception:
                log.exception("step_worker_game_end_failed", worker=self.index)

    def stop(self) -> None:
        if self.alive:
            self.alive = False
            self.loop.remove_reader(self.fd)
            if self.writing:
                self.loop.remove_writer(self.fd)
            with contextlib.suppress(OSError):
                self.conn.close()  # the worker reads EOF and exits
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)


class StepPool:
    """The server's step workers (see the module docstring). Made by the server runtime with the
    first game that steps in a worker, on the event loop."""

    def __init__(self, workers: int, scheduler: TickScheduler, timeout_s: float) -> None:
        self.size = workers
        self.scheduler = scheduler
        self.timeout_s = timeout_s
        self.workers: list[_Worker] = [_Worker(self, index) for index in range(workers)]
        self._keys = 0
        self.failures = 0

    def open(self, game: PoolClient, spec: Any) -> tuple[_Worker, int]:
        """Place ``game`` on the worker with fewest games and build its env there."""
        worker = min(self.workers, key=lambda w: (len(w.games), w.index))
        self._keys += 1
        key = self._keys
        worker.games[key] = game
        worker.send(key, "open", spec)
        return worker, key

    @staticmethod
    def full(worker: _Worker) -> bool:
        return len(worker.pending) >= MAX_PENDING_PER_WORKER

    def deliver(self, worker: _Worker, replies: list[bytes]) -> None:
        """Hand each reply to its game; the frames they make go out after all of them, then the
        round-trip probes (as a ticker sends after its group)."""
        from igym_core.builtin.runtime_server.frames import deliver

        scheduler = self.scheduler
        outgoing: list[tuple[Any, bytes, Any]] = []
        later: list[Any] = []
        scheduler.outgoing, scheduler.later = outgoing, later
        try:
            for blob in replies:
                try:
                    game, op, payload = worker.answer(blob)
                except Exception:
                    log.exception("step_worker_reply_unreadable", worker=worker.index)
                    worker.fail("it sent a reply that could not be read")
                    return
                if game is None:  # a game that ended meanwhile
                    continue
                try:
                    game.pool_reply(op, payload)
                except Exception:
                    log.exception("step_reply_failed", worker=worker.index, op=op)
        finally:
            scheduler.outgoing = scheduler.later = None
            for sink, data, player in outgoing:
                deliver(scheduler.stats, sink, data, player)
            for send in later:
                try:
                    send()
                except Exception:
                    log.exception("probe_failed")

    def check_hung(self, worker: _Worker) -> None:
        """Kill ``worker`` if its oldest request has waited longer than the timeout."""
        waited = worker.overdue(time.monotonic(), self.timeout_s)
        if worker.alive and waited is not None:
            log.error(
                "step_worker_hung", worker=worker.index, waited_s=round(waited, 2), timeout_s=self.timeout_s
            )
            worker.fail(f"it left a request unanswered for {waited:.1f} s (IGYM_STEP_WORKER_TIMEOUT_S)")

    def replace(self, worker: _Worker) -> None:
        """A fresh worker in a dead one's place, for games that start later."""
        self.failures += 1
        try:
            index = self.workers.index(worker)
        except ValueError:
            return
        self.workers[index] = _Worker(self, worker.index)

    def close(self, worker: _Worker, key: int) -> None:
        if worker.games.pop(key, None) is not None and worker.alive:
            worker.send(key, "close", None, answered=False)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []

    def summary(self) -> dict[str, Any]:
        return {
            "workers": len(self.workers),
            "games": sum(len(w.games) for w in self.workers),
            "pending": sum(len(w.pending) for w in self.workers),
            "worker_failures": self.failures,
            "worker_cpu_s": _cpu_s([w.process.pid for w in self.workers]),
        }


def _cpu_s(pids: list[int | None]) -> float | None:
    """CPU seconds the live workers have used (Linux: ``/proc``; None elsewhere)."""
    total = 0.0
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        for pid in pids:
            if pid is None:
                continue
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    except (OSError, ValueError, IndexError):
        return None
    return round(total, 3)
