"""How many Overcooked (cogrid) human–AI games one igym process holds at 15 fps, with each heavy-env
option: per-game fps (min, p5, median) and the largest N at which every game gets >= 14.5 fps.

    uv run --frozen python bench/cogrid_games.py --games 20,40,60 --seconds 15 --repeat 3
    uv run --frozen python bench/cogrid_games.py --variants pool --capacity 120

For each variant and number of games N, a fresh ``igym run`` server process serves
``cogrid_games_experiment.py`` (the cramped room, the participant's chef against the scripted
planner, 15 fps, drawn with the example's render function). A load-generator process opens N
WebSocket participants that behave like browsers: hello, game_ready, then a key change every
100-250 ms (arrows and space, seeded per participant) and a ping every second. After a warm-up,
for ``--seconds``, it counts the frames each participant receives (delivered fps per game) and
reads the server's ``/stats`` (tick lateness p50/p99, CPU per game-tick in the server process,
the cores the server process (``cores``) and its step workers (``wcores``) used, ticks skipped,
frames dropped).

Variants (``--variants``, all three by default; see ``cogrid_games_experiment.py``):

- ``none``: every seat's observation built, env stepped on the event loop;
- ``observed``: observations only for the bot's seat (``set_observed_agents``);
- ``pool``: that, and the env stepped in worker processes (``step_in_worker``;
  ``--step-workers`` sets ``IGYM_STEP_WORKERS``, default: the server's own default).

Each point is measured ``--repeat`` times, the runs alternating between the variants, and the
median of each figure is printed in the table (variants side by side for each N). ``--capacity``
then searches, per variant, the largest N (up to the given number) at which every game gets
>= 14.5 fps (bisecting to within ``--capacity-step`` games), judging each probe by the median of
``--repeat`` runs. The last line is one JSON object
with every figure. The load generator shares the machine's cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from server_tick import (  # noqa: E402
    _Participant,
    _result_of,
    bench_server_env,
    free_port,
    get_stats,
    stop_server,
    wait_healthy,
    window_lateness,
)

WARMUP_S = 8.0  # a new step worker imports numpy and cogrid first: seconds on a busy machine
#: IGYM_BENCH_PROFILE=DIR: py-spy samples the server process over each measured window (collapsed
#: stacks in DIR; py-spy must be on the PATH).
PROFILE_DIR = os.environ.get("IGYM_BENCH_PROFILE")
MIN_FPS = 14.5
FPS = 15
VARIANTS = ("none", "observed", "pool")
_KEYS = (["ArrowUp"], ["ArrowDown"], ["ArrowLeft"], ["ArrowRight"], [" "], [])


async def _player(url: str, start_at: float, window: tuple[float, float], seed: int) -> dict:
    """Hello, game_ready at ``start_at``, then held keys changing every 100-250 ms (arrows, space,
    nothing), a ping every second; counts the frames received in ``window``."""
    from websockets.uri import parse_uri

    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    uri = parse_uri(url)
    _transport, client = await loop.create_connection(lambda: _Participant(url, window), uri.host, uri.port)
    try:
        await client.opened
        client.send({"type": "hello", "protocol": 1, "token": None, "params": {}})
        game_id = await client.status
        await asyncio.sleep(max(0.0, start_at - time.time()))
        client.send({"type": "game_ready", "game_id": game_id})
        seq = 0
        next_ping = time.time() + 1
        while time.time() < window[1] and not client.closed.done():
            seq += 1
            client.send({"type": "input", "game_id": game_id, "seq": seq, "keys": rng.choice(_KEYS)})
            if time.time() >= next_ping:
                next_ping += 1
                client.send({"type": "ping", "seq": seq, "t": time.time() * 1000})
            await asyncio.sleep(rng.uniform(0.1, 0.25))
    finally:
        await client.close()
    return {"frames": client.frames, "max_gap_ms": client.max_gap * 1000 if client.frames > 1 else None}


def _load_main(url: str, games: int, start_at: float, window: tuple[float, float], out) -> None:
    async def main() -> list:
        tasks = [_player(url, start_at, window, seed) for seed in range(games)]
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(main())
    out.send([r if isinstance(r, dict) else {"error": repr(r)} for r in results])
    out.close()


def run_point(variant: str, games: int, seconds: float, step_workers: int | None) -> dict:
    """One measurement: a fresh server, ``games`` clients, ``seconds`` measured after a warm-up."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="igym-bench-cogrid-")
    env = bench_server_env(
        IGYM_BENCH_STEPS=str(int(FPS * (WARMUP_S + seconds + 60 + games * 0.05))),
        IGYM_BENCH_FPS=str(FPS),
        IGYM_BENCH_VARIANT=variant,
    )
    if step_workers is not None:
        env["IGYM_STEP_WORKERS"] = str(step_workers)
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "igym_core.cli", "run", "cogrid_games_experiment:experiment"),
            *("--port", str(port), "--data-dir", data_dir),
        ],
        env=env,
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_healthy(port, server, timeout=60)
        start_at = time.time() + 3.0 + games * 0.03
        window = (start_at + WARMUP_S, start_at + WARMUP_S + seconds)
        parent, child = mp.Pipe(duplex=False)
        loader = mp.Process(
            target=_load_main, args=(f"ws://127.0.0.1:{port}/ws", games, start_at, window, child)
        )
        loader.start()
        time.sleep(max(0.0, window[0] - time.time()))
        profiler = None
        if PROFILE_DIR:
            from pyodide_ingest import _profile

            profiler = _profile(server.pid, seconds, PROFILE_DIR, f"{variant}-{games}")
        before = get_stats(port, timeout_s=30)
        time.sleep(max(0.0, window[1] - time.time()))
        after = get_stats(port, timeout_s=30)
        results = _result_of(loader, parent, window[1] + 60)
        if profiler is not None:
            profiler.wait(timeout=60)
    finally:
        stop_server(server)
        shutil.rmtree(data_dir, ignore_errors=True)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError(f"{len(errors)} participants failed, e.g. {errors[0]}")
    fps = sorted(r["frames"] / seconds for r in results)
    s0, s1 = before["runtimes"]["server"], after["runtimes"]["server"]
    ticks = s1["ticks"] - s0["ticks"]
    lateness = window_lateness(before, after)
    cpu = after["process_cpu_s"] - before["process_cpu_s"]
    pool0, pool1 = s0.get("step_pool") or {}, s1.get("step_pool") or {}
    worker_cpu = (
        pool1["worker_cpu_s"] - pool0["worker_cpu_s"]
        if pool0.get("worker_cpu_s") is not None and pool1.get("worker_cpu_s") is not None
        else 0.0
    )
    return {
        "variant": variant,
        "games": games,
        "fps_min": round(fps[0], 2),
        "fps_p5": round(fps[int(0.05 * len(fps))], 2),
        "fps_median": round(statistics.median(fps), 2),
        "lateness_p50_ms": lateness[0.5],
        "lateness_p99_ms": lateness[0.99],
        "server_cpu_us_per_tick": round(cpu / ticks * 1e6, 1) if ticks else None,
        "server_cpu_cores": round(cpu / seconds, 2),
        "worker_cpu_cores": round(worker_cpu / seconds, 2),
        "ticks_skipped": s1["ticks_skipped"] - s0["ticks_skipped"],
        "frames_dropped": s1["frames_dropped"] - s0["frames_dropped"],
        "max_frame_gap_ms": round(max((r["max_gap_ms"] or 0) for r in results), 1),
    }


def median_of(runs: list[dict]) -> dict:
    point = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and key != "games" and not isinstance(value, bool):
            values = [run[key] for run in runs if run[key] is not None]
            point[key] = (
                (round(statistics.median(values), 2) if values else None)
                if isinstance(value, float)
                else (statistics.median_low(values) if values else None)
            )
    point["runs"] = len(runs)
    point["fps_min_runs"] = [run["fps_min"] for run in runs]
    return point


def measure(variant: str, games: int, args: argparse.Namespace, seconds: float) -> dict:
    runs = [run_point(variant, games, seconds, args.step_workers) for _ in range(max(1, args.repeat))]
    return median_of(runs)


COLUMNS = (
    ("fps_min", "min"),
    ("fps_p5", "p5"),
    ("fps_median", "med"),
    ("lateness_p99_ms", "late99"),
    ("server_cpu_cores", "cores"),
    ("worker_cpu_cores", "wcores"),
    ("ticks_skipped", "skip"),
)


def _cell(point: dict) -> str:
    return " ".join(f"{point[key]!s:>{max(6, len(label))}}" for key, label in COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", default="20,40", help="comma-separated numbers of concurrent games")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="none, observed, pool (comma-separated)"
    )
    parser.add_argument("--seconds", type=float, default=15, help="measured seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per point (the median is printed)")
    parser.add_argument(
        "--step-workers", type=int, default=None, help="IGYM_STEP_WORKERS for the pool variant"
    )
    parser.add_argument("--capacity", type=int, default=0, help="search the largest N up to this (0: skip)")
    parser.add_argument("--capacity-step", type=int, default=5)
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    sweep = [int(n) for n in args.games.split(",") if n]
    print(
        f"cogrid human-AI at {FPS} fps, cramped room, planner bot; median of {args.repeat} runs of "
        f"{args.seconds:g} s per point; load {os.getloadavg()[0]:.2f} at start; {os.cpu_count()} cores"
    )
    label = " ".join(f"{lab:>{max(6, len(lab))}}" for _key, lab in COLUMNS)
    print(f"{'games':>5} | " + " | ".join(f"{v:^{len(label)}}" for v in variants))
    print(f"{'':>5} | " + " | ".join(label for _ in variants))
    points: list[dict] = []
    for games in sweep:
        # Runs alternate between the variants, so that a busy moment of a shared machine hits
        # them all alike.
        runs: dict[str, list[dict]] = {variant: [] for variant in variants}
        for _ in range(max(1, args.repeat)):
            for variant in variants:
                runs[variant].append(run_point(variant, games, args.seconds, args.step_workers))
        row = []
        for variant in variants:
            point = median_of(runs[variant])
            points.append(point)
            row.append(_cell(point))
        print(f"{games:>5} | " + " | ".join(row), flush=True)
    capacity: dict[str, int | None] = {}
    if args.capacity:
        for variant in variants:
            passing = [p["games"] for p in points if p["variant"] == variant and p["fps_min"] >= MIN_FPS]
            failing = [p["games"] for p in points if p["variant"] == variant and p["fps_min"] < MIN_FPS]
            low = max(passing, default=0)
            high = min([g for g in failing if g > low], default=None)
            if high is None:
                high = args.capacity + 1
                probe = args.capacity
                point = measure(variant, probe, args, args.seconds)
                print(f"  {variant} at {probe}: {_cell(point)}", flush=True)
                if point["fps_min"] >= MIN_FPS:
                    low = probe
                else:
                    high = probe
            while high - low > args.capacity_step:
                middle = (low + high) // 2
                point = measure(variant, middle, args, args.seconds)
                print(f"  {variant} at {middle}: {_cell(point)}", flush=True)
                if point["fps_min"] >= MIN_FPS:
                    low = middle
                else:
                    high = middle
            capacity[variant] = low or None
            print(f"largest N with every game >= {MIN_FPS} fps, {variant}: {low or None}", flush=True)
    print(json.dumps({"fps": FPS, "min_fps": MIN_FPS, "points": points, "capacity": capacity}))


if __name__ == "__main__":
    main()
