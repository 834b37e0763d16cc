"""Fixtures for end-to-end tests: a real `igym run` server process and headless Debian Chromium."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import igym_core.testing
from igym_core.testing.live_server import free_port
from igym_core.testing.support import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
__all__ = ["ROOT", "LiveServer", "free_port"]


class LiveServer(igym_core.testing.LiveServer):
    """:class:`igym_core.testing.LiveServer` run from the repository root (so that targets such as
    ``tests.studies.saving_study:experiment`` and ``examples/*.py`` resolve)."""

    def __init__(self, target: str, data_dir: Path, *, cwd: Path | None = None, **kwargs: Any) -> None:
        super().__init__(target, data_dir, cwd=cwd or ROOT, **kwargs)


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


#: The window of a test page unless the test asks for another (``new_page(viewport=...)``).
DEFAULT_VIEWPORT = {"width": 1100, "height": 900}


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Pages in fresh browser contexts (separate storage, like separate people or devices).

    ``new_page(**options)``: a page in a new context made with Playwright's ``new_context`` options
    (``viewport``, ``user_agent``, ``locale``, ...), each of which replaces the default
    (``DEFAULT_VIEWPORT``). ``new_page(context)``: another page in that context, which already has
    its options (giving options too is an error, not silently ignored).
    """
    contexts: list[Any] = []

    def make(context: Any = None, **options: Any) -> Any:
        if context is not None and options:
            raise TypeError(
                f"new_page(context, {', '.join(options)}=...): a page in an existing context has that "
                "context's options; give the options without a context to get a new one."
            )
        if context is None:
            context = browser.new_context(**{"viewport": DEFAULT_VIEWPORT, **options})
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
