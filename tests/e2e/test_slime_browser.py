"""Slime Volleyball in real Chromium against a real `igym run` process: both example studies.

- Human vs AI (`igym_slime.examples.vs_ai`): consent, instructions, then the game against the
  trained ONNX bot; the page holds keys (single and combined), the canvas shows both slimes where
  the server has them, and the recorded steps show the keys, the actions and who chose them. The
  participant then stands still until the bot has won the first game, which ends the episode.
- Human vs human (`igym_slime.examples.vs_human`): two browser contexts meet in the waiting room,
  play, each sees the other's slime move, and the steps and the match are recorded.

Screenshots go to test-artifacts/<test name>/ (look at them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from playwright.sync_api import Page, expect

from igym_core.testing.pixels import colour_mask, png_pixels
from igym_slime.render import COLOURS, HEIGHT, WIDTH
from tests.e2e.game_pages import game, objects, wait_phase
from tests.e2e.test_survey_browser import continue_button, poll, records, state, wait_records, wait_scene

VS_AI = "igym_slime.examples.vs_ai:experiment"
VS_HUMAN = "igym_slime.examples.vs_human:experiment"


def enter_game(page: Page, url: str, pid: str, scene_id: str) -> str:
    """Open the study link, agree, read the instructions; arrive at the game. The participant id."""
    page.goto(f"{url}/?PROLIFIC_PID={pid}")
    wait_scene(page, "consent")
    page.get_by_role("checkbox", name="I am 18 or older and agree to take part.").check()
    continue_button(page).click()
    wait_scene(page, "instructions")
    expect(page.get_by_role("heading", level=1, name="How to play")).to_be_visible()
    expect(continue_button(page)).to_be_enabled(timeout=5000)  # after min_duration_ms
    continue_button(page).click()
    wait_scene(page, scene_id)
    return state(page)["participant_id"]


def hold(page: Page, *keys: str, ms: int) -> None:
    """Hold ``keys`` (pressed in this order) for ``ms`` once the page has sent them, then release."""
    for key in keys:
        page.keyboard.down(key)
    poll(lambda: sorted(game(page).get("keys", [])) == sorted(keys), page=page, what=f"{keys} sent")
    page.wait_for_timeout(ms)
    for key in reversed(keys):
        page.keyboard.up(key)
    poll(lambda: game(page).get("keys") == [], page=page, what="keys released")


def check_slimes_drawn(page: Page, path: Any) -> None:
    """The canvas's pixels: each slime's colour, near the ground, where the server put the slime."""
    before = objects(page)
    png = page.locator("canvas").first.screenshot(animations="disabled")
    after = objects(page)
    path.write_bytes(png)
    pixels = png_pixels(png)
    height, width = pixels.shape[:2]
    assert abs(width / height - WIDTH / HEIGHT) < 0.02
    sx, sy = width / WIDTH, height / HEIGHT
    court = pixels[int(200 * sy) :]  # below the scores and lives, which share the slimes' colours
    for agent, colour in COLOURS.items():
        _ys, xs = np.nonzero(colour_mask(court, colour, tolerance=30))
        assert len(xs) > 0.5 * 3.14 * 24 * 24 / 2 * sx * sy, f"{agent}: {len(xs)} pixels"
        low, high = sorted((before[f"{agent}_slime"]["x"], after[f"{agent}_slime"]["x"]))
        assert low - 30 <= xs.mean() / sx <= high + 30, (agent, xs.mean() / sx, low, high)
        assert xs.max() - xs.min() < 60 * sx  # one slime-sized blob
    assert colour_mask(pixels[: int(10 * sy)], "#8fd3f4", tolerance=12).mean() > 0.8  # the sky


def test_human_vs_ai_keys_bot_and_records(live_server, new_page, shots):
    server = live_server(VS_AI)
    page = new_page()
    pid = enter_game(page, server.url, "slime-ai", "slime")
    expect(page.get_by_text("Don't let the ball land on your side!")).to_be_visible()
    wait_phase(page, "countdown", "playing")
    shots(page, "countdown")
    wait_phase(page, "playing")
    shown = objects(page)
    assert {"left_slime", "right_slime", "ball", "net", "left_pupil", "right_score"} <= set(shown)
    start_x = shown["left_slime"]["x"]

    hold(page, "ArrowRight", ms=500)
    poll(lambda: objects(page)["left_slime"]["x"] > start_x + 40, page=page, what="the slime to move right")
    hold(page, "ArrowRight", "ArrowUp", ms=600)  # a combination: right + jump
    shots(page, "playing")
    check_slimes_drawn(page, shots(page, "after-jump").with_name("canvas.png"))
    hold(page, "ArrowLeft", "ArrowUp", ms=400)
    hold(page, "ArrowLeft", ms=300)
    expect(page.locator(".igym-game-hud")).to_contain_text("Game 1 of 5")

    # Standing still, the participant soon loses the first game to the bot: the episode ends.
    poll(lambda: game(page).get("episode") == 2, page=page, what="game 2", timeout_s=150)
    expect(page.locator(".igym-game-hud")).to_contain_text("Game 2 of 5")
    shots(page, "game-2")
    assert not page.errors, page.errors

    episodes = wait_records(server, "slime_vs_ai", "episodes", lambda rows: len(rows) >= 1)
    first = episodes[0]
    assert first["episode"] == 1 and first["end_reason"] == "terminated"
    assert first["returns"]["left"] < 0 < first["returns"]["right"]
    assert first["frames_dropped"] == {pid: 0}
    steps = wait_records(
        server,
        "slime_vs_ai",
        "steps",
        lambda rows: sum(r["episode"] == 1 for r in rows) >= 2 * first["steps"],
    )
    rows = [s for s in steps if s["episode"] == 1]
    assert len(rows) == 2 * first["steps"]
    human = [s for s in rows if s["agent"] == "left"]
    bot = [s for s in rows if s["agent"] == "right"]
    assert all(s["seat"] == "human" and s["participant_id"] == pid for s in human)
    assert all(s["seat"] == "bot" and s["action_source"] == "bot" and s["keys_held"] is None for s in bot)
    assert len({s["action"] for s in bot}) >= 3  # the bot moves and jumps
    expected = {
        ("ArrowRight",): 2,
        ("ArrowRight", "ArrowUp"): 5,
        ("ArrowLeft", "ArrowUp"): 4,
        ("ArrowLeft",): 1,
    }
    for keys, action in expected.items():
        held = [s for s in human if tuple(sorted(s["keys_held"])) == keys]
        assert len(held) >= 3, keys
        assert all(s["action"] == action and s["action_source"] == "human" for s in held), keys
    idle = [s for s in human if not s["keys_held"]]
    assert idle and all(s["action"] == 0 and s["action_source"] == "default" for s in idle)
    assert {"lives", "opponent_lives"} <= set(human[-1]["info"]) and human[-1]["info"]["lives"] == 0
    assert sum(s["reward"] for s in human) == first["returns"]["left"]
    games = records(server, "slime_vs_ai", "games")
    seats = {s["agent"]: s for s in games[0]["seats"]}
    assert seats["left"]["type"] == "human" and seats["right"]["type"] == "bot"
    assert "slime_policy.onnx" in seats["right"]["policy"]


def test_human_vs_human_through_the_waiting_room(live_server, new_page, shots):
    server = live_server(VS_HUMAN)
    alice, bob = new_page(), new_page()
    alice_id = enter_game(alice, server.url, "alice", "slime_pvp")
    waiting = wait_phase(alice, "matching")
    assert waiting["waiting"]["count"] == 1 and waiting["waiting"]["group_size"] == 2
    expect(alice.get_by_text("Waiting for a second participant to join.")).to_be_visible()
    shots(alice, "alice-waiting")

    bob_id = enter_game(bob, server.url, "bob", "slime_pvp")
    a, b = (wait_phase(p, "playing") for p in (alice, bob))
    assert a["game_id"] == b["game_id"] and (a["seat"], b["seat"]) == ("left", "right")
    expect(alice.locator(".igym-game-players")).to_have_text("You: left · Partner: right (connected)")
    expect(bob.locator(".igym-game-players")).to_have_text("You: right · Partner: left (connected)")
    expect(alice.locator(".igym-game-hud")).to_contain_text("You (orange, left)")
    expect(bob.locator(".igym-game-hud")).to_contain_text("You (green, right)")  # each their own HUD

    # Alice jumps towards the net (a combination); Bob's page shows her slime coming.
    start = objects(bob)["left_slime"]["x"]
    alice.keyboard.down("ArrowRight")
    alice.keyboard.down("ArrowUp")
    poll(
        lambda: sorted(game(alice).get("keys", [])) == ["ArrowRight", "ArrowUp"],
        page=alice,
        what="combo sent",
    )
    poll(lambda: objects(bob)["left_slime"]["x"] > start + 40, page=bob, what="Alice's slime on Bob's page")
    # Bob moves away from the net; Alice's page shows it.
    start = objects(alice)["right_slime"]["x"]
    bob.keyboard.down("ArrowRight")
    poll(
        lambda: objects(alice)["right_slime"]["x"] > start + 40,
        page=alice,
        what="Bob's slime on Alice's page",
    )
    for page, name in ((alice, "alice"), (bob, "bob")):
        check_slimes_drawn(page, shots(page, f"{name}-playing").with_name(f"{name}-canvas.png"))
    alice.keyboard.up("ArrowUp")
    alice.keyboard.up("ArrowRight")
    bob.keyboard.up("ArrowRight")
    for page in (alice, bob):
        poll(lambda page=page: game(page).get("keys") == [], page=page, what="keys released")

    # Neither moves now: the ball soon decides the first game.
    for page in (alice, bob):
        poll(lambda page=page: game(page).get("episode") == 2, page=page, what="game 2", timeout_s=150)
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)

    episodes = wait_records(server, "slime_vs_human", "episodes", lambda rows: len(rows) >= 1)
    first = episodes[0]
    assert first["end_reason"] == "terminated" and sorted(first["returns"]) == ["left", "right"]
    assert first["returns"]["left"] == -first["returns"]["right"] != 0
    steps = wait_records(
        server,
        "slime_vs_human",
        "steps",
        lambda rows: sum(r["episode"] == 1 for r in rows) >= 2 * first["steps"],
    )
    rows = [s for s in steps if s["episode"] == 1]
    by_seat = {seat: [s for s in rows if s["agent"] == seat] for seat in ("left", "right")}
    assert {s["participant_id"] for s in by_seat["left"]} == {alice_id}
    assert {s["participant_id"] for s in by_seat["right"]} == {bob_id}
    assert all(s["seat"] == "human" for s in rows)
    jumps = [s for s in by_seat["left"] if sorted(s["keys_held"]) == ["ArrowRight", "ArrowUp"]]
    assert len(jumps) >= 3 and all(s["action"] == 5 and s["action_source"] == "human" for s in jumps)
    away = [s for s in by_seat["right"] if s["keys_held"] == ["ArrowRight"]]
    assert len(away) >= 3 and all(s["action"] == 2 and s["action_source"] == "human" for s in away)
    matches = records(server, "slime_vs_human", "matches")
    (matched,) = [m for m in matches if m["event"] == "matched"]
    assert {(m["participant_id"], m["seat"]) for m in matched["members"]} == {
        (alice_id, "left"),
        (bob_id, "right"),
    }
