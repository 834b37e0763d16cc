"""Key press → first drawn change of the participant's own slime under ``runtime="pyodide"``, in
real Chromium against a real ``igym run``, measured with igym_core.testing.latency (the server
runtime's test, tests/e2e/test_latency_browser.py, uses the same helper).

Asserted: the participant's own slime is drawn at its new place in the first animation frame after
the worker's update (no interpolation). The figures are printed (run with -s), not asserted; the
goal is at most one frame (33 ms at 30 fps) plus one render.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from igym_core.testing.latency import measure_key_to_draw

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from browser_support import Standin  # noqa: E402

from igym_core.testing import LiveServer  # noqa: E402
from igym_core.testing.support import in_chromium  # noqa: E402

# Key-to-draw latency is measured frame by frame: run alone (`make test`'s serial run).
pytestmark = pytest.mark.serial

STUDY = f"{HERE / 'studies' / 'slime_latency_browser.py'}:experiment"
PRESSES = 20


def _game(page: Any) -> dict[str, Any]:
    return page.evaluate("() => (window.igym && window.igym.state && window.igym.state.game) || {}")


def test_own_slime_moves_on_the_first_frame_after_the_workers_update(tmp_path: Path) -> None:
    with LiveServer(STUDY, tmp_path / "data", plugins=["igym_pyodide_p2p.plugin"]) as server:
        url = server.url
        standin = Standin(url, ("slime",))

        def work(browser: Any) -> Any:
            context = browser.new_context(viewport={"width": 1100, "height": 900})
            context.route("**/*", standin.route)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/?PROLIFIC_PID=latency")
            deadline = time.monotonic() + 90
            while not (_game(page).get("phase") == "playing" and _game(page).get("frames", 0) > 5):
                assert time.monotonic() < deadline, _game(page)
                page.wait_for_timeout(100)
            assert _game(page).get("seat") == "left"
            page.locator(".igym-game-stage").focus()
            report = measure_key_to_draw(page, "left_slime", presses=PRESSES, others=("ball",))
            return report, errors, _game(page)

        report, errors, game = in_chromium(work)
    print("\npyodide runtime, " + report.summary())
    for press in report.presses:
        print(f"  {press}")
    assert errors == []
    measured = report.measured
    assert len(measured) >= PRESSES * 3 // 4, report.summary()
    snapped = [p for p in measured if p.snapped]
    assert len(snapped) >= len(measured) - 2, report.summary()
    assert game["phase"] == "playing"
