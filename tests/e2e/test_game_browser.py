"""A participant plays a server-stepped game in real Chromium against a real `igym run` process.

MountainCar with the demo's render objects: the page draws the frames (screenshots are looked at),
arrow keys held in the page become actions on the server, typing into a text box or leaving the
window never moves the car, a reload resumes the running game, and when the game ends the
participant is on the next scene (the predecessor left people stuck on the game page).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from playwright.sync_api import Page, expect

from igym_core.examples.mountain_car import HEIGHT, WIDTH
from igym_core.testing.pixels import colour_mask, png_pixels
from tests.e2e.game_pages import game, wait_phase
from tests.e2e.test_survey_browser import poll, records, wait_records, wait_scene

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "game_canvas"
ARTIFACTS.mkdir(parents=True, exist_ok=True)
STUDY = f"{Path(__file__).with_name('game_study.py')}:experiment"
EXPERIMENT_ID = "game_e2e"
LONG_ROUNDS = f"{Path(__file__).with_name('game_study.py')}:long_rounds"
LONG_ROUNDS_ID = "game_e2e_long"


def check_canvas_shows_the_car(page: Page) -> None:
    """The canvas's own pixels: one red car body, where the server put it (the car moves, so its
    position is read just before and just after the screenshot), the scene's background colour at
    the top, and the canvas scaled to the window without stretching."""
    canvas = page.locator("canvas").first
    before = page.evaluate("() => window.igym.gameObjects()")["car"]
    png = canvas.screenshot(animations="disabled")
    after = page.evaluate("() => window.igym.gameObjects()")["car"]
    (ARTIFACTS / "canvas.png").write_bytes(png)
    pixels = png_pixels(png)
    height, width = pixels.shape[:2]
    assert abs(width / height - WIDTH / HEIGHT) < 0.02
    sx, sy = width / WIDTH, height / HEIGHT
    ys, xs = np.nonzero(colour_mask(pixels, "#ef4444", tolerance=40))
    assert len(xs) > 0.5 * 40 * 18 * sx * sy, f"{len(xs)} red pixels; the car body is 40x18"
    # One compact blob, the size of the (tilted) car body, and nothing else in that red.
    assert xs.max() - xs.min() < 60 * sx and ys.max() - ys.min() < 60 * sy
    low, high = sorted((before["x"], after["x"]))
    assert low - 25 <= xs.mean() / sx <= high + 25, (xs.mean() / sx, before["x"], after["x"])
    low, high = sorted((before["y"], after["y"]))
    assert low - 25 <= ys.mean() / sy <= high + 25, (ys.mean() / sy, before["y"], after["y"])
    sky = colour_mask(pixels[: int(40 * sy)], "#0c4a6e", tolerance=12)
    assert sky.mean() > 0.8


def hold_for_playing_ticks(page: Page, ticks: int) -> None:
    """Wait while keys are held until the page has seen ``ticks`` ticks of play (a countdown
    between episodes does not count: on a slow machine a fixed wait could fall into one)."""
    seen: list[int] = []

    def long_enough() -> bool:
        state = game(page)
        if state.get("phase") == "playing" and isinstance(state.get("tick"), int):
            seen.append(state["tick"])
        else:
            seen.clear()
        return len(seen) >= 2 and seen[-1] - seen[0] >= ticks

    poll(long_enough, page=page, timeout_s=20, what=f"{ticks} ticks of play")


def start_game(page: Page, url: str) -> None:
    page.goto(f"{url}/?PROLIFIC_PID=player1")
    wait_scene(page, "intro")
    page.get_by_role("button", name="Continue", exact=True).click()
    wait_scene(page, "car")


def test_playing_mountain_car_with_the_arrow_keys(live_server, new_page, shots):
    # Rounds that outlast the test: each step below waits for the page (a canvas screenshot takes
    # 10 s and more on a loaded machine), and in the short rounds the game could end under a check
    # that then waited for a game that was gone (the check of the release on blur timed out so).
    server = live_server(LONG_ROUNDS)
    page = new_page()
    start_game(page, server.url)
    expect(page.locator("#igym-main")).to_have_attribute("data-scene-kind", "gym")
    expect(page.get_by_text("Footer text")).to_be_visible()
    wait_phase(page, "countdown")
    shots(page, "countdown")
    wait_phase(page, "playing")
    expect(page.get_by_text("Episode 1 of 2").first).to_be_visible()
    objects = page.evaluate("() => window.igym.gameObjects()")
    assert {"ground", "ridge", "flag", "flagpole", "car", "wheel0", "wheel1"} <= set(objects)
    assert objects["car"]["object_type"] == "rect" and objects["car"]["fill"] == "#ef4444"
    car_x = objects["car"]["x"]
    check_canvas_shows_the_car(page)

    page.locator("canvas").first.wait_for()
    page.keyboard.down("ArrowRight")
    poll(lambda: game(page).get("keys") == ["ArrowRight"], page=page, what="ArrowRight sent")
    hold_for_playing_ticks(page, 20)
    moved = page.evaluate("() => window.igym.gameObjects()")["car"]["x"]
    shots(page, "playing")
    # A combination: both arrows held at once.
    page.keyboard.down("ArrowLeft")
    poll(
        lambda: sorted(game(page).get("keys", [])) == ["ArrowLeft", "ArrowRight"],
        page=page,
        what="combo sent",
    )
    hold_for_playing_ticks(page, 8)
    page.keyboard.up("ArrowLeft")
    page.keyboard.up("ArrowRight")
    poll(lambda: game(page).get("keys") == [], page=page, what="release sent")
    assert moved != car_x
    hud = page.locator(".igym-game-hud")
    expect(hud).to_contain_text("Time left")

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
    hold_for_playing_ticks(page, 3)  # so that the server steps with it (recorded below)
    page.evaluate("() => window.dispatchEvent(new Event('blur'))")
    poll(lambda: game(page).get("keys") == [], page=page, what="keys released on blur")
    page.keyboard.up("ArrowLeft")
    assert game(page).get("phase") == "playing" and game(page).get("episode") == 1
    assert not page.errors, page.errors

    # The server's records of the same play: each held set is the action it maps to.
    steps = wait_records(
        server,
        LONG_ROUNDS_ID,
        "steps",
        lambda rows: any(s["keys_held"] == ["ArrowLeft"] for s in rows) and not rows[-1]["keys_held"],
    )
    right = [s for s in steps if s["keys_held"] == ["ArrowRight"]]
    left = [s for s in steps if s["keys_held"] == ["ArrowLeft"]]
    both = [s for s in steps if sorted(s["keys_held"]) == ["ArrowLeft", "ArrowRight"]]
    assert len(right) >= 10 and all(s["action"] == 2 and s["action_source"] == "human" for s in right)
    assert len(both) >= 3 and all(s["action"] == 1 and s["action_source"] == "human" for s in both)
    assert left and all(s["action"] == 0 and s["action_source"] == "human" for s in left)
    assert all(s["action"] == 1 and s["action_source"] == "default" for s in steps if not s["keys_held"])


def test_the_rounds_count_up_and_the_participant_moves_on(live_server, new_page, shots):
    """Episodes count up; after the second the participant is on the next scene, not stuck."""
    server = live_server(STUDY)
    page = new_page()
    start_game(page, server.url)
    poll(lambda: game(page).get("episode") == 2, page=page, what="episode 2", timeout_s=15)
    expect(page.get_by_text("Episode 2 of 2").first).to_be_visible()
    shots(page, "episode-2")
    wait_scene(page, "after", timeout_s=20)
    expect(page.get_by_role("heading", level=1, name="Thanks")).to_be_visible()
    assert not page.errors, page.errors

    steps = wait_records(server, EXPERIMENT_ID, "steps", lambda rows: len(rows) >= 300)
    assert len(steps) == 300
    # Nobody pressed anything: every step took the default action.
    assert all(not s["keys_held"] and s["action"] == 1 and s["action_source"] == "default" for s in steps)
    episodes = records(server, EXPERIMENT_ID, "episodes")
    assert [(e["episode"], e["steps"], e["end_reason"]) for e in episodes] == [
        (1, 150, "max_steps"),
        (2, 150, "max_steps"),
    ]
    assert all(e["frames_dropped"] == {steps[0]["participant_id"]: 0} for e in episodes)
    # The page says how long each round-trip probe waited in it: recorded apart from the network's
    # round trip (rtt_ms), one page delay per answered probe.
    pid = steps[0]["participant_id"]
    for e in episodes:
        rtt, page_delay = e["rtt_ms"][pid], e["page_delay_ms"][pid]
        print(f"episode {e['episode']}: network rtt_ms {rtt}, page_delay_ms {page_delay}")
        assert rtt["n"] >= 1 and page_delay["n"] == rtt["n"] and page_delay["median"] >= 0


def test_a_reload_mid_game_resumes_the_same_game(live_server, new_page, shots):
    server = live_server(STUDY)
    page = new_page()
    start_game(page, server.url)
    first = wait_phase(page, "playing")
    page.reload()
    wait_scene(page, "car")
    again = poll(
        lambda: game(page).get("phase") in ("playing", "countdown") and game(page),
        page=page,
        what="game after reload",
    )
    assert again["game_id"] == first["game_id"]
    poll(
        lambda: game(page).get("keyframes", 0) >= 1 and game(page).get("objects", 0) >= 7,
        page=page,
        what="a keyframe after the reload",
    )
    shots(page, "after-reload")
    wait_scene(page, "after", timeout_s=20)
    games = records(server, EXPERIMENT_ID, "games")
    assert [g["event"] for g in games].count("started") == 1
