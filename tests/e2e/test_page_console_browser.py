"""What a participant's browser console shows on a production page: no failed request (the favicon
included, issue 17), no Content-Security-Policy violation, and the icon igym serves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.conftest import LiveServer

EXAMPLE = "igym_core.examples.survey_study:experiment"


def _watch(page: Any) -> tuple[list[str], list[str], list[str]]:
    failed: list[str] = []
    console: list[str] = []
    requested: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: failed.append(f"failed {r.url}"))
    page.on("request", lambda r: requested.append(r.url))
    page.on(
        "console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None
    )
    return failed, console, requested


def test_the_participant_page_has_an_icon_and_a_clean_console(
    live_server: Callable[..., LiveServer], new_page: Callable[..., Any], shots: Callable[[Any, str], Any]
) -> None:
    server = live_server(EXAMPLE)
    page = new_page()
    failed, console, requested = _watch(page)
    page.goto(f"{server.url}/?PROLIFIC_PID=console-check")
    expect(page.locator("#igym-main")).to_have_attribute("data-scene-kind", "start")
    page.wait_for_load_state("networkidle")
    shots(page, "start")
    # The browser asked for the page's icon by itself, and got it.
    assert any(url.endswith(("/favicon.svg", "/favicon.ico")) for url in requested), requested
    assert failed == [], failed
    icon = page.evaluate(
        "() => fetch(document.querySelector('link[rel=icon]').href)"
        ".then(r => r.status + ' ' + r.headers.get('content-type'))"
    )
    assert icon == "200 image/svg+xml"
    assert console == [], console
    assert page.errors == []  # type: ignore[attr-defined]
