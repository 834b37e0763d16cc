"""Server cost of browser-run (``pyodide``) games: CPU per game-tick against server-run games, and how
many games one server process ingests at 30 steps/s each.

Both parts serve ``pyodide_ingest_experiment.py`` (Slime Volleyball against a random bot) with a real
``igym run`` process and drive it from separate client processes over real WebSockets (websockets'
sans-I/O client, as ``server_tick.py`` does):

- a ``pyodide`` participant says hello, reports ``runtime_loaded``, waits for the server's
  ``pyodide_episode`` and then sends every 500 ms a ``step_batch`` of the 15 steps a page at 30 fps
  made since the last one (honest slime steps, made once per client process), reading the
  ``batch_ack`` of each (its delay is measured), and answers the server's round-trip probes
  (``rtt_probe``, every ``rtt_interval_s``) with ``rtt_echo`` at once, as the page module does;
- a ``server`` participant says hello, ``game_ready``, then a key change every 50 ms and a ping
  every second (``server_tick.py``'s participant).

(a) ``cpu us``: the server process's CPU time in the measured window / game-ticks in it (steps
stored for ``pyodide``, ticks for ``server``), at the same number of games. Goal: ``pyodide`` at
least 20 times less.

(b) capacity: for each number of ``pyodide`` games, whether the server stored 30 steps/s for every
game through the window (``ingest`` = steps stored / (games × 30 × seconds)), the server's share of
a core, the acknowledgement delay p50/p99 and its growth over the window, the client processes' share
of a core (they must not be the limit), and whether the server keeps up (``KEEPS_UP_*`` below: at least
98 % of the steps stored, ack p99 within 2 s with acknowledgements at most once a second, no backlog
growing). The clients share the machine's cores with the server, so the figures are those of one
process on a 2-core machine: run it when the machine is otherwise idle (``uptime``). Capacity is
judged with ``--seconds 60``.

Run: ``uv run python bench/pyodide_ingest.py`` (defaults: 50 games for (a), 500,1000,2000 for (b),
3 runs each, medians printed).
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
from typing import Any

import msgpack

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from server_tick import (  # noqa: E402
    OPERATOR_TOKEN,
    _Participant,
    _result_of,
    free_port,
    get_stats,
    stop_server,
    wait_healthy,
)

#: "Keeps up" (part b): the server stores at least this share of the 30 steps/s of every game over
#: the window, ...
KEEPS_UP_INGEST = 0.98
#: ... a batch's acknowledgement comes within this (p99; the server acknowledges at most once per
#: ``ack_interval_ms`` = 1000 and sends held-back acknowledgements every 250 ms, so an honest delay
#: is up to about 1.25 s: this is that plus 0.75 s of lag) ...
KEEPS_UP_ACK_P99_MS = 2000.0
#: ... and the median delay in the window's last quarter is at most this much above its first
#: quarter's (no backlog growing).
KEEPS_UP_GROWTH_MS = 250.0
WARMUP_S = 3.0
#: Seconds per 100 participants for the connections to arrive before the measured window.
RAMP_S_PER_100 = 0.6
BATCH_STEPS = 15
BATCH_INTERVAL_S = 0.5


# --- the clients (their own processes) ------------------------------------------------------------
def _templates(count: int) -> list[dict[str, Any]]:
    """``count`` honest slime steps (random keys and bot), as a page reports them."""
    from igym_slime.env import make_env

    env = make_env(lives=1000, max_steps=count + 10)
    env.reset(seed=3)
    rng = random.Random(3)
    steps = []
    for n in range(1, count + 1):
        human, bot = rng.randrange(4), rng.randrange(6)
        _obs, rewards, terminated, _truncated, _infos = env.step({"left": human, "right": bot})
        steps.append(
            {
                "step": n,
                "t_ms": 1.7e12 + n * 33.3,
                "actions": {"left": human, "right": bot},
                "sources": {"left": "human" if human else "default", "right": "bot"},
                "keys": {"left": [["ArrowLeft"], ["ArrowRight"], ["ArrowUp"]][human - 1] if human else []},
                "rewards": {"left": float(rewards["left"]), "right": float(rewards["right"])},
                "terminated": {"left": bool(terminated["left"]), "right": bool(terminated["right"])},
                "truncated": {"left": False, "right": False},
                "infos": None,
            }
        )
    return steps


def _packed_chunks(steps: list[dict[str, Any]]) -> list[bytes]:
    """Each batch's ``steps`` array, msgpack-encoded once (a message is assembled around it)."""
    return [msgpack.packb(steps[i : i + BATCH_STEPS]) for i in range(0, len(steps), BATCH_STEPS)]


def _batch_bytes(game_id: str, number: int, chunk: bytes) -> bytes:
    head = {"type": "step_batch", "game_id": game_id, "batch": number, "episode": 1}
    first_step = (number - 1) * BATCH_STEPS + 1
    return (
        b"\x87"  # a map of 7 entries
        + b"".join(msgpack.packb(k) + msgpack.packb(v) for k, v in head.items())
        + msgpack.packb("first_step")
        + msgpack.packb(first_step)
        + msgpack.packb("steps")
        + chunk
        + msgpack.packb("hashes")
        + msgpack.packb([])
    )


class _Page(_Participant):
    """A ``pyodide`` page: notes the episode it is issued, acknowledgements and errors."""

    def __init__(self, url: str, window: tuple[float, float]) -> None:
        super().__init__(url, window)
        self.episode = asyncio.get_running_loop().create_future()
        self.sent_at: dict[int, float] = {}
        self.ack_ms: list[float] = []
        self.ack_at: list[float] = []  # when each of ack_ms was measured
        self.acks = 0
        self.errors: list[str] = []

    def send_bytes(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.ws.send_binary(data)
            self._flush()

    def _message(self, data: bytes) -> None:
        message = msgpack.unpackb(data)
        kind = message.get("type")
        now = time.time()
        if kind == "batch_ack":  # every batch up to this number is stored (one ack may cover several)
            for number in [n for n in self.sent_at if n <= message["batch"]]:
                sent = self.sent_at.pop(number)
                if self.window[0] <= now < self.window[1]:
                    self.acks += 1
                    self.ack_ms.append((now - sent) * 1000)
                    self.ack_at.append(now)
        elif kind == "rtt_probe":  # answered at once, as the runtime's page module does
            self.send({"type": "rtt_echo", "game_id": message["game_id"], "n": message["n"]})
        elif kind == "pyodide_episode" and not self.episode.done():
            self.episode.set_result(message)
        elif kind == "game_status" and message.get("game_id") and not self.status.done():
            self.status.set_result(message["game_id"])
        elif kind == "error":
            self.errors.append(str(message.get("message"))[:200])


async def _pyodide_player(
    url: str, start_at: float, window: tuple[float, float], chunks: list[bytes]
) -> dict:
    from websockets.uri import parse_uri

    loop = asyncio.get_running_loop()
    uri = parse_uri(url)
    _transport, page = await loop.create_connection(lambda: _Page(url, window), uri.host, uri.port)
    try:
        await page.opened
        page.send({"type": "hello", "protocol": 1, "token": None, "params": {}})
        game_id = await page.status
        await asyncio.sleep(max(0.0, start_at - time.time()))
        page.send({"type": "runtime_loaded", "game_id": game_id, "ms": 1000.0, "stages": {}})
        await page.episode
        began = time.time()
        number = 0
        while time.time() < window[1] and not page.closed.done() and number < len(chunks):
            number += 1
            # A page sends what it stepped: batch n once 15 * n steps at 30 fps have passed.
            await asyncio.sleep(max(0.0, began + number * BATCH_INTERVAL_S - time.time()))
            page.sent_at[number] = time.time()
            page.send_bytes(_batch_bytes(game_id, number, chunks[number - 1]))
    finally:
        await page.close()
    return {"acks": page.acks, "ack_ms": page.ack_ms, "ack_at": page.ack_at, "errors": page.errors}


async def _server_player(url: str, start_at: float, window: tuple[float, float]) -> dict:
    from server_tick import _participant

    return await _participant(url, start_at, window, 1)


async def _cpu_in(window: tuple[float, float]) -> float:
    """This client process's CPU time within ``window`` (were the clients keeping up?)."""
    await asyncio.sleep(max(0.0, window[0] - time.time()))
    began = time.process_time()
    await asyncio.sleep(max(0.0, window[1] - time.time()))
    return time.process_time() - began


def _load_main(
    mode: str, url: str, games: int, clients: int, start_at: float, window: tuple[float, float], out: Any
) -> None:
    chunks = _packed_chunks(_templates(int(30 * (window[1] - start_at + 10)))) if mode == "pyodide" else []

    async def main() -> list[Any]:
        tasks = []
        for index in range(games):
            await asyncio.sleep(RAMP_S_PER_100 / 100 * 0.8 * max(1, clients) if index else 0)  # spread out
            if mode == "pyodide":
                tasks.append(asyncio.ensure_future(_pyodide_player(url, start_at, window, chunks)))
            else:
                tasks.append(asyncio.ensure_future(_server_player(url, start_at, window)))
        cpu = asyncio.ensure_future(_cpu_in(window))
        done = await asyncio.gather(*tasks, return_exceptions=True)
        return [*done, {"client_cpu_s": await cpu}]

    results = asyncio.run(main())
    out.send([r if isinstance(r, dict) else {"error": repr(r)} for r in results])
    out.close()


def _profile(pid: int, seconds: float, directory: str, name: str) -> subprocess.Popen:
    """py-spy (installed apart: ``pip install py-spy``) sampling the server over the measured window,
    written as collapsed stacks (``--format raw``) to ``directory/name-<time>.txt``."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy on the PATH: pip install py-spy")
    out = Path(directory) / f"{name}-{int(time.time())}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250"]
    command += ["--format", "raw", "--nonblocking", "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --- one measurement ------------------------------------------------------------------------------
def run_point(mode: str, games: int, seconds: float, clients: int, profile_dir: str | None = None) -> dict:
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="igym-bench-pyodide-")
    log = open(Path(data_dir) / "server.log", "wb")  # noqa: SIM115 (closed in the finally below)
    env = {
        **os.environ,
        "IGYM_BENCH_RUNTIME": mode,
        "IGYM_LOG_LEVEL": "warning",
        "IGYM_LOG_FORMAT": "json",
        "IGYM_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN": "0",  # every player comes from this address
        # This tree's code, also when the bench runs from a copy of another commit (a baseline).
        "PYTHONPATH": os.pathsep.join(
            [str(HERE), str(ROOT / "igym_core" / "src"), *map(str, sorted(ROOT.glob("plugins/*/src")))]
        ),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "igym_core.cli",
            "run",
            "pyodide_ingest_experiment:experiment",
            "--port",
            str(port),
            "--data-dir",
            data_dir,
        ],
        env=env,
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=log,  # a file: a pipe nobody reads would stop the server once its buffer is full
    )
    try:
        wait_healthy(port, server)
        start_at = time.time() + 2.0 + games / 100 * RAMP_S_PER_100
        window = (start_at + WARMUP_S, start_at + WARMUP_S + seconds)
        loaders = []
        share = [games // clients + (1 if i < games % clients else 0) for i in range(clients)]
        for count in share:
            if count:
                parent, child = mp.Pipe(duplex=False)
                process = mp.Process(
                    target=_load_main,
                    args=(mode, f"ws://127.0.0.1:{port}/ws", count, clients, start_at, window, child),
                )
                process.start()
                loaders.append((process, parent))
        time.sleep(max(0.0, window[0] - time.time()))
        profiler = _profile(server.pid, seconds, profile_dir, f"{mode}-{games}") if profile_dir else None
        before = get_stats(port, timeout_s=60)  # a busy server may take a while to answer
        time.sleep(max(0.0, window[1] - time.time()))
        after = get_stats(port, timeout_s=60)
        # The server's own clock between its two answers (a saturated server answers both late).
        measured = max(1e-3, after["uptime_s"] - before["uptime_s"])
        results = [r for process, pipe in loaders for r in _result_of(process, pipe, window[1] + 60)]
        if profiler is not None:
            profiler.wait(timeout=60)
    finally:
        stop_server(server)
        log.close()
        warnings = (Path(data_dir) / "server.log").read_text(errors="replace").splitlines()
        if warnings:
            print(f"  server log ({len(warnings)} lines), e.g.: {warnings[0][:300]}", flush=True)
        shutil.rmtree(data_dir, ignore_errors=True)
    client_cpu = sum(r.pop("client_cpu_s") for r in results if "client_cpu_s" in r)
    results = [r for r in results if r]
    failed = [r["error"] for r in results if "error" in r]
    if failed:
        raise RuntimeError(f"{len(failed)} participants failed, e.g. {failed[0]}")
    cpu = after["process_cpu_s"] - before["process_cpu_s"]
    r0, r1 = before["runtimes"][mode], after["runtimes"][mode]
    if mode == "pyodide":
        ticks = r1["steps_stored"] - r0["steps_stored"]
        delays = sorted(ms for r in results for ms in r["ack_ms"])
        # Backlog growth: the acknowledgement delay in the window's last quarter against its first.
        quarter = (window[1] - window[0]) / 4
        timed = [(ms, at) for r in results for ms, at in zip(r["ack_ms"], r["ack_at"], strict=True)]
        first = [ms for ms, at in timed if at < window[0] + quarter]
        last = [ms for ms, at in timed if at >= window[1] - quarter]
        growth = statistics.median(last) - statistics.median(first) if first and last else None
        ingest = ticks / (games * 30 * measured)
        p99 = delays[int(len(delays) * 0.99)] if delays else None
        errors = sum(len(r["errors"]) for r in results)
        extra = {
            "ingest": round(ingest, 3),
            # What the pages saw: steps acknowledged within the window, per game and second.
            "ingest_acked": round(sum(r["acks"] for r in results) * BATCH_STEPS / (games * 30 * seconds), 3),
            "ack_ms_p50": round(delays[len(delays) // 2], 2) if delays else None,
            "ack_ms_p99": round(p99, 2) if p99 is not None else None,
            "ack_ms_growth": round(growth, 1) if growth is not None else None,
            "keeps_up": bool(
                ingest >= KEEPS_UP_INGEST
                and p99 is not None
                and p99 <= KEEPS_UP_ACK_P99_MS
                and growth is not None
                and growth <= KEEPS_UP_GROWTH_MS
                and errors == 0
            ),
            "errors": errors,
            "rejected": r1["batches_rejected"] - r0["batches_rejected"],
        }
    else:
        ticks = r1["ticks"] - r0["ticks"]
        extra = {"ingest": round(ticks / (games * 30 * measured), 3)}
    return {
        "mode": mode,
        "games": games,
        "cpu_us_per_game_tick": round(cpu / ticks * 1e6, 2) if ticks else None,
        "server_core_share": round(cpu / measured, 3),
        "measured_s": round(measured, 2),
        "clients_core_share": round(client_cpu / seconds, 3),
        **extra,
    }


def _median(points: list[dict]) -> dict:
    out = dict(points[0])
    for key, value in points[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool) and key != "games":
            values = [p[key] for p in points if p[key] is not None]
            out[key] = round(statistics.median(values), 3) if values else None
    if "keeps_up" in out:  # the median of booleans: most runs kept up
        out["keeps_up"] = sum(bool(p["keeps_up"]) for p in points) * 2 > len(points)
    out["runs"] = len(points)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare-games", type=int, default=50, help="games for the CPU comparison (a)")
    parser.add_argument("--capacity", default="500,1000,2000", help="numbers of pyodide games for (b)")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per point")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per point (medians are printed)")
    parser.add_argument(
        "--profile", metavar="DIR", help="write a py-spy profile of the server for each capacity point to DIR"
    )
    args = parser.parse_args()
    summary: dict[str, Any] = {}
    if args.compare_games:
        medians = {}
        for mode in ("server", "pyodide"):
            runs = [
                run_point(mode, args.compare_games, args.seconds, args.clients) for _ in range(args.repeat)
            ]
            for run in runs:
                print(json.dumps(run), flush=True)
            medians[mode] = _median(runs)
            print(
                f"(a) {mode:>7}: {medians[mode]['cpu_us_per_game_tick']} us server CPU per game-tick "
                f"at {args.compare_games} games (median of {len(runs)})",
                flush=True,
            )
        ratio = medians["server"]["cpu_us_per_game_tick"] / medians["pyodide"]["cpu_us_per_game_tick"]
        print(
            f"(a) server-run / browser-run CPU per game-tick: {ratio:.1f}x (goal: at least 20x)", flush=True
        )
        summary["cpu_ratio"] = round(ratio, 1)
        summary["cpu_us_per_game_tick"] = {m: p["cpu_us_per_game_tick"] for m, p in medians.items()}
    for games in [int(n) for n in args.capacity.split(",") if n]:
        runs = [
            run_point("pyodide", games, args.seconds, args.clients, args.profile) for _ in range(args.repeat)
        ]
        for run in runs:
            print(json.dumps(run), flush=True)
        point = _median(runs)
        print(
            f"(b) {games} pyodide games: ingest {point['ingest']:.3f} (acknowledged in the window: "
            f"{point['ingest_acked']:.3f}) of 30 steps/s per game, server "
            f"{point['server_core_share']:.2f} of a core, {point['cpu_us_per_game_tick']} us per step, "
            f"ack p50 {point['ack_ms_p50']} ms p99 {point['ack_ms_p99']} ms (growth "
            f"{point['ack_ms_growth']} ms), clients {point['clients_core_share']:.2f} of a core, "
            f"errors {point['errors']}, keeps up: {point['keeps_up']} "
            f"(median of {len(runs)})",
            flush=True,
        )
        summary.setdefault("capacity", {})[games] = point
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
