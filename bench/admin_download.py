"""The dashboard's data downloads on a large study: how much memory the server (and the export's
child process) takes while an admin prepares the tables (the admin socket's ``export_data``:
``igym export`` in a child process), downloads them (`GET /admin/download`) and downloads the raw
files (`GET /admin/download/raw`).

    uv run --frozen python bench/admin_download.py --rows 400000

Writes a ``steps.jsonl`` of ``--rows`` step records (about 440 bytes each: what a game study's
steps look like) into a fresh data directory, starts ``igym run`` on it, logs in as the admin,
asks for the export and waits for the snapshot that says it is ready, then downloads each archive
(read at once, as a browser does), sampling every 50 ms the resident memory (VmRSS) of the server
and of its child processes. Prints one JSON line for the export (seconds, the server's RSS before
and at its peak, the export child's peak RSS) and one per download (bytes, seconds, RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDY = "tests.studies.admin_study:pages"
TOKEN = "admin-token-for-the-benchmark-000000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _timestamp(i: int) -> str:
    return f"2026-12-05T12:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}Z"


def _write_steps(path: Path, rows: int) -> int:
    rng = random.Random(1)
    with path.open("w", encoding="utf-8") as out:
        for i in range(rows):
            participant = f"p-{i % 500:012x}"
            out.write(
                json.dumps(
                    {
                        "experiment_id": "admin_pages",
                        "run_id": "20261205T000000Z-bench",
                        "timestamp": _timestamp(i),
                        "participant_id": participant,
                        "game_id": f"g-{i // 6000:010x}",
                        "scene_id": "count",
                        "episode": (i // 600) % 10,
                        "step": i % 600,
                        "agent": "human",
                        "action": rng.randrange(5),
                        "reward": rng.random(),
                        "terminated": False,
                        "truncated": False,
                        "observation": [rng.random() for _ in range(4)],
                        "info": {"x": rng.random(), "y": rng.random()},
                        "input": "keys",
                    },
                    separators=(",", ":"),
                )
                + "\n"
            )
    return path.stat().st_size


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.server_peak_kb = 0
        self.child_peak_kb = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.server_peak_kb = max(self.server_peak_kb, _rss_kb(self.pid))
            for child in _children(self.pid):
                self.child_peak_kb = max(self.child_peak_kb, _rss_kb(child))
            time.sleep(0.05)


def _login(port: int) -> str:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/admin/login",
        data=urllib.parse.urlencode({"token": TOKEN}).encode(),
        method="POST",
    )
    try:
        urllib.request.build_opener(NoRedirect).open(request, timeout=10)
    except urllib.error.HTTPError as answer:
        return answer.headers["Set-Cookie"].split(";")[0]
    raise RuntimeError("login did not redirect")


def _export(port: int, pid: int, cookie: str) -> dict[str, object]:
    from websockets.sync.client import connect

    before = _rss_kb(pid)
    sampler = Sampler(pid)
    sampler.start()
    started = time.monotonic()
    with connect(
        f"ws://127.0.0.1:{port}/admin/ws",
        additional_headers={"Cookie": cookie},
        origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
    ) as ws:
        ws.send(json.dumps({"type": "export_data"}))
        while True:
            message = json.loads(ws.recv(timeout=900))
            state = message.get("export", {}).get("state") if message["type"] == "snapshot" else None
            if state in ("ready", "failed"):
                break
    sampler.stopped.set()
    sampler.join()
    return {
        "export": state,
        "seconds": round(time.monotonic() - started, 2),
        "export_reported_s": message["export"].get("duration_s"),
        "tables_bytes": (message["export"].get("ready") or {}).get("bytes"),
        "server_rss_mb_before": round(before / 1024, 1),
        "server_rss_mb_peak": round(sampler.server_peak_kb / 1024, 1),
        "export_child_rss_mb_peak": round(sampler.child_peak_kb / 1024, 1),
    }


def _download(port: int, pid: int, cookie: str, path: str) -> dict[str, object]:
    before = _rss_kb(pid)
    sampler = Sampler(pid)
    sampler.start()
    started = time.monotonic()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Cookie": cookie})
    size = 0
    with urllib.request.urlopen(request, timeout=900) as response:
        first_byte_s = time.monotonic() - started
        while chunk := response.read(256 * 1024):
            size += len(chunk)
    elapsed = time.monotonic() - started
    sampler.stopped.set()
    sampler.join()
    return {
        "download": path,
        "bytes": size,
        "first_byte_s": round(first_byte_s, 2),
        "seconds": round(elapsed, 2),
        "server_rss_mb_before": round(before / 1024, 1),
        "server_rss_mb_peak": round(sampler.server_peak_kb / 1024, 1),
        "export_child_rss_mb_peak": round(sampler.child_peak_kb / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="igym-admin-download-"))
    (data / "admin_pages").mkdir()
    steps_bytes = _write_steps(data / "admin_pages" / "steps.jsonl", args.rows)
    port = _free_port()
    env = {**os.environ, "IGYM_ADMIN_TOKEN": TOKEN, "IGYM_LOG_FORMAT": "json", "IGYM_LOG_LEVEL": "warning"}
    server = subprocess.Popen(
        [sys.executable, "-m", "igym_core.cli", "run", STUDY, "--port", str(port), "--data-dir", str(data)],
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
        cookie = _login(port)
        print(json.dumps({"rows": args.rows, "steps_jsonl_mb": round(steps_bytes / 2**20, 1)}))
        print(json.dumps(_export(port, server.pid, cookie)), flush=True)
        for path in ("/admin/download", "/admin/download/raw"):
            print(json.dumps(_download(port, server.pid, cookie, path)), flush=True)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
