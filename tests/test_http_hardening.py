"""A real `igym run` server under the QA's attacks: slow and idle sockets, probing paths, /stats,
cross-site WebSockets. Each test starts its own server process (tests/conftest.py: LiveServer)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from igym_core.protocol.messages import PROTOCOL_VERSION
from tests.conftest import ROOT, LiveServer, free_port

SURVEY = "igym_core.examples.survey_study:experiment"
TOKEN = "operator-token-for-tests-0123456789"


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _raw_get(port: int, raw_path: str) -> tuple[int, bytes]:
    """A GET with the path sent byte for byte (urllib would re-quote it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {raw_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _wait_all_closed(socks: list[socket.socket], timeout_s: float) -> float:
    """Wait until the server has closed every socket (EOF or reset); return when the first closed."""
    started = time.monotonic()
    first: float | None = None
    open_ = set(socks)
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while open_:
            left = timeout_s - (time.monotonic() - started)
            assert left > 0, f"{len(open_)} of {len(socks)} connections still open after {timeout_s} s"
            for key, _ in selector.select(min(left, 0.5)):
                sock = key.fileobj
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    data = b""
                if not data:
                    selector.unregister(sock)
                    open_.discard(sock)
                    first = first or time.monotonic()
    assert first is not None
    return first


def test_slowloris_and_idle_connections_are_shed_while_health_and_the_page_answer(
    live_server: Callable[..., LiveServer],
) -> None:
    header_s, idle_s = 1.5, 1.0
    server = live_server(
        SURVEY, env={"IGYM_HEADER_TIMEOUT_S": str(header_s), "IGYM_IDLE_TIMEOUT_S": str(idle_s)}
    )
    opened = time.monotonic()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(300)]
    slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(300)]
    for sock in slow:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    stop = threading.Event()

    def trickle() -> None:  # one more header byte every 0.3 s: each send would reset a naive timer
        while not stop.wait(0.3):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"X")

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        # A client whose headers arrive in two parts well within the timeout is served.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as polite:
            polite.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            time.sleep(0.4)
            polite.sendall(b"Connection: close\r\n\r\n")
            assert polite.recv(100).startswith(b"HTTP/1.1 200")
        # While the flood is open, the server answers.
        assert _get(f"{server.url}/health")[0] == 200
        first_closed = _wait_all_closed(idle, timeout_s=idle_s + 10)
        assert first_closed - opened >= idle_s - 0.2  # closed by the idle timeout, not at once
        first_closed = _wait_all_closed(slow, timeout_s=header_s + 10)
        assert first_closed - opened >= header_s - 0.2  # the trickle did not extend it, nor cut it short
    finally:
        stop.set()
        trickler.join()
        for sock in idle + slow:
            sock.close()
    status, _, page = _get(f"{server.url}/?PROLIFIC_PID=after-the-flood")
    assert status == 200 and b"/client/igym.js" in page
    assert _get(f"{server.url}/health")[0] == 200
    # A kept-alive connection that goes quiet after a response is closed too.
    with socket.create_connection(("127.0.0.1", server.port)) as kept:
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert kept.recv(4096).startswith(b"HTTP/1.1 200")
        _wait_all_closed([kept], timeout_s=idle_s + 10)
    assert "request_headers_timed_out" in server.log()


def test_a_participant_websocket_outlives_the_http_timeouts(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(SURVEY, env={"IGYM_HEADER_TIMEOUT_S": "0.5", "IGYM_IDLE_TIMEOUT_S": "0.5"})
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        ws.send(msgpack.packb({"type": "hello", "protocol": PROTOCOL_VERSION, "token": None, "params": {}}))
        assert msgpack.unpackb(ws.recv(timeout=5))["type"] == "welcome"
        time.sleep(1.5)  # three times both HTTP timeouts, silent
        ws.send(msgpack.packb({"type": "ping", "seq": 1, "t": 1.0}))
        replies = []
        while not any(r["type"] == "pong" for r in replies):
            replies.append(msgpack.unpackb(ws.recv(timeout=5)))


def _no_paths(body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    assert "/work" not in text and "site-packages" not in text and "igym_core" not in text, text
    assert json.loads(body)["detail"] in ("Not Found", "Bad Request", "Unauthorized", "Method Not Allowed")


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "SAMEORIGIN",
}


def _check_security_headers(headers: dict[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (name, headers)
    csp = headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "frame-ancestors 'self'" in csp
    assert "unsafe-eval'" not in csp.replace("'wasm-unsafe-eval'", "")


def test_production_pages_leak_nothing(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(SURVEY)
    # 404s name no path, whether a route, a static file or a static directory is missing.
    for path in (
        "/nope",
        "/client/nope.js",
        "/client/chunks",
        "/client/chunks/",
        "/client/a%2f..%2f..%2fcli.py",
    ):
        status, headers, body = _get(f"{server.url}{path}")
        assert status == 404, path
        _no_paths(body)
        _check_security_headers(headers)
    # No OpenAPI pages (they load redoc/swagger from a CDN) and nothing under /schema.
    for path in ("/schema", "/schema/", "/schema/openapi.json", "/schema/swagger", "/schema/redoc"):
        assert _get(f"{server.url}{path}")[0] == 404, path
    # Source maps are built but not served in production.
    client_map = "/client/igym.js.map"
    assert _get(f"{server.url}/client/igym.js")[0] == 200
    assert _get(f"{server.url}{client_map}")[0] == 404
    # A NUL or an undecodable escape in a path is a bad request, not a server error.
    for raw in ("/client/%00", "/client/igym%00.js", "/%00", "/client/%ff", "/client/%0a"):
        status, body = _raw_get(server.port, raw)
        assert status == 400, raw
        _no_paths(body)
    # Every response carries the security headers: page, script, health, errors.
    for path in ("/?PROLIFIC_PID=x", "/client/igym.js", "/health", "/favicon.ico"):
        status, headers, _ = _get(f"{server.url}{path}")
        assert status == 200, path
        _check_security_headers(headers)
    status, headers, body = _get(f"{server.url}/favicon.ico")
    assert headers["content-type"].startswith("image/svg+xml") and body.startswith(b"<svg")
    assert "Traceback" not in server.log()


def test_source_maps_are_served_in_dev_mode(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(SURVEY, args=["--dev"])
    status, _, body = _get(f"{server.url}/client/igym.js.map")
    assert status == 200 and json.loads(body)["version"] == 3


def _stats(server: LiveServer, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
    return _get(f"{server.url}/stats", {"Authorization": authorization} if authorization else None)


def test_stats_needs_the_operator_token(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(SURVEY, env={"IGYM_OPERATOR_TOKEN": TOKEN})
    for authorization in (
        None,
        "Bearer",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        TOKEN,
        f"Basic {TOKEN}",
    ):
        status, headers, body = _stats(server, authorization)
        assert status == 401, authorization
        assert json.loads(body) == {"status_code": 401, "detail": "Unauthorized"}
        assert headers.get("www-authenticate") == "Bearer"
    status, headers, body = _stats(server, f"Bearer {TOKEN}")
    assert status == 200
    stats = json.loads(body)
    assert stats["participants"] == 0 and "process_cpu_s" in stats
    assert headers.get("cache-control") == "no-store"
    assert TOKEN not in server.log()  # a chosen token is never printed or logged


def test_without_a_token_set_igym_run_prints_a_random_one_once(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(SURVEY, env={"IGYM_OPERATOR_TOKEN": ""})
    log = server.log()
    found = re.findall(r"operator token for /stats[^:]*: (\S+)", log)
    assert len(found) == 1, log
    token = found[0]
    assert len(token) >= 32 and log.count(token) == 1
    assert _stats(server, f"Bearer {token}")[0] == 200
    assert _stats(server, None)[0] == 401


def _hello(ws: Any) -> str:
    ws.send(msgpack.packb({"type": "hello", "protocol": PROTOCOL_VERSION, "token": None, "params": {}}))
    return msgpack.unpackb(ws.recv(timeout=5))["type"]


@pytest.mark.parametrize("allowed", [False, True])
def test_the_participant_websocket_checks_the_origin(
    live_server: Callable[..., LiveServer], allowed: bool
) -> None:
    extra = "https://study.example.org"
    server = live_server(SURVEY, env={"IGYM_ALLOWED_ORIGINS": extra} if allowed else {})
    url = f"ws://127.0.0.1:{server.port}/ws"
    with connect(url, origin=f"http://127.0.0.1:{server.port}") as ws:  # the page's own origin
        assert _hello(ws) == "welcome"
    with connect(url) as ws:  # no Origin: not a browser (benchmarks, tests, scripts)
        assert _hello(ws) == "welcome"
    for origin in ("https://evil.example", f"http://127.0.0.1:{server.port + 1}", "null"):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, origin=origin)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
    if allowed:
        with connect(url, origin=extra) as ws:  # type: ignore[arg-type]
            assert _hello(ws) == "welcome"
    else:
        with pytest.raises(InvalidStatus):
            connect(url, origin=extra)  # type: ignore[arg-type]
    assert "websocket_origin_rejected" in server.log()


def test_igym_run_raises_its_soft_open_files_limit_to_the_hard_one(tmp_path: Path) -> None:
    # The QA's server had the common soft limit of 1,024 descriptors while its hard limit allowed more.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"needs a finite hard limit above 256; this machine's is {hard}")
    port = free_port()
    launcher = (
        "import resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard})); "
        "from igym_core.cli import main; "
        f"sys.exit(main(['run', '{SURVEY}', '--port', '{port}', '--data-dir', sys.argv[1]]))"
    )
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", launcher, str(tmp_path / "data")],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "IGYM_LOG_FORMAT": "json"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, headers, _ = _get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "server.log"
                ).read_text()
                time.sleep(0.1)
        assert status == 200
        assert "server" not in headers  # no "server: uvicorn"
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
        assert line.split()[3:5] == [str(hard), str(hard)], line
    finally:
        process.terminate()
        process.wait(15)
        log.close()
    assert "open_files_limit_raised" in (tmp_path / "server.log").read_text()
