"""The QA's descriptor-exhaustion run, replayed: an ``igym run`` server limited to ``--nofile`` open
files gets ``--connections`` sockets, half idle and half sending a request's headers a byte at a
time; a probe asks ``/health`` every 0.25 s.

    uv run --frozen python bench/connection_flood.py --connections 1100 --nofile 1024 --seconds 25

Prints, per second, how many flood sockets the server still holds open and how many ``/health``
probes answered, then one JSON line: when the first and the last flood socket were closed by the
server, and how long ``/health`` failed. It runs whatever ``igym_core`` is importable
(``PYTHONPATH=<checkout>/igym_core/src`` measures an older checkout). Timeouts are the server's own
(``IGYM_HEADER_TIMEOUT_S``, ``IGYM_IDLE_TIMEOUT_S`` pass through).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SURVEY = "igym_core.examples.survey_study:experiment"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1100)
    parser.add_argument("--nofile", type=int, default=1024, help="the server's open-files limit")
    parser.add_argument("--seconds", type=float, default=25)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 512), hard))
    port = _free_port()
    data = tempfile.mkdtemp(prefix="igym-flood-")
    launcher = (
        "import resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({args.nofile}, {args.nofile})); "
        "from igym_core.cli import main; "
        f"sys.exit(main(['run', '{SURVEY}', '--port', '{port}', '--data-dir', sys.argv[1]]))"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", launcher, data],
        cwd=ROOT,
        env={**os.environ, "IGYM_LOG_LEVEL": "warning", "IGYM_LOG_FORMAT": "json"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    socks: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while not _health(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        started = time.monotonic()
        for _ in range(args.connections):
            sock = socket.socket()
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", port))
            socks.append(sock)
        time.sleep(0.2)
        slow = socks[1::2]
        for sock in slow:
            with contextlib.suppress(OSError):
                sock.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(1.0):
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.send(b"X")

        threading.Thread(target=trickle, daemon=True).start()
        selector = selectors.DefaultSelector()
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        open_ = set(socks)
        closed_at: list[float] = []
        probes: list[tuple[float, bool]] = []
        next_probe = started
        print(f"{'s':>4} {'flood open':>10} {'health ok':>9}")
        second = 0
        while time.monotonic() - started < args.seconds:
            for key, _ in selector.select(0.05):
                sock = key.fileobj
                try:
                    chunk = sock.recv(4096)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    selector.unregister(sock)
                    open_.discard(sock)  # type: ignore[arg-type]
                    closed_at.append(time.monotonic() - started)
            now = time.monotonic()
            if now >= next_probe:
                probes.append((now - started, _health(port)))
                next_probe += 0.25
            if now - started >= second + 1:
                second += 1
                recent = [ok for t, ok in probes if second - 1 <= t < second]
                print(f"{second:>4} {len(open_):>10} {sum(recent):>4}/{len(recent)}", flush=True)
        stop.set()
        failing = [t for t, ok in probes if not ok]
        print(
            json.dumps(
                {
                    "connections": args.connections,
                    "nofile": args.nofile,
                    "first_closed_s": round(closed_at[0], 2) if closed_at else None,
                    "last_closed_s": round(closed_at[-1], 2) if len(open_) == 0 and closed_at else None,
                    "still_open": len(open_),
                    "health_probes": len(probes),
                    "health_failed": len(failing),
                    "health_failed_last_s": round(failing[-1], 2) if failing else None,
                }
            )
        )
    finally:
        for sock in socks:
            sock.close()
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
