"""What one ``/stats`` summary costs as participants join and the server ages.

    uv run --frozen python bench/stats_cost.py --participants 10,3000 --samples 1000,400000

For each point, an in-process study (the real ``Study``, participants joined through ``hello``, a
third of them disconnected) and the server runtime's tick statistics holding ``samples`` tick
lateness samples (400,000 was the most the runtime kept before this change, about 3.7 hours of
100 games at 30 fps in 4 groups); then the median wall time of ``study.summary()`` over repeated
calls. It runs against whatever ``igym_core`` is importable, so the same script measures an older
checkout (``PYTHONPATH=<checkout>/igym_core/src``). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


async def _point(participants: int, samples: int, calls: int) -> dict[str, Any]:
    from igym_core import EndScene, Experiment, StartScene
    from igym_core.protocol.messages import PROTOCOL_VERSION, Hello
    from igym_core.testing import make_test_app

    experiment = Experiment(
        experiment_id="stats_cost",
        seed=1,
        scenes=(StartScene(scene_id="s", body="Hi."), EndScene(scene_id="e")),
    )
    with tempfile.TemporaryDirectory(prefix="igym-stats-") as data:
        app = make_test_app(experiment, Path(data), flush_interval_ms=600_000, log_level="warning")
        study = app.state.study

        async def send(message: dict[str, Any]) -> None:
            return None

        async def close(code: int, reason: str) -> None:
            return None

        connections = []
        for n in range(participants):
            connection = study.open_connection(send, close)
            await study.hello(connection, Hello(protocol=PROTOCOL_VERSION, token=None, params={"n": str(n)}))
            connections.append(connection)
        for connection in connections[::3]:
            study.disconnected(connection)
        runtime = await study.games._runtime("server")
        rng = random.Random(1)
        for _ in range(samples):
            runtime.scheduler.stats.add_lateness(rng.expovariate(1 / 1.5))
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            study.summary()
            times.append(time.perf_counter() - started)
    return {
        "participants": participants,
        "samples": samples,
        "summary_us_median": round(statistics.median(times) * 1e6, 1),
        "summary_us_max": round(max(times) * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", default="10,3000")
    parser.add_argument("--samples", default="1000,400000")
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    rows = []
    print(f"{'participants':>12} {'samples':>8} {'median us':>10} {'max us':>10}")
    for participants in (int(x) for x in args.participants.split(",")):
        for samples in (int(x) for x in args.samples.split(",")):
            row = asyncio.run(_point(participants, samples, args.calls))
            rows.append(row)
            print(
                f"{participants:>12} {samples:>8} {row['summary_us_median']:>10} {row['summary_us_max']:>10}",
                flush=True,
            )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
