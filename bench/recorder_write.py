"""What ``Recorder.write`` costs per step record with the built-in JSONL sink (the event loop pays it
for every agent at every game tick), including the sink's own ``write`` (encoding the line).

Run: ``uv run --frozen python bench/recorder_write.py [--rows 100000] [--runs 5]``. Prints the median
µs per record over ``--runs`` runs. Nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from igym_core.builtin.sink_jsonl import JsonlSink, JsonlSinkConfig
from igym_core.data.recorder import Recorder


def _row(n: int) -> dict[str, object]:
    return {
        "game_id": "g-1",
        "scene_id": "car",
        "instance": 0,
        "participant_ids": ["p-1"],
        "episode": 1,
        "step": n,
        "tick": n,
        "agent": "agent_0",
        "seat": "human",
        "participant_id": "p-1",
        "action": 2,
        "action_source": "human",
        "keys_held": ["ArrowRight"],
        "reward": -1.0,
        "terminated": False,
        "truncated": False,
        "info": None,
        "t_server_ms": 1764900000000.5,
    }


async def _run(rows: int, directory: Path) -> float:
    sink = JsonlSink(JsonlSinkConfig(), directory)
    recorder = Recorder([sink], base={"experiment_id": "bench", "run_id": "r"})
    payload = [_row(n) for n in range(rows)]
    started = time.perf_counter()
    for row in payload:
        recorder.write("steps", row)
    elapsed = time.perf_counter() - started
    await sink.close()
    return elapsed / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = []
    for index in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(asyncio.run(_run(args.rows, Path(tmp) / f"run{index}")))
    print(
        f"Recorder.write + JSONL write: median {statistics.median(results):.2f} µs per record "
        f"(runs: {', '.join(f'{r:.2f}' for r in results)})"
    )


if __name__ == "__main__":
    main()
