"""Data sinks under a server's load: step rows per second, and what the sink costs per game tick.

Run: ``uv run --frozen python bench/sink_throughput.py [--runs 5] [--seconds 3]``. Prints a table, then
one JSON line with the figures. Nothing here passes or fails.

Each simulated game writes one step record per agent per tick (two agents, MountainCar-like rows with
``info``, ``keys_held`` and ``participant_ids``), built as the server's Recorder builds them (a fresh
dict with the run's base fields), and a flush task flushes every 500 ms, as the server does.

- **Throughput**: 1 or 50 games write as fast as they can (yielding to the event loop between
  ticks) until 20,000 rows are written; rows per second of wall time, the final ``close`` included.
- **Overhead per tick**: 1 or 50 games tick at 30 fps for ``--seconds``; the process CPU time (the
  sink's worker threads included, up to the last flush; ``close`` happens once per server run) minus
  that of the same run with a sink that does nothing, per game tick, in µs. ``write_us`` is the time
  spent inside ``write`` alone, per row: what the event loop pays at every step.

Times are medians of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from igym_core.builtin.sink_jsonl import JsonlSink, JsonlSinkConfig
from igym_core.data.interface import DataSink, SinkConfig
from igym_core.logging import configure_logging
from igym_parquet import ParquetSinkConfig
from igym_parquet.sink import ParquetSink

FPS = 30
AGENTS = ("agent_0", "agent_1")
THROUGHPUT_ROWS = 20_000
FLUSH_INTERVAL_S = 0.5
BASE = {"experiment_id": "bench", "run_id": "20260101T000000Z-abcdef"}


class NullSink(DataSink):
    """Does nothing: the baseline the overhead is measured against."""

    kind = "null"
    config_type = SinkConfig

    def write(self, record_type: str, row: Mapping[str, Any]) -> None:
        pass

    async def flush(self, *, durable: bool = False) -> None:
        pass

    async def close(self) -> None:
        pass


SINKS: dict[str, Callable[[Path], DataSink]] = {
    "jsonl": lambda d: JsonlSink(JsonlSinkConfig(), d),
    "parquet": lambda d: ParquetSink(ParquetSinkConfig(), d),
    "null": lambda d: NullSink(SinkConfig(), d),
}


def step_row(game: int, tick: int, agent: str, clock: str) -> dict[str, Any]:
    """One step record as the server writes it (Recorder base fields, timestamp, then the step)."""
    return {
        **BASE,
        "timestamp": clock,
        "game_id": f"g-{game:010x}",
        "scene_id": "mountain_car",
        "instance": 0,
        "participant_ids": [f"p-{game:012x}"],
        "episode": 1 + tick // 600,
        "step": 1 + tick % 600,
        "tick": tick + 1,
        "agent": agent,
        "seat": "human" if agent == "agent_0" else "bot",
        "participant_id": f"p-{game:012x}" if agent == "agent_0" else None,
        "action": tick % 3,
        "action_source": "human" if agent == "agent_0" else "bot",
        "keys_held": ["ArrowRight"] if tick % 2 else [],
        "reward": -1.0,
        "terminated": False,
        "truncated": False,
        "info": {"position": -0.5 + tick * 1e-4, "velocity": 1e-3},
        "t_server_ms": 1.7e12 + tick * 33.3,
    }


class Timed:
    """Wraps a sink's ``write`` to add up the time spent inside it."""

    def __init__(self, sink: DataSink) -> None:
        self.sink = sink
        self.seconds = 0.0
        self.calls = 0

    def write(self, record_type: str, row: Mapping[str, Any]) -> None:
        started = time.perf_counter()
        self.sink.write(record_type, row)
        self.seconds += time.perf_counter() - started
        self.calls += 1


async def _flusher(sink: DataSink) -> None:
    while True:
        await asyncio.sleep(FLUSH_INTERVAL_S)
        await sink.flush()


async def throughput(kind: str, games: int) -> float:
    """Rows per second with ``games`` games writing as fast as they can."""
    ticks = THROUGHPUT_ROWS // (games * len(AGENTS))
    with tempfile.TemporaryDirectory() as tmp:
        sink = SINKS[kind](Path(tmp))
        clock = "2026-01-01T00:00:00.000Z"

        async def game(number: int) -> None:
            for tick in range(ticks):
                for agent in AGENTS:
                    sink.write("steps", step_row(number, tick, agent, clock))
                await asyncio.sleep(0)

        flusher = asyncio.create_task(_flusher(sink))
        started = time.perf_counter()
        await asyncio.gather(*(game(n) for n in range(games)))
        flusher.cancel()
        await sink.close()
        elapsed = time.perf_counter() - started
    return ticks * games * len(AGENTS) / elapsed


async def paced(kind: str, games: int, seconds: float) -> tuple[float, int, float]:
    """CPU seconds, game ticks and seconds inside ``write`` for ``games`` games at 30 fps."""
    with tempfile.TemporaryDirectory() as tmp:
        sink = SINKS[kind](Path(tmp))
        timed = Timed(sink)
        ticks = int(seconds * FPS)
        clock = "2026-01-01T00:00:00.000Z"

        async def game(number: int) -> None:
            loop = asyncio.get_running_loop()
            start = loop.time() + number / games / FPS  # phases spread over the period, as the server does
            for tick in range(ticks):
                await asyncio.sleep(max(0.0, start + tick / FPS - loop.time()))
                for agent in AGENTS:
                    timed.write("steps", step_row(number, tick, agent, clock))

        flusher = asyncio.create_task(_flusher(sink))
        cpu = time.process_time()
        await asyncio.gather(*(game(n) for n in range(games)))
        await sink.flush()
        cpu = time.process_time() - cpu  # the steady state: closing happens once per server run
        flusher.cancel()
        await sink.close()
    return cpu, ticks * games, timed.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each paced run")
    parser.add_argument("--sinks", default="jsonl,parquet")
    args = parser.parse_args(argv)
    configure_logging("console", "warning")  # to stderr: stdout is the figures
    kinds = args.sinks.split(",")
    for kind in kinds:  # warm up: imports, pyarrow's first arrays
        asyncio.run(throughput(kind, 1))

    results: dict[str, Any] = {}
    lines = [f"{'sink':8} {'games':>5} {'rows/s':>10} {'overhead µs/tick':>17} {'write µs/row':>13}"]
    for games in (1, 50):
        baseline = [asyncio.run(paced("null", games, args.seconds)) for _ in range(args.runs)]
        null_cpu = statistics.median(cpu for cpu, _ticks, _write in baseline)
        for kind in kinds:
            rates = [asyncio.run(throughput(kind, games)) for _ in range(args.runs)]
            runs = [asyncio.run(paced(kind, games, args.seconds)) for _ in range(args.runs)]
            ticks = runs[0][1]
            overhead_us = (statistics.median(cpu for cpu, _t, _w in runs) - null_cpu) / ticks * 1e6
            write_us = statistics.median(w for _c, _t, w in runs) / (ticks * len(AGENTS)) * 1e6
            rate = statistics.median(rates)
            results[f"{kind}_{games}"] = {
                "rows_per_s": round(rate),
                "overhead_us_per_tick": round(overhead_us, 1),
                "write_us_per_row": round(write_us, 2),
            }
            lines.append(f"{kind:8} {games:5d} {rate:10.0f} {overhead_us:17.1f} {write_us:13.2f}")
    sys.stdout.write("\n".join(lines) + "\n")
    summary = {
        "benchmark": "sink_throughput",
        "python": platform.python_version(),
        "runs": args.runs,
        "agents_per_game": len(AGENTS),
        "fps": FPS,
        **results,
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
