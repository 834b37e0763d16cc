"""What a participant sees who left a game page and came back after the game was abandoned
(real Chromium, real `igym run`): with the default ``on_abandon="end"`` the study has ended, with
a message and no completion code; with ``"continue"``, the end page with its code."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from igym_core.testing import read_records
from tests.e2e.game_pages import game, wait_phase
from tests.e2e.test_survey_browser import poll, wait_scene

STUDY = Path(__file__).resolve().parents[1] / "studies" / "short_game.py"


@pytest.mark.parametrize("rule", ["end", "continue"])
def test_coming_back_to_an_abandoned_game(live_server, new_page, shots, rule) -> None:
    server = live_server(f"{STUDY}:abandon_{rule}")  # abandon_after_s=0.5
    page = new_page()
    page.goto(f"{server.url}/?PROLIFIC_PID=leaver")
    wait_phase(page, "playing")
    context = page.context
    page.close()  # the participant closes the tab mid-game
    poll(
        lambda: any(
            g["event"] == "ended" and g["reason"] == "abandoned"
            for g in read_records(server.data_dir, "short_game", "games")
        ),
        timeout_s=15,
        what="the game to end as abandoned",
    )

    back = new_page(context)  # the same browser: the study resumes for the same participant
    back.goto(f"{server.url}/?PROLIFIC_PID=leaver")
    if rule == "end":
        poll(lambda: game(back).get("final"), page=back, timeout_s=10, what="the final status")
        expect(back.get_by_text("You left the game for too long")).to_be_visible()
        expect(back.get_by_text("You will not receive a completion code")).to_be_visible()
        assert back.locator(".igym-code").count() == 0
        shots(back, "abandoned-end")
    else:
        wait_scene(back, "end")
        code = back.locator(".igym-code")
        expect(code).to_be_visible()
        assert len(code.inner_text().strip()) == 8
        shots(back, "abandoned-continue")
    assert not back.errors, back.errors
