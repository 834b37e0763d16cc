"""The admin dashboard with many participants: an ``igym run`` server gets ``--participants``
simulated participants (Python WebSocket clients spread over the study's pages), then an admin logs
in and watches.

    uv run --frozen python bench/admin_snapshot.py --participants 500 --seconds 18

Prints one JSON line: how long the server took to build each snapshot (``build_ms``: the live view,
errors and actions, JSON-encoded; median and max), its size in bytes, the time between snapshots
as the admin received them (``snapshot_interval_ms``: p50/p99/max; the server sends one a second),
how many arrived, and the participants' ping round trip (p50/p99, ms) in a window without an admin
connected and one with the admin connected (the dashboard must not slow the study).

    uv run --frozen python bench/admin_snapshot.py --in-process 500,2000,10000

The snapshot's build alone, in this process, with that many participants in memory: one JSON line
per size with ``build_ms`` (the snapshot as it is: participants by scene kept as they move) and
``with_recount_ms`` (the same plus the loop over every participant that counted them by scene
until stop 26: the figure before that change, measured in the same run, interleaved).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import msgpack
import websockets

ROOT = Path(__file__).resolve().parent.parent
STUDY = "tests.studies.admin_study:pages"
TOKEN = "admin-token-for-the-benchmark-000000"
ROUNDS = 3
sys.path.insert(0, str(ROOT / "igym_core" / "src"))
from igym_core.protocol.messages import PROTOCOL_VERSION  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _login(port: int) -> str:
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/admin/login",
        data=urllib.parse.urlencode({"token": TOKEN}).encode(),
        method="POST",
    )
    try:
        opener.open(request, timeout=10)
    except urllib.error.HTTPError as answer:  # the 303
        return answer.headers["Set-Cookie"].split(";")[0]
    raise RuntimeError("login did not redirect")


async def _participant(port: int, index: int, pings: list[tuple[float, float]], stop: asyncio.Event) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        hello = {"type": "hello", "protocol": PROTOCOL_VERSION, "token": None, "params": {}}
        await ws.send(msgpack.packb(hello))
        await ws.recv()
        for seq in range(index % 3):  # a third each on intro, middle and end
            await ws.send(msgpack.packb({"type": "submit", "seq": seq + 1, "position": seq, "answers": {}}))
        seq = 100
        while not stop.is_set():
            seq += 1
            sent = time.perf_counter()
            await ws.send(msgpack.packb({"type": "ping", "seq": seq, "t": 0.0}))
            while True:
                reply = msgpack.unpackb(await ws.recv())
                if reply.get("type") == "pong" and reply.get("seq") == seq:
                    break
            pings.append((time.monotonic(), (time.perf_counter() - sent) * 1000))
            await asyncio.sleep(1.0)


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(values)
    return {
        "p50": round(values[len(values) // 2], 2),
        "p99": round(values[min(len(values) - 1, int(len(values) * 0.99))], 2),
    }


async def _run(port: int, participants: int, seconds: float) -> dict[str, object]:
    pings: list[tuple[float, float]] = []
    stop = asyncio.Event()
    tasks = []
    for i in range(participants):
        tasks.append(asyncio.create_task(_participant(port, i, pings, stop)))
        if i % 50 == 49:
            await asyncio.sleep(0.2)
    await asyncio.sleep(3)  # everyone in
    cookie = await asyncio.to_thread(_login, port)
    sizes: list[int] = []
    builds: list[float] = []
    last: dict[str, object] = {}
    quiet_windows: list[tuple[float, float]] = []
    watched_windows: list[tuple[float, float]] = []
    intervals: list[float] = []  # ms between snapshots received (the first, sent on connect, left out)
    window = seconds / (2 * ROUNDS)
    for _round in range(ROUNDS):  # alternate, so that the machine's other load falls on both alike
        quiet_from = time.monotonic()
        await asyncio.sleep(window)
        quiet_windows.append((quiet_from, time.monotonic()))
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/admin/ws", additional_headers={"Cookie": cookie}, max_size=None
        ) as admin:
            watched_from = time.monotonic()
            deadline = watched_from + window
            arrivals: list[float] = []
            while time.monotonic() < deadline:
                try:
                    text = await asyncio.wait_for(
                        admin.recv(), timeout=max(0.01, deadline - time.monotonic())
                    )
                except TimeoutError:
                    break
                message = json.loads(text)
                if message["type"] == "snapshot":
                    arrivals.append(time.monotonic())
                    sizes.append(len(text))
                    if message["build_ms"]:
                        builds.append(message["build_ms"])
                    last = message
            watched_windows.append((watched_from, time.monotonic()))
            intervals.extend((b - a) * 1000 for a, b in itertools.pairwise(arrivals[1:]))
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    quiet = [ms for at, ms in pings if any(a <= at < b for a, b in quiet_windows)]
    watched = [ms for at, ms in pings if any(a <= at < b for a, b in watched_windows)]
    return {
        "participants": participants,
        "in_memory": last.get("participants", {}).get("in_memory") if last else None,  # type: ignore[union-attr]
        "snapshots": len(sizes),
        "snapshot_bytes_median": int(statistics.median(sizes)) if sizes else None,
        "build_ms_median": round(statistics.median(builds), 3) if builds else None,
        "build_ms_max": round(max(builds), 3) if builds else None,
        "snapshot_interval_ms": _quantiles(intervals)
        | ({"max": round(max(intervals), 1)} if intervals else {}),
        "ping_ms_without_admin": _quantiles(quiet),
        "ping_ms_with_admin": _quantiles(watched),
    }


async def _in_process(sizes: list[int]) -> None:
    import tempfile as _tempfile

    from igym_core.admin.live import recount_by_scene
    from igym_core.protocol.messages import Hello
    from igym_core.server.app import create_app
    from igym_core.settings import Settings

    sys.path.insert(0, str(ROOT))
    settings = Settings(
        data_dir=_tempfile.mkdtemp(prefix="igym-admin-bench-"),
        max_new_participants_per_ip_per_min=0,
        log_level="warning",
    )
    app = create_app(settings, STUDY)
    study, admin = app.state.study, app.state.admin

    async def send(message: object) -> None:
        return None

    async def close(code: int, reason: str) -> None:
        return None

    async with study.recorder:
        for size in sizes:
            while len(study.by_id) < size:
                connection = study.open_connection(send, close)
                await study.hello(connection, Hello(protocol=PROTOCOL_VERSION, token=None, params={}))
            kept = []
            recounted = []
            for _ in range(20):  # interleaved, so that the machine's other load falls on both alike
                started = time.perf_counter()
                text = admin.snapshot_text()
                kept.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                recount_by_scene(study.by_id.values())  # what the snapshot did before (stop 26)
                recounted.append((time.perf_counter() - started) * 1000 + kept[-1])
            kept.sort()
            recounted.sort()
            print(
                json.dumps(
                    {
                        "participants": size,
                        "build_ms_median": round(kept[len(kept) // 2], 3),
                        "build_ms_min": round(kept[0], 3),
                        "with_recount_ms_median": round(recounted[len(recounted) // 2], 3),
                        "with_recount_ms_min": round(recounted[0], 3),
                        "snapshot_bytes": len(text),
                    }
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=500)
    parser.add_argument(
        "--seconds", type=float, default=18, help="in 3 rounds: a window without the admin, then one with it"
    )
    parser.add_argument("--in-process", default="", help="comma-separated study sizes (see above)")
    args = parser.parse_args()
    if args.in_process:
        asyncio.run(_in_process([int(n) for n in args.in_process.split(",")]))
        return
    port = _free_port()
    data = tempfile.mkdtemp(prefix="igym-admin-bench-")
    env = {
        **os.environ,
        "IGYM_ADMIN_TOKEN": TOKEN,
        "IGYM_LOG_FORMAT": "json",
        "IGYM_LOG_LEVEL": "warning",
        "IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN": "0",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "igym_core.cli", "run", STUDY, "--port", str(port), "--data-dir", data],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        result = asyncio.run(_run(port, args.participants, args.seconds))
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
