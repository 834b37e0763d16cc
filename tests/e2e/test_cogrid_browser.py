"""Overcooked (igym_cogrid) in real Chromium against a real `igym run` process: both example studies.

- Human with AI (`igym_cogrid.examples.human_ai`): consent, instructions, then the cramped room
  with the scripted planner; the page holds arrow keys, the blue chef's pixels move on the canvas
  to where the server has the chef, and the recorded steps carry the kitchen's state in ``info``.
- Human with human (`igym_cogrid.examples.human_human`): two browser contexts meet in the waiting
  room; each one's held keys move their own chef on the other's page; steps and the match are
  recorded.

Screenshots go to test-artifacts/<test name>/ (look at them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from playwright.sync_api import Page, expect

from igym_cogrid.examples.human_ai import HEIGHT, WIDTH
from igym_cogrid.render import CHEF_COLOURS, HUD_HEIGHT
from igym_core.testing.pixels import colour_mask, png_pixels
from tests.e2e.test_slime_browser import enter_game, game, objects, wait_phase
from tests.e2e.test_survey_browser import poll, records, wait_records

HUMAN_AI = "igym_cogrid.examples.human_ai:experiment"
HUMAN_HUMAN = "igym_cogrid.examples.human_human:experiment"
INFO_KEYS = {
    "layout",
    "position",
    "facing",
    "holding",
    "partner_position",
    "pots",
    "soups_delivered",
    "delivered_this_step",
    "score",
    "collided",
}


def chef_pixels(page: Page, agent: str, path: Any, *, still: bool = True) -> tuple[float, float]:
    """Where the chef's body colour is on the canvas (game pixels): one chef-sized blob, and for a
    chef standing ``still``, where the page has the chef; the canvas screenshot is saved to ``path``.
    (A bot walks a cell per step, faster than a screenshot is taken on a loaded machine.)"""
    before = objects(page)[f"{agent}_body"]
    png = page.locator("canvas").first.screenshot(animations="disabled")
    after = objects(page)[f"{agent}_body"]
    path.write_bytes(png)
    pixels = png_pixels(png)
    height, width = pixels.shape[:2]
    assert abs(width / height - WIDTH / HEIGHT) < 0.02
    sx, sy = width / WIDTH, height / HEIGHT
    kitchen = pixels[int(HUD_HEIGHT * sy) :]
    ys, xs = np.nonzero(colour_mask(kitchen, CHEF_COLOURS[agent], tolerance=30))
    assert len(xs) > 400 * sx * sy, f"{agent}: only {len(xs)} pixels of its colour"
    x, y = xs.mean() / sx, ys.mean() / sy + HUD_HEIGHT
    assert (xs.max() - xs.min()) / sx < 80 and (ys.max() - ys.min()) / sy < 80, f"{agent}: not one blob"
    if not still:
        return x, y
    for axis, value in (("x", x), ("y", y)):
        low, high = sorted((before[axis], after[axis]))
        assert low - 20 <= value <= high + 20, (agent, axis, value, low, high)
    return x, y


def hold(page: Page, key: str, ms: int) -> None:
    page.keyboard.down(key)
    poll(lambda: game(page).get("keys") == [key], page=page, what=f"{key} sent")
    page.wait_for_timeout(ms)
    page.keyboard.up(key)
    poll(lambda: game(page).get("keys") == [], page=page, what="keys released")


def test_human_with_the_planner_moves_and_records(live_server, new_page, shots):
    server = live_server(HUMAN_AI)
    page = new_page()
    pid = enter_game(page, server.url, "cook-ai", "overcooked")
    expect(page.get_by_text("press Space to pick up")).to_be_visible()
    wait_phase(page, "countdown", "playing")
    shots(page, "countdown")
    wait_phase(page, "playing")
    shown = objects(page)
    assert {"chef_0_body", "chef_1_body", "chef_0_you", "hud_score", "hud_time"} <= set(shown)
    expect(page.locator(".igym-game-hud")).to_contain_text("You are the blue chef")

    start = chef_pixels(page, "chef_0", shots(page, "start").with_name("start-canvas.png"))
    # The cramped room is 3 cells wide and 2 high inside: holding left then up walks to the corner
    # (the partner may be in the way for a moment, so hold long enough to get past it).
    hold(page, "ArrowLeft", 900)
    hold(page, "ArrowUp", 600)
    poll(
        lambda: (
            objects(page)["chef_0_body"]["x"] < start[0] - 40
            or objects(page)["chef_0_body"]["y"] < start[1] - 40
        ),
        page=page,
        what="the blue chef to move",
    )
    moved = chef_pixels(page, "chef_0", shots(page, "moved").with_name("moved-canvas.png"))
    assert abs(moved[0] - start[0]) + abs(moved[1] - start[1]) > 40, (start, moved)
    hold(page, " ", 300)  # interact: picks up an onion if it faces the crate
    # The planner cooks meanwhile: a pot full of onions, then a bowl of soup carried to the hatch.
    poll(lambda: "pot_0_2_bar" in objects(page), page=page, what="a pot cooking", timeout_s=30)
    shots(page, "cooking")
    poll(
        lambda: "chef_1_held_soup" in objects(page),
        page=page,
        what="the red chef carrying soup",
        timeout_s=30,
    )
    shots(page, "later")
    chef_pixels(page, "chef_1", shots(page, "later").with_name("later-canvas.png"), still=False)
    assert not page.errors, page.errors

    steps = wait_records(
        server,
        "overcooked_human_ai",
        "steps",
        lambda rows: any(r["agent"] == "chef_0" and r["keys_held"] == ["ArrowUp"] for r in rows),
    )
    human = [s for s in steps if s["agent"] == "chef_0"]
    bot = [s for s in steps if s["agent"] == "chef_1"]
    assert all(s["participant_id"] == pid and s["seat"] == "human" for s in human)
    assert all(s["seat"] == "bot" and s["action_source"] == "bot" for s in bot)
    for keys, action in ((["ArrowLeft"], 2), (["ArrowUp"], 0)):
        held = [s for s in human if s["keys_held"] == keys]
        assert len(held) >= 3 and all(s["action"] == action for s in held), keys
    idle = [s for s in human if not s["keys_held"]]
    assert idle and all(s["action"] == 6 and s["action_source"] == "default" for s in idle)
    info = human[-1]["info"]
    assert set(info) >= INFO_KEYS and info["layout"] == "cramped_room"
    assert info["pots"] and {"position", "onions", "cooking_steps_left", "ready"} <= set(info["pots"][0])
    # The planner works: by now some onion is in the pot or carried.
    assert any(s["info"]["holding"] == "onion" for s in bot)
    positions = {tuple(s["info"]["position"]) for s in human}
    assert len(positions) >= 2  # the held keys moved the chef in the recorded state too
    seats = {s["agent"]: s for s in records(server, "overcooked_human_ai", "games")[0]["seats"]}
    assert seats["chef_0"]["type"] == "human" and seats["chef_1"]["type"] == "bot"


def test_two_people_cook_together(live_server, new_page, shots):
    server = live_server(HUMAN_HUMAN)
    alice, bob = new_page(), new_page()
    alice_id = enter_game(alice, server.url, "alice", "overcooked_pvp")
    wait_phase(alice, "matching")
    expect(alice.get_by_text("Waiting for a second participant to join.")).to_be_visible()
    shots(alice, "alice-waiting")
    bob_id = enter_game(bob, server.url, "bob", "overcooked_pvp")
    a, b = (wait_phase(p, "playing") for p in (alice, bob))
    assert a["game_id"] == b["game_id"] and (a["seat"], b["seat"]) == ("chef_0", "chef_1")
    expect(alice.locator(".igym-game-hud")).to_contain_text("You are the blue chef")
    expect(bob.locator(".igym-game-hud")).to_contain_text("You are the red chef")

    # Alice walks; Bob's page shows her chef moving, and the other way round.
    for mover, watcher, agent, keys in (
        (alice, bob, "chef_0", ("ArrowLeft", "ArrowUp")),
        (bob, alice, "chef_1", ("ArrowRight", "ArrowDown")),
    ):
        start = objects(watcher)[f"{agent}_body"]
        for key in keys:
            hold(mover, key, 700)
        poll(
            lambda watcher=watcher, agent=agent, start=start: (
                abs(objects(watcher)[f"{agent}_body"]["x"] - start["x"])
                + abs(objects(watcher)[f"{agent}_body"]["y"] - start["y"])
                > 40
            ),
            page=watcher,
            what=f"{agent} moving on the other page",
        )
    for page, name in ((alice, "alice"), (bob, "bob")):
        for agent in ("chef_0", "chef_1"):
            chef_pixels(page, agent, shots(page, f"{name}-playing").with_name(f"{name}-{agent}-canvas.png"))
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)

    steps = wait_records(
        server,
        "overcooked_human_human",
        "steps",
        lambda rows: any(r["agent"] == "chef_1" and r["keys_held"] == ["ArrowDown"] for r in rows),
    )
    by_seat = {seat: [s for s in steps if s["agent"] == seat] for seat in ("chef_0", "chef_1")}
    assert {s["participant_id"] for s in by_seat["chef_0"]} == {alice_id}
    assert {s["participant_id"] for s in by_seat["chef_1"]} == {bob_id}
    assert all(s["seat"] == "human" for s in steps)
    assert set(by_seat["chef_1"][-1]["info"]) >= INFO_KEYS
    (matched,) = [m for m in records(server, "overcooked_human_human", "matches") if m["event"] == "matched"]
    assert {(m["participant_id"], m["seat"]) for m in matched["members"]} == {
        (alice_id, "chef_0"),
        (bob_id, "chef_1"),
    }
