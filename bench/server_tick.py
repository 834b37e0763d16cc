"""How many server-stepped games one igym process holds: fps, tick lateness, bytes, CPU per tick.

    uv run --frozen python bench/server_tick.py --games 1,10,100 --seconds 10

For each number of games N, a fresh ``igym run`` server process serves ``server_tick_experiment.py``
(MountainCar, rendered with the demo's render objects, 30 fps). A load-generator process opens N
WebSocket participants that behave like browsers: hello, game_ready, then a key change every 50 ms
(ArrowLeft pressed, released, ArrowRight pressed, released, …) and a ping every second. All games
start together. After a warm-up, for ``--seconds``:

- delivered fps per game (frames received / seconds; median and 5th percentile over games),
- tick lateness (how late each game's tick began after its deadline, on ``time.monotonic()``;
  p50 and p99 over the window's ticks, from the histogram in the server's ``/stats``: to within
  0.02 ms or 2 %, rounded up),
- bytes per frame (as sent),
- server CPU per game-tick (``cpu us``: process CPU time / game-ticks in the window) and the CPU
  spent inside the tickers (``tick us``: stepping, rendering, recording and sending games; the rest
  is sockets, inputs, the event loop and the data sink),
- the env's own CPU per game-tick inside the server (``env us``: thread CPU time of env.step and
  the renderer, sampled at one tick in eight, over the same window), and the framework's share,
  everything but the env's step and render (``fw us`` = ``cpu us`` - ``env us``),
- the bare env.step + render cost measured in this process with no igym code, twice: stepped for
  N envs in the server's rhythm (``env pace``: bursts per tick period with idle time between,
  just before the point; ``fw pace`` = ``cpu us`` - ``env pace``, ``x env`` = ``cpu us`` /
  ``env pace``) and for one env in a tight loop (``env hot``, ``fw hot``). On a VM like this one
  the same Python code costs about twice as much CPU when it runs in short bursts between idle
  periods as in a tight loop (five times at 10 games), so the tight loop understates what the env
  costs in any server; ``env pace`` measures that without igym, and ``env us`` inside igym.

Then, unless ``--max-games 0``, it searches for the largest number of games (up to ``--max-games``,
500 by default) at which every game still delivers at least 29 fps (``fps_min`` ≥ 29), with
fewer measured seconds per probe: doubling from the sweep's largest passing N, then bisecting to
within ``--capacity-step`` games (10 by default).

This VM's speed changes from one minute to the next (the same code has measured 1.5-2x apart a
minute later), so ``env hot`` is measured again before every point, and ``--repeat R`` measures
each point R times and adds a row of medians (the JSON line then holds the medians, and the runs'
framework, p99, CPU and ``env hot`` figures under ``*_runs``).

The table comes first; the last line is one JSON object for the largest N of the sweep (with the
capacity found, ``max_games_29fps``, when searched): ``framework_us_per_tick`` and
``env_us_per_tick`` are ``fw us`` and ``env us``; the bare-env figures follow under their own keys.
(Until 2026-11, ``env_us_per_tick`` held the tight-loop figure, now ``env_us_per_tick_tight_loop``,
and ``framework_us_per_tick`` was ``cpu us`` minus it: compare older notes with that key.)
The load generator shares the machine's cores with the server, as in the issue's target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgpack

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WARMUP_S = 3.0

# MUG 0.1.3 (Flask-SocketIO on eventlet), measured on this kind of machine with the same kind of load,
# as reported in the issue (not re-run here).
MUG_BASELINE = {20: "28 fps", 50: "13-17 fps", 100: "<1 fps, none finished"}
MUG_CPU_US_PER_TICK = "1400-2200"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _envs(count: int, humans: int) -> list[tuple[Any, Any, Any]]:
    """``count`` fresh (raw env, parallel env, render function) as the benchmark's server makes them."""
    sys.path.insert(0, str(ROOT / "igym_core" / "src"))
    sys.path.insert(0, str(HERE))
    from igym_core.envs import as_parallel_env
    from igym_core.examples.mountain_car import draw, make_env

    out = []
    for _ in range(count):
        if humans == 2:
            from server_tick_experiment import TwoCars, draw_two

            raw, render = TwoCars(), draw_two
        else:
            raw, render = make_env(), draw
        out.append((raw, as_parallel_env(raw), render))
    return out


_PATTERN = [0, 1, 2, 1]


def _step_and_draw(raw: Any, env: Any, render: Any, i: int, seed: int) -> None:
    env.step({agent: _PATTERN[(i // 2) % 4] for agent in env.agents})
    render(raw)
    if not env.agents:
        env.reset(seed=seed)


def bare_env_cost_us(steps: int = 2000, runs: int = 5, humans: int = 1) -> float:
    """Median over runs of the mean CPU cost of env.step + draw, one env in a tight loop."""
    results = []
    for run in range(runs):
        ((raw, env, render),) = _envs(1, humans)
        env.reset(seed=run)
        started = time.thread_time()
        for i in range(steps):
            _step_and_draw(raw, env, render, i, run)
        results.append((time.thread_time() - started) / steps * 1e6)
        env.close()
    return statistics.median(results)


def paced_env_cost_us(games: int, humans: int, fps: int, groups: int, seconds: float = 3.0) -> float:
    """CPU cost of env.step + draw for ``games`` envs stepped in the server's rhythm.

    No igym code runs: the envs are stepped in ``groups`` bursts per tick period (one env per
    burst for ``groups=0``), each at its own phase, sleeping in between, as the server's tickers
    do. On this machine the same Python code costs far more CPU in short bursts with idle time
    between them than in a tight loop (about twice at 100 games, five times at 10): caches and branch
    predictors start cold after every idle period. This is the env's cost in a server; the tight
    loop's figure (``bare_env_cost_us``) is its best case.
    """
    envs = _envs(games, humans)
    for index, (_raw, env, _render) in enumerate(envs):
        env.reset(seed=index)
    bursts = games if groups <= 0 else min(groups, games)
    batches = [envs[b::bursts] for b in range(bursts)]
    period = 1.0 / fps
    start = time.monotonic() + 0.05
    cpu = 0.0
    steps = 0
    k = 0
    while k * period < seconds:
        for index, batch in enumerate(batches):
            wait = start + k * period + index * period / bursts - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            began = time.thread_time()
            for raw, env, render in batch:
                _step_and_draw(raw, env, render, k, k)
            cpu += time.thread_time() - began
            steps += len(batch)
        k += 1
    for _raw, env, _render in envs:
        env.close()
    return cpu / steps * 1e6


#: The operator token the bench's servers are started with (``/stats`` needs it).
OPERATOR_TOKEN = secrets.token_urlsafe(24)


def bench_server_env(**extra: str) -> dict[str, str]:
    """The environment of an ``igym run`` server a bench starts: warnings only, as JSON; the bench's
    operator token (``/stats`` needs it); no per-address limit on new participants (every player of a
    bench comes from this one address); the bench folder and igym-core on its path. ``extra`` adds
    to it (or overrides)."""
    return {
        **os.environ,
        "IGYM_LOG_LEVEL": "warning",
        "IGYM_LOG_FORMAT": "json",
        "IGYM_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN": "0",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "igym_core" / "src")]),
        **extra,
    }


def _result_of(process: Any, pipe: Any, deadline: float) -> Any:
    """What ``process`` sends on ``pipe`` by ``deadline`` (time.time()); a process that sends nothing
    by then is killed and the bench fails loudly instead of waiting forever (and a forked child left
    running would also hold up the interpreter's exit, which joins its children)."""
    try:
        if not pipe.poll(max(0.0, deadline - time.time())):
            raise RuntimeError(f"{process.name} sent no result by the end of its window + 30 s")
        return pipe.recv()
    finally:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()


def get_stats(port: int, timeout_s: float = 10) -> dict:
    """``/stats`` with the bench's operator token (a busy server may need a longer ``timeout_s``)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/stats", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.loads(response.read())


#: Clients that call /stats back to back during the measured window (as operators' dashboards
#: might): IGYM_BENCH_STATS_POLLERS=4 shows what that costs the games.
STATS_POLLERS = int(os.environ.get("IGYM_BENCH_STATS_POLLERS", "0"))


def _poll_stats(port: int, pollers: int, until: float) -> list[int]:
    """Start ``pollers`` threads calling /stats until ``until`` (time.time()); the list counts calls."""
    import threading

    calls = [0]

    def poll() -> None:
        while time.time() < until:
            get_stats(port)
            calls[0] += 1

    for _ in range(pollers):
        threading.Thread(target=poll, daemon=True).start()
    return calls


def window_lateness(before: dict, after: dict) -> dict[float, float | None]:
    """Tick lateness p50 and p99 of the ticks between two ``/stats`` answers (from their histograms)."""
    from igym_core.runtime.histogram import quantiles_between

    return quantiles_between(
        before["runtimes"]["server"]["lateness_ms"]["histogram"],
        after["runtimes"]["server"]["lateness_ms"]["histogram"],
    )


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not become healthy")


def stop_server(server: subprocess.Popen) -> None:
    """Stop a server the bench started: SIGTERM, then SIGKILL if it has not exited within 15 s."""
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# --- load generator (its own process) -------------------------------------------------------------
# The load generator shares the machine's two cores with the server, so it is kept lean: each
# participant is a plain asyncio Protocol driving websockets' sans-I/O client (the same framing,
# masking and ping handling as any client, without a task, queue and future per message). What
# goes over the wire is what a browser sends, and every frame received is counted. It stays on
# asyncio's own event loop: on uvloop it used less CPU itself, but the server then measured more CPU
# per tick and later ticks (probably because the participants' inputs arrive more closely
# together), so its results would not compare with earlier runs.

# Every server message is a msgpack map whose first key is "type"; frames have fewer than 16 keys,
# so a frame starts with a fixmap byte and these bytes. Peeking at them counts a frame without
# decoding it; anything else is decoded in full, so a frame encoded differently is still counted.
_FRAME_PREFIX = b"\xa4type\xa5frame"


class _Participant(asyncio.Protocol):
    """One browser-like participant on one WebSocket (see ``_participant``)."""

    def __init__(self, url: str, window: tuple[float, float]) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.ws = ClientProtocol(parse_uri(url), max_size=None)
        self.window = window
        self.transport: asyncio.Transport | None = None
        self.opened = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.status = asyncio.get_running_loop().create_future()
        self.fragments: list[bytes] = []
        self.frames = 0
        self.bytes = 0
        self.last: float | None = None
        self.max_gap = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Frame, Opcode
        from websockets.http11 import Response

        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.BINARY or event.opcode is Opcode.CONT:
                    self.fragments.append(event.data)
                    if event.fin:
                        payload = b"".join(self.fragments) if len(self.fragments) > 1 else self.fragments[0]
                        self.fragments.clear()
                        self._message(payload)
            elif isinstance(event, Response) and not self.opened.done():
                if self.ws.handshake_exc is not None:
                    self.opened.set_exception(self.ws.handshake_exc)
                else:
                    self.opened.set_result(None)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("connection closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    # WebSocket
    def send(self, message: dict) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.ws.send_binary(msgpack.packb(message))
            self._flush()

    async def close(self) -> None:
        """The closing handshake, as a browser does it: send a close frame, let the server close."""
        if self.transport is None or self.transport.is_closing():
            return
        self.ws.send_close(1000)
        self._flush()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), 5)
        except TimeoutError:
            self.transport.close()

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def _message(self, data: bytes) -> None:
        now = time.time()
        if data[1:12] == _FRAME_PREFIX:
            is_frame = True
        else:
            message = msgpack.unpackb(data)
            is_frame = message.get("type") == "frame"
            # The first status naming a game (in a multiplayer scene, the ones before come from
            # the waiting room and name none).
            if message.get("type") == "game_status" and message.get("game_id") and not self.status.done():
                self.status.set_result(message["game_id"])
        if is_frame and self.window[0] <= now < self.window[1]:
            self.frames += 1
            self.bytes += len(data)
            if self.last is not None and now - self.last > self.max_gap:
                self.max_gap = now - self.last
            self.last = now


async def _participant(url: str, start_at: float, window: tuple[float, float], humans: int) -> dict:
    """Hello, game_ready at ``start_at``, then a key change every 50 ms and a ping every second,
    counting the frames received in ``window``."""
    from websockets.uri import parse_uri

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
        pattern = [["ArrowLeft"], [], ["ArrowRight"], []]
        next_ping = time.time() + 1
        while time.time() < window[1] and not client.closed.done():
            seq += 1
            client.send({"type": "input", "game_id": game_id, "seq": seq, "keys": pattern[seq % 4]})
            if time.time() >= next_ping:
                next_ping += 1
                client.send({"type": "ping", "seq": seq, "t": time.time() * 1000})
            await asyncio.sleep(0.05)
    finally:
        await client.close()
    return {
        "frames": client.frames,
        "bytes": client.bytes,
        "max_gap_ms": client.max_gap * 1000 if client.frames > 1 else None,
    }


def _load_main(url: str, games: int, humans: int, start_at: float, window: tuple[float, float], out) -> None:
    async def main() -> list[dict]:
        tasks = [_participant(url, start_at, window, humans) for _ in range(games * humans)]
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(main())
    out.send([r if isinstance(r, dict) else {"error": repr(r)} for r in results])
    out.close()


# --- one sweep point ----------------------------------------------------------------------------
def run_point(
    games: int, seconds: float, humans: int, tick_groups: int | None, fps: int, *, keep_data: bool = False
) -> dict:
    """One measurement of ``games`` games. The server's data directory (tens of MB at 100 games) is
    removed afterwards unless ``keep_data``; then its path is in the result's ``data_dir``."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="igym-bench-")
    env = bench_server_env(
        IGYM_BENCH_STEPS=str(int(fps * (WARMUP_S + seconds + 30))),
        IGYM_BENCH_FPS=str(fps),
        IGYM_BENCH_HUMANS=str(humans),
    )
    if tick_groups is not None:
        env["IGYM_TICK_GROUPS"] = str(tick_groups)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "igym_core.cli",
            "run",
            "server_tick_experiment:experiment",
            "--port",
            str(port),
            "--data-dir",
            data_dir,
        ],
        env=env,
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_healthy(port, server)
        start_at = time.time() + 2.0 + games * 0.01
        window = (start_at + WARMUP_S, start_at + WARMUP_S + seconds)
        parent, child = mp.Pipe(duplex=False)
        loader = mp.Process(
            target=_load_main, args=(f"ws://127.0.0.1:{port}/ws", games, humans, start_at, window, child)
        )
        loader.start()
        time.sleep(max(0.0, window[0] - time.time()))
        before = get_stats(port)
        polled = _poll_stats(port, STATS_POLLERS, until=window[1])
        time.sleep(max(0.0, window[1] - time.time()))
        after_window = get_stats(port)
        results = _result_of(loader, parent, window[1] + 30)
    finally:
        stop_server(server)
        if not keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError(f"{len(errors)} participants failed, e.g. {errors[0]}")
    fps_per_game = sorted(r["frames"] / seconds for r in results)
    fps_min = round(fps_per_game[0], 2)
    s0, s1 = before["runtimes"]["server"], after_window["runtimes"]["server"]
    lateness = window_lateness(before, after_window)
    game_ticks = s1["ticks"] - s0["ticks"]
    cpu = after_window["process_cpu_s"] - before["process_cpu_s"]
    frames = sum(r["frames"] for r in results)
    return {
        "games": games,
        "humans_per_game": humans,
        "fps_median": round(statistics.median(fps_per_game), 2),
        "fps_p5": round(fps_per_game[int(0.05 * len(fps_per_game))], 2),
        "fps_min": fps_min,
        **({"stats_pollers": STATS_POLLERS, "stats_calls": polled[0]} if STATS_POLLERS else {}),
        "lateness_p50_ms": lateness[0.5],
        "lateness_p99_ms": lateness[0.99],
        "bytes_per_frame": round(sum(r["bytes"] for r in results) / frames, 1) if frames else None,
        "cpu_us_per_tick": round(cpu / game_ticks * 1e6, 1) if game_ticks else None,
        "env_us_per_tick": round(
            (s1["env_cpu_s"] - s0["env_cpu_s"]) / (s1["env_cpu_samples"] - s0["env_cpu_samples"]) * 1e6, 1
        )
        if s1["env_cpu_samples"] > s0["env_cpu_samples"]
        else None,
        "tick_cpu_us_per_tick": round((s1["tick_cpu_s"] - s0["tick_cpu_s"]) / game_ticks * 1e6, 1)
        if game_ticks and "tick_cpu_s" in s1
        else None,
        "frames_dropped": s1["frames_dropped"] - s0["frames_dropped"],
        "ticks_skipped": s1["ticks_skipped"] - s0["ticks_skipped"],
        "max_frame_gap_ms": round(max((r["max_gap_ms"] or 0) for r in results), 1),
        **({"data_dir": data_dir} if keep_data else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", default="1,10,100", help="comma-separated numbers of concurrent games")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per point")
    parser.add_argument("--humans", type=int, default=1, help="human players per game")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument(
        "--tick-groups",
        default=None,
        help="IGYM_TICK_GROUPS values to compare, e.g. 4,8,0 (0: a ticker per game)",
    )
    parser.add_argument(
        "--max-games",
        type=int,
        default=500,
        help="search for the largest N up to this at which every game gets >= 29 fps (0: skip)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each point this many times; a 'median' row follows, and the JSON line holds "
        "the medians (a VM's speed can change from one minute to the next)",
    )
    parser.add_argument("--capacity-step", type=int, default=10, help="resolution of that search")
    parser.add_argument(
        "--capacity-seconds", type=float, default=5, help="measured seconds per probe of that search"
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep each point's server data directory (its path is printed) instead of removing it",
    )
    args = parser.parse_args()
    if args.humans not in (1, 2):
        parser.error("--humans is 1 (MountainCar against nobody) or 2 (two cars, one per player)")
    sweep = [int(n) for n in args.games.split(",")]
    groups_options: list[int | None] = (
        [int(g) for g in args.tick_groups.split(",")] if args.tick_groups else [None]
    )
    hot_us = bare_env_cost_us(humans=args.humans)
    what = "two MountainCars, one per player" if args.humans == 2 else "MountainCar"
    print(
        f"bare env.step + render ({what}, demo render objects), one env in a tight loop: {hot_us:.1f} us "
        "CPU per step (median of 5 runs); before each point it is measured again ('env hot'), and the "
        "same bare code stepped for N envs in the server's rhythm ('env pace': bursts per tick "
        "period, idle between)"
    )
    if args.humans == 1 and hot_us > 1.5 * USUAL_HOT_US[1]:
        usual_low, usual_high = USUAL_HOT_US
        slower = hot_us / ((usual_low + usual_high) / 2)
        print(
            f"note: on this kind of VM at its usual speed that figure is {usual_low}-{usual_high} us; "
            f"the machine runs about {slower:.1f}x slower now, and every CPU and lateness figure "
            "below moves with it (compare ratios, or measure again later)"
        )
    print(
        f"baseline, MUG 0.1.3 with the same kind of load (from the issue): {MUG_BASELINE}; "
        f"server CPU {MUG_CPU_US_PER_TICK} us per game-tick"
    )
    print(HEADER)
    last = None
    points: list[dict] = []
    for groups in groups_options:
        for games in sweep:
            runs = []
            for _ in range(max(1, args.repeat)):
                point = measure_point(args, games, groups, args.seconds)
                print(_row(point), flush=True)
                runs.append(point)
            if len(runs) > 1:
                point = median_point(runs)
                print(_row(point) + f"  median of {len(runs)}", flush=True)
            points.append(point)
            last = point
    assert last is not None
    capacity = None
    if args.max_games > 0:
        capacity = find_capacity(args, passing=[p for p in points if p["fps_min"] >= MIN_FPS])
    keys = [
        "games",
        "humans_per_game",
        "fps_median",
        "fps_p5",
        "lateness_p50_ms",
        "lateness_p99_ms",
        "bytes_per_frame",
        "framework_us_per_tick",
        "env_us_per_tick",
        "cpu_us_per_tick",
        "env_us_per_tick_paced_bare",
        "framework_us_per_tick_vs_paced_bare",
        "env_us_per_tick_tight_loop",
        "framework_us_per_tick_vs_tight_loop",
    ]
    summary = {k: last[k] for k in keys}
    summary.update({k: last[k] for k in ("fps_min", "stats_pollers", "stats_calls") if k in last})
    if "runs" in last:
        summary["repeat"] = len(last["runs"])
        run_keys = (
            "framework_us_per_tick",
            "lateness_p99_ms",
            "cpu_us_per_tick",
            "env_us_per_tick_tight_loop",
        )
        for key in run_keys:
            summary[f"{key}_runs"] = [run[key] for run in last["runs"]]
    if capacity is not None:
        summary["max_games_29fps"] = capacity
    print(json.dumps(summary))


MIN_FPS = 29.0
#: The bare MountainCar step + render in a tight loop on a quiet 2-vCPU VM of this kind at its
#: usual speed (2026-11-23); the same VM has also run 2.5-3x slower for hours (2026-12-02).
USUAL_HOT_US = (18, 22)


HEADER = (
    f"{'groups':>6} {'games':>5} {'fps med':>7} {'fps p5':>6} {'fps min':>7} {'late p50':>8} "
    f"{'late p99':>8} {'B/frame':>7} {'cpu us':>7} {'tick us':>7} {'env us':>6} {'fw us':>6} "
    f"{'env pace':>8} {'fw pace':>7} {'x env':>5} {'env hot':>7} {'fw hot':>6} "
    f"{'dropped':>7} {'skipped':>7} {'max gap':>7}  MUG"
)


def measure_point(args: argparse.Namespace, games: int, groups: int | None, seconds: float) -> dict:
    """One sweep point: the bare env's cost in a tight loop and paced for ``games`` envs (how fast
    the machine runs just now), then the server under load."""
    tick_groups = groups if groups is not None else 4
    hot_us = bare_env_cost_us(runs=3, humans=args.humans)
    paced_us = paced_env_cost_us(games, args.humans, args.fps, tick_groups)
    point = run_point(games, seconds, args.humans, groups, args.fps, keep_data=args.keep_data)
    if args.keep_data:
        print(f"data of the next row: {point['data_dir']}", flush=True)
    cpu = point["cpu_us_per_tick"]
    env = point["env_us_per_tick"]
    point["tick_groups"] = tick_groups
    point["framework_us_per_tick"] = round(cpu - env, 1) if cpu is not None and env is not None else None
    point["env_us_per_tick_paced_bare"] = round(paced_us, 1)
    point["framework_us_per_tick_vs_paced_bare"] = round(cpu - paced_us, 1) if cpu is not None else None
    point["env_us_per_tick_tight_loop"] = round(hot_us, 1)
    point["framework_us_per_tick_vs_tight_loop"] = round(cpu - hot_us, 1) if cpu is not None else None
    return point


def median_point(runs: list[dict]) -> dict:
    """The median of each figure over repeated runs of one point (the runs kept under ``runs``)."""
    point = dict(runs[0])
    for key, value in runs[0].items():
        if key in ("games", "humans_per_game", "tick_groups") or isinstance(value, bool):
            continue
        values = [run[key] for run in runs if run[key] is not None]
        if isinstance(value, int):  # counts (dropped frames, skipped ticks) stay whole
            point[key] = statistics.median_low(values) if values else None
        elif isinstance(value, float):
            point[key] = round(statistics.median(values), 3) if values else None
    point["runs"] = runs
    return point


def _row(point: dict) -> str:
    cpu = point["cpu_us_per_tick"]
    paced = point["env_us_per_tick_paced_bare"]
    return (
        f"{point['tick_groups']:>6} {point['games']:>5} {point['fps_median']:>7} {point['fps_p5']:>6} "
        f"{point['fps_min']:>7} {point['lateness_p50_ms']:>8} {point['lateness_p99_ms']:>8} "
        f"{point['bytes_per_frame']:>7} {cpu:>7} {point['tick_cpu_us_per_tick']!s:>7} "
        f"{point['env_us_per_tick']!s:>6} {point['framework_us_per_tick']!s:>6} "
        f"{paced:>8} {point['framework_us_per_tick_vs_paced_bare']:>7} "
        f"{(cpu / paced if cpu and paced else 0):>5.1f} "
        f"{point['env_us_per_tick_tight_loop']:>7} {point['framework_us_per_tick_vs_tight_loop']:>6} "
        f"{point['frames_dropped']:>7} {point['ticks_skipped']:>7} {point['max_frame_gap_ms']:>7}  "
        f"{MUG_BASELINE.get(point['games'], '') if point['humans_per_game'] == 1 else ''}"
    )


def _probe(args: argparse.Namespace, games: int) -> bool:
    point = measure_point(args, games, None, args.capacity_seconds)
    ok = point["fps_min"] >= MIN_FPS
    print(_row(point) + ("  ok" if ok else f"  below {MIN_FPS:g} fps"), flush=True)
    return ok


def find_capacity(args: argparse.Namespace, passing: list[dict]) -> int | None:
    """The largest N <= --max-games at which every game delivers >= 29 fps (None if not even 1)."""
    print(f"capacity search: largest N (<= {args.max_games}) with every game at >= {MIN_FPS:g} fps")
    low = max((p["games"] for p in passing), default=0)  # known to pass
    high = None  # known to fail
    n = max(low * 2, 10) if low else 1
    while high is None:
        n = min(n, args.max_games)
        if _probe(args, n):
            low = n
            if n == args.max_games:
                break
            n *= 2
        else:
            high = n
    while high is not None and high - low > args.capacity_step:
        middle = (low + high) // 2
        if _probe(args, middle):
            low = middle
        else:
            high = middle
    result = low or None
    limit = f"fails at {high}" if high is not None else "the search's limit"
    print(f"largest N with every game at >= {MIN_FPS:g} fps: {result} ({limit})", flush=True)
    return result


if __name__ == "__main__":
    main()
