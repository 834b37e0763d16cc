"""Fixtures for end-to-end tests: a real `igym run` server process and headless Debian Chromium."""

from __future__ import annotations

import concurrent.futures
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from igym_core.testing.support import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
#: The operator token of the servers tests start (unless a test gives its own).
OPERATOR_TOKEN = secrets.token_urlsafe(24)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """`igym run TARGET` in a child process, on a free loopback port."""

    def __init__(
        self,
        target: str,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        args: list[str] | None = None,
        command: list[str] | None = None,
    ) -> None:
        """``command``: how to start igym (default: this interpreter's ``-m igym_core.cli``)."""
        self.target = target
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        #: The operator token the server runs with (``/stats`` needs it; see :meth:`stats`).
        self.operator_token = (env or {}).get("IGYM_OPERATOR_TOKEN", OPERATOR_TOKEN)
        full_env = {
            **os.environ,
            "IGYM_LOG_FORMAT": "json",
            "IGYM_OPERATOR_TOKEN": OPERATOR_TOKEN,
            **(env or {}),
        }
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                *(command or [sys.executable, "-m", "igym_core.cli"]),
                "run",
                target,
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                *(args or []),
            ],
            cwd=cwd or ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"igym run exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"igym run did not become healthy in {timeout_s}s:\n{self.log()}")

    def stats(self) -> dict[str, Any]:
        """``GET /stats`` with the operator token."""
        request = urllib.request.Request(
            f"{self.url}/stats", headers={"Authorization": f"Bearer {self.operator_token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def start(target: str, **kwargs: Any) -> LiveServer:
        server = LiveServer(target, tmp_path / "data", **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class BrowserThread:
    """The one thread that owns Playwright and runs every test that uses the browser.

    Playwright's sync API marks its event loop as running in the thread that started it, for as
    long as it runs; in the main thread, that would make every later ``asyncio.run`` (or anyio's
    run) fail with "cannot be called from a running event loop", so a test's outcome would depend
    on whether a browser test ran before it. Here the loop lives in this thread only: each test
    that uses the ``browser`` fixture runs here, setup to teardown (see
    ``pytest_runtest_protocol``), and the main thread never sees the loop.
    """

    def __init__(self) -> None:
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._thread_id: int | None = None

    def _mark(self) -> None:
        self._thread_id = threading.get_ident()

    def call(self, work: Callable[[], Any]) -> Any:
        """``work()`` in the browser thread (at once when already there); its result or error."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="igym-browser", initializer=self._mark
            )
        if threading.get_ident() == self._thread_id:
            return work()
        return self._executor.submit(work).result()

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


BROWSER_THREAD = BrowserThread()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """A test that uses the browser runs (setup, call, teardown) in the browser thread."""
    if "browser" not in getattr(item, "fixturenames", ()):
        return None
    from _pytest.runner import runtestprotocol

    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    BROWSER_THREAD.call(lambda: runtestprotocol(item, nextitem=nextitem))
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pytest-timeout's default (SIGALRM) works in the main thread only: browser tests, which run
    in the browser thread, are timed by a timer thread (which ends the run on a timeout)."""
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(method="thread"))


def pytest_unconfigure(config: pytest.Config) -> None:
    BROWSER_THREAD.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium for the session, driven from the browser thread only."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; `make test` installs it (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    def start() -> tuple[Any, Any]:
        playwright = sync_playwright().start()
        try:
            return playwright, playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
        except BaseException:
            playwright.stop()
            raise

    def stop() -> None:
        try:
            browser.close()
        finally:
            playwright.stop()

    playwright, browser = BROWSER_THREAD.call(start)
    yield browser
    # The session ends after the last test, which may not be a browser test (main thread).
    BROWSER_THREAD.call(stop)


def _only_loopback(route: Any) -> None:
    url = route.request.url
    if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "http://localhost", "data:", "blob:")):
        route.continue_()
    else:
        route.abort()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Pages in fresh browser contexts (separate storage, like separate people or devices)."""
    contexts: list[Any] = []

    def make(context: Any = None, **options: Any) -> Any:
        if context is None:
            context = browser.new_context(viewport={"width": 1100, "height": 900}, **options)
            context.route("**/*", _only_loopback)
            contexts.append(context)
        page = context.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """Save a full-page screenshot under test-artifacts/<test name>/ (look at them)."""
    directory = ARTIFACTS / request.node.name
    directory.mkdir(parents=True, exist_ok=True)

    def shot(page: Any, name: str) -> Path:
        path = directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        return path

    return shot


@pytest.fixture
def client_page(live_server: Callable[..., LiveServer], new_page: Callable[..., Any]) -> Any:
    """A page with the client loaded (the example study's first scene shown)."""
    from playwright.sync_api import expect

    server = live_server("igym_core.examples.survey_study:experiment")
    page = new_page()
    page.goto(f"{server.url}/?PROLIFIC_PID=parity")
    expect(page.locator("#igym-main")).to_have_attribute("data-scene-kind", "start")
    return page
