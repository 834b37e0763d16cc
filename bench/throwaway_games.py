"""What pages opened and closed at once (throwaway games) cost the honest games of a server.

    uv run --frozen python bench/throwaway_games.py --honest 20 --throwaway 400 --seconds 5

A fresh ``igym run`` server serves ``server_tick_experiment.py`` (MountainCar, 30 fps, the game is
the first scene). A load-generator process plays ``--honest`` games as browsers do (see
``server_tick.py``). Meanwhile another process opens ``--throwaway`` pages (hello, wait for the
game, ``game_ready``, close the socket 200 ms later; 50 at a time), as a script or an impatient
crowd does. Once every throwaway page is closed (and a second more), for ``--seconds``:

- the honest games' delivered fps (median, 5th percentile, minimum) and tick lateness p50/p99;
- the server's game-ticks per second (each running game ticked counts one) against what the
  honest games alone need (``honest × fps``), and its CPU (% of one core);
- the bytes per second written to ``steps.jsonl``;
- how many games the server holds (throwaway ones wait for their player for ``abandon_after_s``).

QA measured before games paused (2026-12, issue 16): 400 throwaway games took honest games to
18.7 fps and wrote 4.8 MB/s of steps, for 60 s. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from server_tick import (  # noqa: E402
    _load_main,
    bench_server_env,
    free_port,
    get_stats,
    stop_server,
    wait_healthy,
    window_lateness,
)


async def _throwaway(url: str, limit: asyncio.Semaphore) -> None:
    from websockets.asyncio.client import connect

    async with limit, connect(url, max_size=None) as ws:
        await ws.send(msgpack.packb({"type": "hello", "protocol": 1, "token": None, "params": {}}))
        while True:
            message = msgpack.unpackb(await ws.recv())
            if message.get("type") == "game_status" and message.get("game_id"):
                break
        await ws.send(msgpack.packb({"type": "game_ready", "game_id": message["game_id"]}))
        await asyncio.sleep(0.2)


def _throwaway_main(url: str, count: int, start_at: float, out) -> None:
    async def main() -> list[str]:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        limit = asyncio.Semaphore(50)
        pages = [_throwaway(url, limit) for _ in range(count)]
        results = await asyncio.gather(*pages, return_exceptions=True)
        return [repr(r) for r in results if isinstance(r, BaseException)]

    errors = asyncio.run(main())
    out.send({"errors": errors, "done_at": time.time()})
    out.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--honest", type=int, default=20, help="games played by (scripted) people")
    parser.add_argument("--throwaway", type=int, default=400, help="pages opened and closed")
    parser.add_argument("--seconds", type=float, default=5, help="measured seconds")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--throwaway-budget", type=float, default=20, help="seconds allowed to open them all")
    args = parser.parse_args()

    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="igym-bench-")
    total_s = 2 + args.throwaway_budget + 1 + args.seconds + 30
    env = bench_server_env(
        IGYM_BENCH_STEPS=str(int(args.fps * total_s)), IGYM_BENCH_FPS=str(args.fps), IGYM_BENCH_HUMANS="1"
    )
    command = [sys.executable, "-m", "igym_core.cli", "run", "server_tick_experiment:experiment"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--data-dir", data_dir],
        env=env,
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        wait_healthy(port, server)
        start_at = time.time() + 2.0
        window_start = start_at + 1 + args.throwaway_budget + 1
        window = (window_start, window_start + args.seconds)
        honest_out, honest_in = mp.Pipe(duplex=False)
        honest = mp.Process(target=_load_main, args=(url, args.honest, 1, start_at, window, honest_in))
        honest.start()
        thrown_out, thrown_in = mp.Pipe(duplex=False)
        thrower = mp.Process(target=_throwaway_main, args=(url, args.throwaway, start_at + 1, thrown_in))
        thrower.start()
        thrown = thrown_out.recv()
        if thrown["done_at"] > window[0] - 1:
            raise SystemExit(
                f"opening {args.throwaway} pages took longer than --throwaway-budget {args.throwaway_budget}s"
            )
        steps_file = next(Path(data_dir).rglob("steps.jsonl"))
        time.sleep(max(0.0, window[0] - time.time()))
        before, bytes_before, t0 = get_stats(port), steps_file.stat().st_size, time.monotonic()
        time.sleep(max(0.0, window[1] - time.time()))
        after = get_stats(port)
        bytes_after, t1 = steps_file.stat().st_size, time.monotonic()
        results = honest_out.recv()
        honest.join(timeout=30)
        thrower.join(timeout=30)
    finally:
        stop_server(server)
        shutil.rmtree(data_dir, ignore_errors=True)
    errors = [r["error"] for r in results if "error" in r]
    if errors or thrown["errors"]:
        raise SystemExit(f"participants failed: {(errors + thrown['errors'])[:3]}")
    fps = sorted(r["frames"] / args.seconds for r in results)
    s0, s1 = before["runtimes"]["server"], after["runtimes"]["server"]
    lateness = window_lateness(before, after)
    elapsed = t1 - t0
    summary = {
        "honest": args.honest,
        "throwaway": args.throwaway,
        "fps_median": round(statistics.median(fps), 2),
        "fps_p5": round(fps[int(0.05 * len(fps))], 2),
        "fps_min": round(fps[0], 2),
        "lateness_p50_ms": lateness[0.5],
        "lateness_p99_ms": lateness[0.99],
        "game_ticks_per_s": round((s1["ticks"] - s0["ticks"]) / elapsed, 1),
        "honest_game_ticks_per_s": args.honest * args.fps,
        "cpu_percent": round((after["process_cpu_s"] - before["process_cpu_s"]) / elapsed * 100, 1),
        "steps_bytes_per_s": round((bytes_after - bytes_before) / elapsed),
        "games_held": after["games"],
    }
    for key, value in summary.items():
        print(f"{key:>24} {value}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
