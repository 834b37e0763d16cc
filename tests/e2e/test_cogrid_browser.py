"""Overcooked (igym_cogrid) in real Chromium against a real `igym run` process: both example studies.

- Human with AI (`igym_cogrid.examples.human_ai`): consent, instructions, then the cramped room
  with the scripted planner; held arrow keys walk the blue chef to a corner found from the page's
  objects (around the planner), its pixels are drawn there, it never glides on its own page (its
  objects' owner) while the planner's chef does; Space takes an onion; the recorded steps carry
  the keys, the kitchen's state in ``info`` and the planner's served soup.
- Human with human (`igym_cogrid.examples.human_human`): two browser contexts meet in the waiting
  room; each walks their chef to a free corner and the other's page shows it arrive; both pages
  draw both chefs; steps and the match are recorded.

Waits are bounded conditions, never fixed key timings: the tests pass on a loaded machine (slow,
though: 50–90 s each at a load of 15–24 on 2 cores).

Screenshots go to test-artifacts/<test name>/ (look at them).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np
from playwright.sync_api import Page, expect

from igym_cogrid.env import AGENTS, KEYS, make_env
from igym_cogrid.examples.human_ai import HEIGHT, LAYOUT, WIDTH
from igym_cogrid.render import CHEF_COLOURS, HUD_HEIGHT, tile_size
from igym_core.testing.pixels import colour_mask, png_pixels
from tests.e2e.test_slime_browser import enter_game, game, objects, wait_phase
from tests.e2e.test_survey_browser import poll, records

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


def chef_pixels(page: Page, path: Any, *agents: str, still: bool = True) -> dict[str, tuple[float, float]]:
    """Where each chef's body colour is on the canvas (game pixels), from one screenshot of it
    (saved to ``path``): one chef-sized blob each, and for chefs standing ``still``, where the page
    has the chef. (A bot walks a cell per step, faster than a loaded machine takes a screenshot.)"""
    before = objects(page)
    png = page.locator("canvas").first.screenshot(animations="disabled")
    after = objects(page)
    path.write_bytes(png)
    pixels = png_pixels(png)
    height, width = pixels.shape[:2]
    assert abs(width / height - WIDTH / HEIGHT) < 0.02
    sx, sy = width / WIDTH, height / HEIGHT
    kitchen = pixels[int(HUD_HEIGHT * sy) :]
    found = {}
    for agent in agents:
        ys, xs = np.nonzero(colour_mask(kitchen, CHEF_COLOURS[agent], tolerance=30))
        assert len(xs) > 400 * sx * sy, f"{agent}: only {len(xs)} pixels of its colour ({path.name})"
        x, y = xs.mean() / sx, ys.mean() / sy + HUD_HEIGHT
        assert (xs.max() - xs.min()) / sx < 80 and (ys.max() - ys.min()) / sy < 80, f"{agent}: not one blob"
        found[agent] = x, y
        if still:
            for axis, value in (("x", x), ("y", y)):
                low, high = sorted((before[f"{agent}_body"][axis], after[f"{agent}_body"][axis]))
                assert low - 20 <= value <= high + 20, (agent, axis, value, low, high)
    return found


def hold(page: Page, key: str, ms: int) -> None:
    page.keyboard.down(key)
    poll(lambda: game(page).get("keys") == [key], page=page, what=f"{key} sent")
    page.wait_for_timeout(ms)
    page.keyboard.up(key)
    poll(lambda: game(page).get("keys") == [], page=page, what="keys released")


#: The cramped room's floor (True) read from the env's state, and its cells' size on the canvas.
FLOOR = make_env(layout=LAYOUT).cells()[0] == 0
TILE = tile_size(LAYOUT)
#: The floor's corners (the room's inside is 3 by 2 cells): a chef walked to one stops there.
CORNERS = ((1, 1), (2, 3), (1, 3), (2, 1))
#: Where the blue chef waits out of the planner's way: beside the left onion crate, off every path
#: the planner needs between the other crate, the pot, the dish rack and the hatch.
ASIDE = CORNERS[0]


def cell_of(page: Page, agent: str) -> tuple[int, int]:
    """The cell the page draws ``agent`` in (nearest cell centre; a gliding chef rounds to one)."""
    body = objects(page)[f"{agent}_body"]
    return round((body["y"] - HUD_HEIGHT) / TILE - 0.5), round(body["x"] / TILE - 0.5)


def first_step(start: tuple[int, int], goal: tuple[int, int], blocked: tuple[int, int]) -> str | None:
    """The arrow key of the first move on a shortest path over the floor from ``start`` to
    ``goal`` around the ``blocked`` cell (the partner), or None when there is no such path."""
    steps = {"ArrowUp": (-1, 0), "ArrowDown": (1, 0), "ArrowLeft": (0, -1), "ArrowRight": (0, 1)}
    frontier, first = deque([start]), {start: None}
    while frontier:
        cell = frontier.popleft()
        if cell == goal:
            return first[cell]
        for key, (dr, dc) in steps.items():
            nxt = (cell[0] + dr, cell[1] + dc)
            if FLOOR[nxt] and nxt != blocked and nxt not in first:
                first[nxt] = first[cell] or key
                frontier.append(nxt)
    return None


def walk(page: Page, agent: str, partner: str, goal: tuple[int, int], timeout_s: float = 25) -> list[str]:
    """Hold arrow keys until the page shows ``agent`` in ``goal``, a corner of the kitchen's floor.
    Each key is the first move of a shortest free path around where the partner is now, held until
    the chef is in the goal's row (or column): against the corner's wall, so a key released late
    (the server steps every 100 ms, a loaded machine answers later) cannot carry it past the goal.
    A key held in vain for a few seconds (the partner stepped into the way) is released and the
    path found again. The keys held, in order."""
    assert goal in CORNERS, goal
    deadline = time.monotonic() + timeout_s
    held = []
    while (here := cell_of(page, agent)) != goal:
        assert time.monotonic() < deadline, f"{agent} did not reach {goal} (at {here})"
        key = first_step(here, goal, cell_of(page, partner))
        if key is None:  # the partner stands in the only way: wait for it to move
            page.wait_for_timeout(200)
            continue
        axis = 0 if key in ("ArrowUp", "ArrowDown") else 1
        page.keyboard.down(key)
        try:
            poll(lambda key=key: game(page).get("keys") == [key], page=page, what=f"{key} sent")
            held.append(key)
            until = time.monotonic() + 4
            while cell_of(page, agent)[axis] != goal[axis] and time.monotonic() < until:
                page.wait_for_timeout(30)
        finally:
            page.keyboard.up(key)
        poll(lambda: game(page).get("keys") == [], page=page, what="keys released")
    return held


def free_corner(page: Page, agent: str, partner: str) -> tuple[int, int]:
    """The first corner where neither chef is."""
    taken = {cell_of(page, agent), cell_of(page, partner)}
    return next(corner for corner in CORNERS if corner not in taken)


#: Counts, on every animation frame, the frames where each chef is drawn away from where the last
#: game frame puts it (gliding there). ``window.__glides`` holds the counts.
COUNT_GLIDES = """() => {
  const glides = { frames: 0, chef_0_body: 0, chef_1_body: 0 };
  window.__glides = glides;
  const look = () => {
    const targets = window.igym.gameObjects();
    glides.frames += 1;
    for (const id of ["chef_0_body", "chef_1_body"]) {
      const drawn = window.igym.gameDrawnPose(id);
      const target = targets[id];
      const away = drawn && target && Math.abs(drawn.x - target.x) + Math.abs(drawn.y - target.y) > 0.5;
      if (away) glides[id] += 1;
    }
    requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
}"""


def wait_rows(server: Any, experiment_id: str, predicate: Any, what: str) -> list[dict[str, Any]]:
    """The steps records once ``predicate`` holds for them (bounded: records are flushed every 500 ms,
    later on a loaded machine)."""
    return poll(
        lambda: (rows := records(server, experiment_id, "steps")) and predicate(rows) and rows,
        timeout_s=30,
        what=what,
    )


def test_human_with_the_planner_moves_and_records(live_server, new_page, shots):
    server = live_server(HUMAN_AI)
    page = new_page()
    pid = enter_game(page, server.url, "cook-ai", "overcooked")
    expect(page.get_by_text("press Space to pick up")).to_be_visible()
    wait_phase(page, "countdown", "playing")
    folder = shots(page, "countdown").parent
    wait_phase(page, "playing")
    shown = objects(page)
    assert {"chef_0_body", "chef_1_body", "chef_0_you", "hud_score", "hud_time"} <= set(shown)
    expect(page.locator(".igym-game-hud")).to_contain_text("You are the blue chef")

    if cell_of(page, "chef_0") == ASIDE:  # (not where the examples' seed puts it)
        walk(page, "chef_0", "chef_1", free_corner(page, "chef_0", "chef_1"))
    # Held arrow keys walk the blue chef to the cell beside the left onion crate (around the
    # planner, wherever it is), where it does not stand in the planner's way.
    start = cell_of(page, "chef_0")
    page.evaluate(COUNT_GLIDES)
    keys = walk(page, "chef_0", "chef_1", ASIDE)
    # The participant's own chef (its objects' owner is the seat) is drawn where each frame puts it
    # at once; the planner's chef glides from cell to cell.
    glides = page.evaluate("() => window.__glides")
    assert glides["chef_0_body"] == 0 and glides["chef_1_body"] > 0, glides  # (the sampling sees glides)
    # Facing the crate (left turns the chef, the crate does not let it pass), Space takes an onion.
    hold(page, "ArrowLeft", 300)
    hold(page, " ", 300)
    poll(lambda: "chef_0_held_sprout" in objects(page), page=page, what="the blue chef holding an onion")
    # The canvas draws the blue chef in its new cell (the page's screenshots are slow on a loaded
    # machine: one, while the round lasts).
    drawn = chef_pixels(page, folder / "moved-canvas.png", "chef_0")["chef_0"]
    x, y = (ASIDE[1] + 0.5) * TILE, HUD_HEIGHT + (ASIDE[0] + 0.5) * TILE
    assert abs(drawn[0] - x) < TILE / 4 and abs(drawn[1] - y) < TILE / 4, (drawn, ASIDE)
    # The planner cooks meanwhile and serves (alone, its first soup after about 7 s of play).
    steps = wait_rows(
        server,
        "overcooked_human_ai",
        lambda rows: (
            any(r["agent"] == "chef_0" and r["info"]["holding"] == "onion" for r in rows)
            and any(r["info"]["soups_delivered"] for r in rows)
        ),
        "step records with the blue chef holding an onion and a soup served",
    )
    chef_pixels(page, folder / "later-canvas.png", "chef_1", still=False)
    shots(page, "later")
    assert not page.errors, page.errors

    human = [s for s in steps if s["agent"] == "chef_0"]
    bot = [s for s in steps if s["agent"] == "chef_1"]
    assert all(s["participant_id"] == pid and s["seat"] == "human" for s in human)
    assert all(s["seat"] == "bot" and s["action_source"] == "bot" for s in bot)
    held = [s for s in human if s["keys_held"]]
    assert keys and {key for s in held for key in s["keys_held"]} >= {*keys, " "}
    assert all(s["action"] == KEYS[s["keys_held"][0]] and len(s["keys_held"]) == 1 for s in held)
    idle = [s for s in human if not s["keys_held"]]
    assert idle and all(s["action"] == 6 and s["action_source"] == "default" for s in idle)
    # The recorded state follows the page: the blue chef walked to the crate and took an onion.
    info = next(s["info"] for s in human if s["info"]["holding"] == "onion")
    assert set(info) >= INFO_KEYS and info["layout"] == "cramped_room"
    assert info["pots"] and {"position", "onions", "cooking_steps_left", "ready"} <= set(info["pots"][0])
    assert tuple(info["position"]) == ASIDE and info["facing"] == "left"
    assert start != ASIDE and any(s["info"]["position"] == list(start) for s in human)
    assert any(s["info"]["holding"] == "soup" for s in bot)  # the planner cooked and carried it
    seats = {s["agent"]: s for s in records(server, "overcooked_human_ai", "games")[0]["seats"]}
    assert seats["chef_0"]["type"] == "human" and seats["chef_1"]["type"] == "bot"


def test_two_people_cook_together(live_server, new_page, shots):
    server = live_server(HUMAN_HUMAN)
    alice, bob = new_page(), new_page()
    alice_id = enter_game(alice, server.url, "alice", "overcooked_pvp")
    wait_phase(alice, "matching")
    expect(alice.get_by_text("Waiting for a second participant to join.")).to_be_visible()
    folder = shots(alice, "alice-waiting").parent
    bob_id = enter_game(bob, server.url, "bob", "overcooked_pvp")
    a, b = (wait_phase(p, "playing") for p in (alice, bob))
    assert a["game_id"] == b["game_id"] and (a["seat"], b["seat"]) == ("chef_0", "chef_1")
    expect(alice.locator(".igym-game-hud")).to_contain_text("You are the blue chef")
    expect(bob.locator(".igym-game-hud")).to_contain_text("You are the red chef")

    # Alice walks to a free corner, then Bob; each page sees the other's chef arrive there.
    walked = {}
    for mover, watcher, agent, partner in (
        (alice, bob, "chef_0", "chef_1"),
        (bob, alice, "chef_1", "chef_0"),
    ):
        goal = free_corner(mover, agent, partner)
        walked[agent] = walk(mover, agent, partner, goal)
        poll(
            lambda watcher=watcher, agent=agent, goal=goal: cell_of(watcher, agent) == goal,
            page=watcher,
            what=f"{agent} arriving at {goal} on the other page",
        )
    for page, name in ((alice, "alice"), (bob, "bob")):
        chef_pixels(page, folder / f"{name}-playing.png", *AGENTS)
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)

    last_key = walked["chef_1"][-1]
    steps = wait_rows(
        server,
        "overcooked_human_human",
        lambda rows: any(r["agent"] == "chef_1" and r["keys_held"] == [last_key] for r in rows),
        f"a step record of Bob holding {last_key}",
    )
    by_seat = {seat: [s for s in steps if s["agent"] == seat] for seat in ("chef_0", "chef_1")}
    assert {s["participant_id"] for s in by_seat["chef_0"]} == {alice_id}
    assert {s["participant_id"] for s in by_seat["chef_1"]} == {bob_id}
    assert all(s["seat"] == "human" for s in steps)
    assert set(by_seat["chef_1"][-1]["info"]) >= INFO_KEYS
    for agent, keys in walked.items():
        assert {k for s in by_seat[agent] for k in s["keys_held"]} == set(keys), agent
    (matched,) = [m for m in records(server, "overcooked_human_human", "matches") if m["event"] == "matched"]
    assert {(m["participant_id"], m["seat"]) for m in matched["members"]} == {
        (alice_id, "chef_0"),
        (bob_id, "chef_1"),
    }
