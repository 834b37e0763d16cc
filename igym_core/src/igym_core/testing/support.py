"""Building apps for tests and reading what they recorded."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from litestar import Litestar

from igym_core.config.experiment import Experiment
from igym_core.plugins.manager import IgymPluginManager, create_plugin_manager
from igym_core.settings import Settings

__all__ = ["SURVEY_STUDY_ANSWERS", "in_chromium", "make_test_app", "read_records"]


#: Debian's Chromium, which igym's browser tests drive with Playwright (``make test`` installs it).
CHROMIUM = "/usr/bin/chromium"
#: Its flags for headless tests: no sandbox (root in CI), no GPU, and none of Chromium's own
#: network traffic (updates, sync, first-run pages), so a test talks to loopback only.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def in_chromium(work: Callable[[Any], Any], timeout_s: float = 300, *, extra_args: Sequence[str] = ()) -> Any:
    """``work(browser)`` with headless Debian Chromium (:data:`CHROMIUM`, :data:`CHROMIUM_ARGS`, then
    ``extra_args``); its result. Runs in a thread of its own: Playwright's sync API allows one session
    per thread, and this keeps it apart from other tests' sessions. Fails the test when Chromium is
    missing."""
    import pytest

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; `make test` installs it (apt-get install chromium).")
    outcome: dict[str, Any] = {}

    def run() -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args], headless=True
                )
                try:
                    outcome["result"] = work(browser)
                finally:
                    browser.close()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="chromium")
    thread.start()
    thread.join(timeout_s)
    if "error" in outcome:
        raise outcome["error"]
    if thread.is_alive():
        pytest.fail(f"the browser work did not finish within {timeout_s:g} s")
    return outcome.get("result")


def make_test_app(
    experiment: Experiment | str,
    data_dir: Path,
    *,
    plugins: IgymPluginManager | None = None,
    extra_plugins: Iterable[object] = (),
    **settings: Any,
) -> Litestar:
    """An app serving ``experiment`` with data under ``data_dir``; built-ins only unless told."""
    from igym_core.server.app import create_app

    if plugins is None:
        plugins = create_plugin_manager(autoload=False, extra=extra_plugins, strict=True)
    options = {"data_dir": data_dir, "log_format": "console", "strict_plugins": True, **settings}
    return create_app(Settings(**options), experiment, plugins=plugins)


def read_records(data_dir: Path, experiment_id: str, record_type: str) -> list[dict[str, Any]]:
    """Every record of one type a JSONL sink wrote for an experiment (lines torn by a crash are skipped)."""
    path = Path(data_dir) / experiment_id / f"{record_type}.jsonl"
    if not path.exists():
        return []
    rows = []
    # Split on "\n" only: str.splitlines() also splits inside records at U+0085, U+2028, ...
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a crash (ended by the next run); the sink's reader skips it too
    return rows


#: Answers that take a participant through every scene of :mod:`igym_core.examples.survey_study`
#: (the experiment the pytest plugin serves by default), by scene id: ``p.submit(answers[scene_id])``.
SURVEY_STUDY_ANSWERS: dict[str, dict[str, Any]] = {
    "consent": {"agree": True},
    "instructions": {},
    "about_you": {"nickname": "Al", "age_group": "25–34", "devices": ["pc"]},
    "game_taste": {"enjoy_competition": 6, "hours_per_week": 12, "partner": "ai"},
    "teamwork": {"trust": 4, "good_teammate": "Someone who listens."},
    "mood": {"energy": 3},
}
