"""Key press → first drawn change of the participant's own slime, in real Chromium against a real
`igym run` (the server runtime), measured with igym_core.testing.latency (the pyodide runtime's
tests use the same helper).

The behaviour asserted: the participant's own objects (render objects whose ``owner`` is their
seat) are drawn at their new place in the first animation frame after the update arrives, with no
interpolation, while other objects (the ball) still glide. The figures are printed (run with -s);
they are not asserted.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from igym_core.testing.latency import measure_key_to_draw
from tests.e2e.game_pages import game, wait_phase
from tests.e2e.test_survey_browser import poll, wait_scene

# Key-to-draw latency is measured frame by frame: run alone (`make test`'s serial run).
pytestmark = pytest.mark.serial

STUDY = "tests.e2e.latency_study:experiment"
PRESSES = 20


def test_own_slime_moves_on_the_first_frame_after_its_update_without_interpolation(
    live_server, new_page
) -> None:
    server = live_server(STUDY)
    page: Page = new_page()
    page.goto(f"{server.url}/?PROLIFIC_PID=latency")
    wait_scene(page, "slime")
    wait_phase(page, "playing")
    poll(lambda: game(page).get("seat") == "left", page=page, what="the seat")
    page.locator(".igym-game-stage").focus()

    report = measure_key_to_draw(page, "left_slime", presses=PRESSES, others=("ball",))
    print("\nserver runtime, " + report.summary())
    for press in report.presses:
        print(f"  {press}")

    measured = report.measured
    assert len(measured) >= PRESSES * 3 // 4, report.summary()
    # Own slime: its first drawn change is exactly where the update put it, at the animation frame
    # the update was first seen (a glide would show it part of the way there). A frame late under
    # load is tolerated once or twice; interpolation would fail nearly every press.
    snapped = [p for p in measured if p.snapped]
    assert len(snapped) >= len(measured) - 2, report.summary()
    # Others still interpolate: the ball glides to most of its updates.
    assert report.others_glided > 3 * report.others_snapped, report.summary()
    assert game(page)["phase"] == "playing"
    assert not page.errors, page.errors
