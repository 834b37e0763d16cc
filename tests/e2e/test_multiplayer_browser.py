"""Two people play one server-stepped game in real Chromium against a real `igym run` process.

`multiplayer_study.py`: each player moves their own dot with the arrow keys. Two participants in
separate browser contexts are matched in the waiting room, see each other's moves, finish and
both move on; a third who waits alone is sent back to Prolific with the "no partner" code; a
player who closes the page mid-game ends it for their partner (or hands their seat to a bot).
Screenshots are saved under test-artifacts/<test name>/ (look at them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import Page, Route, expect

from igym_core.testing.pixels import colour_mask, png_pixels
from tests.e2e.game_pages import game, objects, wait_phase
from tests.e2e.multiplayer_study import COLOURS, HEIGHT, START, WAITING_MESSAGE, WIDTH
from tests.e2e.test_survey_browser import continue_button, poll, records, state, wait_records, wait_scene

STUDY = Path(__file__).with_name("multiplayer_study.py")
PROLIFIC = "https://app.prolific.com/submissions/complete"


def join(page: Page, url: str, pid: str) -> str:
    """Open the study link, pass the intro page, and arrive at the game scene; the participant id."""
    page.goto(f"{url}/?PROLIFIC_PID={pid}")
    wait_scene(page, "intro")
    continue_button(page).click()
    wait_scene(page, "dots")
    return state(page)["participant_id"]


def play_together(
    live_server: Callable[..., Any], new_page: Callable[..., Page], target: str
) -> tuple[Any, tuple[Page, str], tuple[Page, str]]:
    """Two participants matched and playing: (server, (first page, pid), (second page, pid))."""
    server = live_server(f"{STUDY}:{target}")
    first, second = new_page(), new_page()
    first_id = join(first, server.url, "alice")
    wait_phase(first, "matching")
    second_id = join(second, server.url, "bob")
    for page in (first, second):
        wait_phase(page, "playing")
    return server, (first, first_id), (second, second_id)


def hold(page: Page, key: str, other: Page, moved: Callable[[dict[str, Any]], bool], what: str) -> None:
    """Hold `key` in `page` until the other participant's page shows the move."""
    page.keyboard.down(key)
    try:
        poll(lambda: game(page).get("keys") == [key], page=page, what=f"{key} sent")
        poll(lambda: moved(objects(other)), page=other, what=what)
    finally:
        page.keyboard.up(key)
    poll(lambda: game(page).get("keys") == [], page=page, what=f"{key} released")


def dots_on_canvas(page: Page) -> dict[str, tuple[float, float]]:
    """Where each dot's colour is on the page's canvas (centroid, in logical canvas pixels)."""
    png = page.locator("canvas").first.screenshot(animations="disabled")
    pixels = png_pixels(png)
    height, width = pixels.shape[:2]
    found = {}
    for agent, colour in COLOURS.items():
        ys, xs = np.nonzero(colour_mask(pixels, colour, tolerance=30))
        if len(xs) > 50:
            found[agent] = (xs.mean() * WIDTH / width, ys.mean() * HEIGHT / height)
    return found


def check_dots_drawn(page: Page, name: str) -> None:
    """The canvas shows both dots where the page's objects are (retried if an episode or the
    countdown starts while the picture is taken: a new episode puts the dots back)."""
    for _ in range(3):
        before, seen = game(page), objects(page)
        drawn = dots_on_canvas(page)
        after = game(page)
        steady = before["episode"] == after["episode"] and before["phase"] == after["phase"] == "playing"
        if not steady:
            page.wait_for_timeout(1200)
            continue
        assert set(drawn) == {"left", "right"}, (name, drawn)
        for agent in ("left", "right"):
            dx, dy = drawn[agent][0] - seen[agent]["x"], drawn[agent][1] - seen[agent]["y"]
            assert abs(dx) < 25 and abs(dy) < 25, (name, agent, drawn, seen)
        if after["episode"] == 1:
            assert drawn["left"][0] > START["left"][0] + 20 and drawn["right"][1] > START["right"][1] + 20
        return
    raise AssertionError(f"{name}'s game never held still for a picture")


def test_two_participants_are_matched_see_each_others_moves_and_both_move_on(live_server, new_page, shots):
    server = live_server(f"{STUDY}:experiment")
    alice, bob = new_page(), new_page()
    alice_id = join(alice, server.url, "alice")
    waiting = wait_phase(alice, "matching")
    assert waiting["waiting"]["count"] == 1 and waiting["waiting"]["group_size"] == 2
    expect(alice.get_by_role("status").filter(has_text="1 of 2 participants here")).to_be_visible()
    expect(alice.get_by_text(WAITING_MESSAGE)).to_be_visible()
    shots(alice, "alice-waiting")

    bob_id = join(bob, server.url, "bob")
    a = wait_phase(alice, "countdown", "playing")
    b = wait_phase(bob, "countdown", "playing")
    assert a["game_id"] == b["game_id"] and a["game_id"]
    assert (a["seat"], b["seat"]) == ("left", "right")  # the first to arrive takes the first seat
    assert a["ready_sent"] == 1 and b["ready_sent"] == 1 and a["waiting"] is None
    for page in (alice, bob):
        wait_phase(page, "playing")
    if a.get("players") is not None:  # optional in the protocol
        expect(alice.locator(".igym-game-players")).to_have_text("You: left · Partner: right (connected)")
        expect(bob.locator(".igym-game-players")).to_have_text("You: right · Partner: left (connected)")

    # Alice (left, blue) holds the right arrow: Bob's page shows her dot moving right.
    start_x = objects(bob)["left"]["x"]
    hold(
        alice,
        "ArrowRight",
        bob,
        lambda o: o["left"]["x"] >= start_x + 40,
        "Alice's dot to move on Bob's page",
    )
    # Bob (right, orange) holds the down arrow: Alice's page shows his dot moving down.
    start_y = objects(alice)["right"]["y"]
    hold(
        bob,
        "ArrowDown",
        alice,
        lambda o: o["right"]["y"] >= start_y + 40,
        "Bob's dot to move on Alice's page",
    )
    # Both pages draw both dots where the server put them and, while still in episode 1, the left
    # dot right of its start and the right dot below its start.
    alice.wait_for_timeout(300)
    for page, name in ((alice, "alice"), (bob, "bob")):
        check_dots_drawn(page, name)
        shots(page, f"{name}-playing")

    # Both play the two episodes and both move on to the next page.
    for page in (alice, bob):
        poll(lambda page=page: game(page).get("episode") == 2, page=page, what="episode 2", timeout_s=15)
    for page in (alice, bob):
        wait_scene(page, "after")
        expect(page.get_by_role("heading", level=1, name="Thanks")).to_be_visible()
    shots(bob, "bob-after")
    assert game(alice)["rtt_echoes"] > 0 and game(bob)["rtt_echoes"] > 0
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)

    # The data: one game, both humans' steps with their keys, and the match with both members.
    steps = wait_records(server, "multiplayer_e2e", "steps", lambda rows: len(rows) >= 2 * 2 * 120)
    assert len(steps) == 2 * 2 * 120
    assert {s["game_id"] for s in steps} == {a["game_id"]}
    by_seat = {seat: [s for s in steps if s["agent"] == seat] for seat in ("left", "right")}
    assert {s["participant_id"] for s in by_seat["left"]} == {alice_id}
    assert {s["participant_id"] for s in by_seat["right"]} == {bob_id}
    assert all(sorted(s["participant_ids"]) == sorted([alice_id, bob_id]) for s in steps)
    assert all(s["seat"] == "human" for s in steps)
    right = [s for s in by_seat["left"] if s["keys_held"] == ["ArrowRight"]]
    down = [s for s in by_seat["right"] if s["keys_held"] == ["ArrowDown"]]
    assert len(right) >= 5 and all(s["action"] == 2 and s["action_source"] == "human" for s in right)
    assert len(down) >= 5 and all(s["action"] == 4 and s["action_source"] == "human" for s in down)
    idle = [s for s in steps if not s["keys_held"]]
    assert idle and all(s["action"] == 0 and s["action_source"] == "default" for s in idle)

    matches = wait_records(
        server, "multiplayer_e2e", "matches", lambda rows: any(r["event"] == "matched" for r in rows)
    )
    (matched,) = [m for m in matches if m["event"] == "matched"]
    assert matched["game_id"] == a["game_id"] and matched["scene_id"] == "dots"
    members = {m["participant_id"]: m for m in matched["members"]}
    assert set(members) == {alice_id, bob_id}
    assert members[alice_id]["seat"] == "left" and members[bob_id]["seat"] == "right"
    # Alice waited for Bob; Bob was matched on arrival.
    assert members[alice_id]["waited_s"] > members[bob_id]["waited_s"] >= 0
    assert members[bob_id]["waited_s"] < 1
    assert all(m["queued_at"] for m in members.values())
    assert sorted(r["participant_id"] for r in matches if r["event"] == "queued") == sorted(
        [alice_id, bob_id]
    )
    games = wait_records(server, "multiplayer_e2e", "games", lambda rows: len(rows) >= 2)
    assert [(g["event"], g.get("reason")) for g in games] == [("started", None), ("ended", "completed")]


def test_a_participant_who_waits_alone_is_sent_back_to_prolific(live_server, new_page, shots):
    server = live_server(f"{STUDY}:experiment")
    carol = new_page()
    requested: list[str] = []

    def prolific(route: Route) -> None:
        requested.append(route.request.url)
        route.fulfill(
            status=200,
            content_type="text/html",
            body="<!doctype html><title>Prolific</title><p>Submission complete</p>",
        )

    carol.route(f"{PROLIFIC}**", prolific)
    carol_id = join(carol, server.url, "carol-7")
    waiting = wait_phase(carol, "matching")
    assert waiting["waiting"]["count"] == 1 and waiting["waiting"]["timeout_ms"] == 4000
    clock = carol.locator(".igym-game-waiting-clock")
    expect(clock).to_have_text(re.compile(r"^Time waited: 0:0[0-3]$"))
    expect(carol.get_by_role("status").filter(has_text="1 of 2 participants here")).to_be_visible()
    poll(
        lambda: clock.inner_text() >= "Time waited: 0:02", page=carol, what="the clock to count", timeout_s=5
    )
    shots(carol, "waiting-alone")

    # After 4 s without a partner the page says where it is going, and goes to the study's
    # "no partner" link, with their PID.
    expected = f"{PROLIFIC}?cc=NOPARTNER&pid=carol-7"
    final = poll(
        lambda: game(carol).get("final") and game(carol), page=carol, what="the final status", timeout_s=10
    )
    assert final["phase"] == "ended" and final["redirect_url"] == expected
    expect(carol.get_by_text("Returning you to the study platform")).to_be_visible()
    shots(carol, "final-redirect")
    carol.wait_for_url(f"{PROLIFIC}**", timeout=15_000)
    assert carol.url == expected and requested == [expected]
    expect(carol.get_by_text("Submission complete")).to_be_visible()
    timeouts = wait_records(
        server, "multiplayer_e2e", "matches", lambda rows: any(r["event"] == "timeout" for r in rows)
    )
    (timeout,) = [m for m in timeouts if m["event"] == "timeout"]
    assert timeout["participant_id"] == carol_id and timeout["action"] == "redirect"
    assert 3.5 <= timeout["waited_s"] <= 8
    assert records(server, "multiplayer_e2e", "games") == []

    # A reload shows the final state again (and goes back to Prolific again).
    requested.clear()
    carol.goto(f"{server.url}/?PROLIFIC_PID=carol-7")
    carol.wait_for_url(f"{PROLIFIC}**", timeout=15_000)
    assert requested == [expected]


def close_partner_mid_game(
    live_server: Callable[..., Any], new_page: Callable[..., Page], target: str
) -> tuple[Any, Page, str, dict[str, Any]]:
    """Alice and Bob playing; Alice closes her page. (server, Bob's page, Alice's id, Bob's game state)."""
    server, (alice, alice_id), (bob, _bob_id) = play_together(live_server, new_page, target)
    playing = game(bob)
    # Everything Bob's page shows in the overlay and the notice banner, however briefly.
    bob.evaluate(
        """() => {
        window.seenTexts = [];
        const note = () => {
          const shown = ".igym-game-overlay-text, .igym-game-overlay-title, .igym-game-notice";
          for (const el of document.querySelectorAll(shown)) {
            const text = el.hidden ? "" : el.textContent;
            if (text && !window.seenTexts.includes(text)) window.seenTexts.push(text);
          }
        };
        new MutationObserver(note).observe(document.body,
          { subtree: true, childList: true, characterData: true, attributes: true });
    }"""
    )
    alice.wait_for_timeout(500)
    alice.close()
    return server, bob, alice_id, playing


def test_a_partner_who_closes_the_page_ends_the_game_and_the_other_moves_on(live_server, new_page, shots):
    server, bob, alice_id, playing = close_partner_mid_game(live_server, new_page, "experiment_leave_end")
    # For the grace period Bob is told that his partner's connection dropped, and the game goes on...
    away = poll(
        lambda: game(bob).get("notice") and game(bob)["notice"], page=bob, what="a notice", timeout_s=5
    )
    assert "connection" in away, away
    expect(bob.locator(".igym-game-notice")).to_have_text(away)
    if game(bob).get("players") is not None:
        expect(bob.locator(".igym-game-players")).to_have_text("You: right · Partner: left (connection lost)")
    shots(bob, "bob-partner-away")
    # ...then it ends for Bob with the scene's message, and he moves on.
    wait_scene(
        bob,
        "after",
    )
    seen = bob.evaluate("() => window.seenTexts")
    assert "Your partner has left the game." in seen, seen
    # Meanwhile (the grace period) Bob was told that his partner's connection dropped.
    assert any("connection" in text for text in seen), seen
    assert game(bob)["message"] == "Your partner has left the game." and game(bob)["final"] is False
    shots(bob, "bob-after")
    expect(bob.get_by_role("heading", level=1, name="Thanks")).to_be_visible()
    assert not bob.errors, bob.errors

    games = wait_records(
        server, "multiplayer_leave_end", "games", lambda rows: any(g["event"] == "ended" for g in rows)
    )
    assert [(g["event"], g.get("reason")) for g in games if g["event"] in ("started", "ended")] == [
        ("started", None),
        ("ended", "partner_left"),
    ]
    assert {g["game_id"] for g in games} == {playing["game_id"]}
    (gone,) = [g for g in games if g["event"] == "partner_left"]
    assert gone["left"] == alice_id and gone["seat"] == "left" and gone["outcome"] == "end"
    matches = wait_records(
        server,
        "multiplayer_leave_end",
        "matches",
        lambda rows: any(r["event"] == "partner_left" for r in rows),
    )
    (left,) = [m for m in matches if m["event"] == "partner_left"]
    assert left["left"] == alice_id and left["outcome"] == "end"


def test_a_bot_takes_the_seat_of_a_partner_who_left(live_server, new_page, shots):
    server, bob, alice_id, _playing = close_partner_mid_game(live_server, new_page, "experiment_leave_bot")
    notice = bob.locator(".igym-game-notice")
    took = poll(
        lambda: "computer" in game(bob).get("notice", "") and game(bob)["notice"],
        page=bob,
        what=f"the notice that a bot plays (now {game(bob).get('notice')!r})",
        timeout_s=10,
    )
    expect(notice).to_be_visible()
    expect(notice).to_have_text(took)
    assert game(bob)["phase"] == "playing"
    if game(bob).get("players") is not None:
        expect(bob.locator(".igym-game-players")).to_have_text("You: right · Partner: left (computer player)")
    tick = game(bob)["tick"]
    # The game goes on: Bob still moves his dot.
    start_y = objects(bob)["right"]["y"]
    bob.keyboard.down("ArrowUp")
    poll(lambda: objects(bob)["right"]["y"] <= start_y - 30, page=bob, what="Bob's dot to move up")
    bob.keyboard.up("ArrowUp")
    assert game(bob)["tick"] > tick
    shots(bob, "bob-with-bot")
    wait_scene(bob, "after")
    assert not bob.errors, bob.errors

    steps = wait_records(server, "multiplayer_leave_bot", "steps", lambda rows: len(rows) >= 2 * 200)
    left = [s for s in steps if s["agent"] == "left"]
    sources = [s["action_source"] for s in left]
    first_bot = sources.index("bot")
    assert first_bot > 0 and set(sources[first_bot:]) == {"bot"}, sources
    # Before the bot: Alice's own steps, then the grace period with her seat empty ("absent").
    before = sources[:first_bot]
    assert set(before) <= {"human", "default", "absent"} and before[-1] == "absent", before
    assert "absent" not in before[: before.index("absent")] and set(before[before.index("absent") :]) == {
        "absent"
    }
    assert all(s["action_source"] in ("human", "default") for s in steps if s["agent"] == "right")
    games = records(server, "multiplayer_leave_bot", "games")
    assert [(g["event"], g.get("reason")) for g in games] == [
        ("started", None),
        ("partner_left", None),
        ("ended", "completed"),
    ]
    matches = records(server, "multiplayer_leave_bot", "matches")
    (left_row,) = [m for m in matches if m["event"] == "partner_left"]
    assert left_row["left"] == alice_id and left_row["outcome"] == "bot"


def test_a_partner_who_reloads_mid_game_plays_on_in_the_same_game(live_server, new_page, shots):
    server, (alice, _alice_id), (bob, _bob_id) = play_together(live_server, new_page, "experiment_leave_end")
    first = game(alice)
    alice.reload()
    wait_scene(alice, "dots")
    again = wait_phase(alice, "playing", "countdown")
    # The same game and seat; the new page announced itself ready for it, and got a keyframe.
    assert again["game_id"] == first["game_id"] and again["seat"] == "left"
    poll(lambda: game(alice)["ready_sent"] == 1, page=alice, what="game_ready from the new page")
    poll(
        lambda: game(alice).get("keyframes", 0) >= 1 and {"left", "right"} <= set(objects(alice)),
        page=alice,
        what="a keyframe after the reload",
    )
    # Bob's banner, if the drop was long enough for one, is gone again; the game never stopped.
    poll(lambda: game(bob).get("notice") == "", page=bob, what="no notice on Bob's page", timeout_s=5)
    expect(bob.locator(".igym-game-notice")).to_be_hidden()
    start_x = objects(bob)["left"]["x"]
    hold(
        alice,
        "ArrowRight",
        bob,
        lambda o: o["left"]["x"] >= start_x + 30,
        "Alice's dot to move after her reload",
    )
    assert game(bob)["phase"] == "playing" and game(bob)["game_id"] == first["game_id"]
    shots(bob, "bob-after-alice-reloaded")
    games = records(server, "multiplayer_leave_end", "games")
    assert [g["event"] for g in games] == ["started"]
