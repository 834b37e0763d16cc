"""A participant plays a server-stepped game in real Chromium against a real `igym run` process.

MountainCar with the demo's render objects: the page draws the frames (screenshots are looked at),
arrow keys held in the page become actions on the server, typing into a text box or leaving the
window never moves the car, a reload resumes the running game, and when the game ends the
participant is on the next scene (the predecessor left people stuck on the game page).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.test_survey_browser import poll, records, state, wait_records, wait_scene

STUDY = f"{Path(__file__).with_name('game_study.py')}:experiment"
EXPERIMENT_ID = "game_e2e"


def game(page: Page) -> dict[str, Any]:
    return (state(page) or {}).get("game") or {}


def wait_phase(page: Page, phase: str, timeout_s: float = 15) -> dict[str, Any]:
    return poll(lambda: game(page).get("phase") == phase and game(page), page=page, timeout_s=timeout_s,
                what=f"game phase {phase} (now {game(page)})")


def start_game(page: Page, url: str) -> None:
    page.goto(f"{url}/?PROLIFIC_PID=player1")
    wait_scene(page, "intro")
    page.get_by_role("button", name="Continue", exact=True).click()
    wait_scene(page, "car")


def test_playing_mountain_car_with_the_arrow_keys(live_server, new_page, shots):
    server = live_server(STUDY)
    page = new_page()
    start_game(page, server.url)
    expect(page.locator("#igym-main")).to_have_attribute("data-scene-kind", "gym")
    expect(page.get_by_text("Footer text")).to_be_visible()
    wait_phase(page, "countdown")
    shots(page, "countdown")
    wait_phase(page, "playing")
    objects = page.evaluate("() => window.igym.gameObjects()")
    assert {"ground", "ridge", "flag", "flagpole", "car", "wheel0", "wheel1"} <= set(objects)
    assert objects["car"]["object_type"] == "rect" and objects["car"]["fill"] == "#ef4444"
    car_x = objects["car"]["x"]

    page.locator("canvas").first.wait_for()
    page.keyboard.down("ArrowRight")
    poll(lambda: game(page).get("keys") == ["ArrowRight"], page=page, what="ArrowRight sent")
    page.wait_for_timeout(700)
    moved = page.evaluate("() => window.igym.gameObjects()")["car"]["x"]
    shots(page, "playing")
    page.keyboard.up("ArrowRight")
    poll(lambda: game(page).get("keys") == [], page=page, what="release sent")
    assert moved != car_x
    hud = page.locator(".igym-game-hud")
    expect(hud).to_contain_text("Time left")
    expect(page.get_by_text("Episode 1 of 2").first).to_be_visible()

    # Typing into the page's text box is not game input.
    page.get_by_label("Notes").click()
    page.keyboard.down("ArrowLeft")
    page.wait_for_timeout(300)
    assert game(page).get("keys") == []
    page.keyboard.up("ArrowLeft")

    # Holding a key and leaving the window releases it.
    page.locator(".igym-game-canvas, canvas").first.click()
    page.keyboard.down("ArrowLeft")
    poll(lambda: game(page).get("keys") == ["ArrowLeft"], page=page, what="ArrowLeft sent")
    page.evaluate("() => window.dispatchEvent(new Event('blur'))")
    poll(lambda: game(page).get("keys") == [], page=page, what="keys released on blur")
    page.keyboard.up("ArrowLeft")

    # The game ends after two rounds and the participant is on the next scene, not stuck.
    wait_scene(page, "after")
    expect(page.get_by_role("heading", level=1, name="Thanks")).to_be_visible()
    assert not page.errors, page.errors

    steps = wait_records(server, EXPERIMENT_ID, "steps", lambda rows: len(rows) >= 180)
    assert len(steps) == 180
    right = [s for s in steps if s["keys_held"] == ["ArrowRight"]]
    left = [s for s in steps if s["keys_held"] == ["ArrowLeft"]]
    assert len(right) >= 10 and all(s["action"] == 2 and s["action_source"] == "human" for s in right)
    assert all(s["action"] == 0 for s in left)
    assert all(s["action"] == 1 and s["action_source"] == "default" for s in steps if not s["keys_held"])
    episodes = records(server, EXPERIMENT_ID, "episodes")
    assert [(e["episode"], e["steps"], e["end_reason"]) for e in episodes] == [(1, 90, "max_steps"), (2, 90, "max_steps")]
    assert all(e["frames_dropped"] == {steps[0]["participant_id"]: 0} for e in episodes)


def test_a_reload_mid_game_resumes_the_same_game(live_server, new_page, shots):
    server = live_server(STUDY)
    page = new_page()
    start_game(page, server.url)
    first = wait_phase(page, "playing")
    page.reload()
    wait_scene(page, "car")
    again = poll(lambda: game(page).get("phase") in ("playing", "countdown") and game(page), page=page,
                 what="game after reload")
    assert again["game_id"] == first["game_id"]
    poll(lambda: game(page).get("keyframes", 0) >= 1 and game(page).get("objects", 0) >= 7, page=page,
         what="a keyframe after the reload")
    shots(page, "after-reload")
    wait_scene(page, "after", )
    games = records(server, EXPERIMENT_ID, "games")
    assert [g["event"] for g in games].count("started") == 1
