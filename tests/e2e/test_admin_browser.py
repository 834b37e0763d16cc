"""The admin dashboard in real Chromium against `igym run`: log in with the token, watch two
participants move through a study, pause new arrivals and see a newcomer get the message; click
End game on two players' running game and see both get the partner-left ending and move on."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pyarrow.parquet as pq
from playwright.sync_api import expect

STUDY = "tests.studies.admin_study:pages"
ADMIN_TOKEN = "admin-token-for-the-browser-test-0123"


def _scene_count(admin: Any, scene_id: str) -> Any:
    return admin.locator(f'[data-testid="scenes"] tr[data-scene-id="{scene_id}"] td').nth(1)


def _continue(page: Any, title: str) -> None:
    expect(page.locator("#igym-main")).to_contain_text(title)
    page.get_by_role("button", name="Continue").click()


def test_the_dashboard_follows_two_participants_and_pauses_arrivals(live_server, new_page, shots) -> None:
    server = live_server(STUDY, env={"IGYM_ADMIN_TOKEN": ADMIN_TOKEN})

    admin = new_page()
    console: list[str] = []
    admin.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
    admin.goto(f"{server.url}/admin")
    admin.get_by_label("Admin token").fill("not-the-token-but-long-enough-000")
    admin.get_by_role("button", name="Log in").click()
    expect(admin.get_by_role("alert")).to_contain_text("not this server's admin token")
    admin.get_by_label("Admin token").fill(ADMIN_TOKEN)
    admin.get_by_role("button", name="Log in").click()
    assert admin.url == f"{server.url}/admin"  # the token is in no URL
    expect(admin.get_by_test_id("admin-status")).to_contain_text("Live")
    expect(_scene_count(admin, "intro")).to_have_text("0")

    first, second = new_page(), new_page()
    first.goto(server.url)
    second.goto(server.url)
    expect(first.locator("#igym-main")).to_have_attribute("data-scene-kind", "static")
    expect(second.locator("#igym-main")).to_have_attribute("data-scene-kind", "static")
    expect(_scene_count(admin, "intro")).to_have_text("2")
    expect(admin.get_by_test_id("count-arrivals")).to_have_text("2")

    _continue(first, "Welcome")
    expect(_scene_count(admin, "intro")).to_have_text("1")
    expect(_scene_count(admin, "middle")).to_have_text("1")
    _continue(first, "Halfway")
    _continue(second, "Welcome")
    expect(_scene_count(admin, "intro")).to_have_text("0")
    expect(_scene_count(admin, "middle")).to_have_text("1")
    expect(admin.locator('[data-testid="outcomes"] tr[data-outcome="completed"] td').nth(1)).to_have_text("1")
    expect(admin.get_by_test_id("count-finished")).to_have_text("1")
    shots(admin, "01-dashboard")

    admin.get_by_test_id("pause-message").fill("The study is full for today. Thank you!")
    admin.get_by_test_id("pause-arrivals").click()
    expect(admin.get_by_test_id("arrivals-paused")).to_contain_text("The study is full for today.")
    expect(admin.get_by_test_id("pause-arrivals")).to_have_text("Resume new arrivals")
    expect(admin.get_by_test_id("actions")).to_contain_text("arrivals_paused")

    newcomer = new_page()
    newcomer.goto(server.url)
    alert = newcomer.get_by_role("alert")
    expect(alert).to_contain_text("The study is full for today. Thank you!")
    expect(alert).to_contain_text("not taking new participants right now")
    expect(alert).to_have_attribute("data-refusal", "arrivals_paused")
    expect(alert).not_to_contain_text("technical problem")
    shots(newcomer, "02-arrivals-paused")
    # Those in the study go on.
    _continue(second, "Halfway")
    expect(admin.locator('[data-testid="outcomes"] tr[data-outcome="completed"] td').nth(1)).to_have_text("2")

    admin.get_by_test_id("pause-arrivals").click()
    expect(admin.get_by_test_id("arrivals-paused")).to_be_hidden()
    later = new_page()
    later.goto(server.url)
    expect(later.locator("#igym-main")).to_have_attribute("data-scene-kind", "static")
    shots(admin, "03-resumed")

    # The data, as the tables `igym export` writes: prepared in the background, then downloaded.
    expect(admin.get_by_test_id("download-tables")).to_be_hidden()
    admin.get_by_test_id("prepare-export").click()
    expect(admin.get_by_test_id("export-status")).to_contain_text("Made in", timeout=60_000)
    link = admin.get_by_test_id("download-tables")
    expect(link).to_contain_text("Download the tables (.zip, ")
    shots(admin, "04-export-ready")
    with admin.expect_download(timeout=30_000) as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.startswith("admin_pages-") and download.suggested_filename.endswith(
        ".zip"
    )
    with zipfile.ZipFile(download.path()) as archive:
        tables = {name.rsplit("/", 1)[1]: archive.read(name) for name in archive.namelist()}
    assert {"sessions.parquet", "admin_actions.parquet"} <= set(tables)
    sessions = pq.read_table(io.BytesIO(tables["sessions.parquet"])).to_pylist()
    assert len({r["participant_id"] for r in sessions if r["event"] == "joined"}) == 3
    expect(admin.get_by_test_id("actions")).to_contain_text("data_downloaded")
    assert not [m for m in console if "Content Security Policy" in m or "Refused" in m], console
    assert not (admin.errors or first.errors or second.errors or newcomer.errors)


#: Everything a game page shows in its overlay and notice banner, however briefly, into window.seenTexts.
SEEN_TEXTS = """() => {
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


def _log_in(admin: Any, url: str) -> str:
    """Log the admin page in; the session's public id."""
    admin.goto(f"{url}/admin")
    admin.get_by_label("Admin token").fill(ADMIN_TOKEN)
    admin.get_by_role("button", name="Log in").click()
    expect(admin.get_by_test_id("admin-status")).to_contain_text("Live")
    return admin.locator(".admin-session").inner_text().removeprefix("session ").strip()


def test_end_game_clicked_on_the_dashboard_ends_it_for_both_players(live_server, new_page, shots) -> None:
    from tests.e2e.test_multiplayer_browser import STUDY as GAME_STUDY
    from tests.e2e.test_multiplayer_browser import game, join, wait_phase
    from tests.e2e.test_survey_browser import wait_records, wait_scene

    server = live_server(f"{GAME_STUDY}:experiment_leave_end", env={"IGYM_ADMIN_TOKEN": ADMIN_TOKEN})
    admin = new_page()
    session_id = _log_in(admin, server.url)
    alice, bob = new_page(), new_page()
    alice_id = join(alice, server.url, "alice")
    wait_phase(alice, "matching")
    bob_id = join(bob, server.url, "bob")
    for page in (alice, bob):
        wait_phase(page, "playing")
    game_id = game(alice)["game_id"]
    assert game(bob)["game_id"] == game_id

    row = admin.locator(f'[data-testid="games"] tr[data-game-id="{game_id}"]')
    expect(row).to_contain_text("dots")
    expect(row.locator("td").nth(2)).to_contain_text(alice_id)
    expect(row.locator("td").nth(2)).to_contain_text(bob_id)
    expect(row.locator("td").nth(3)).to_have_text("playing")
    shots(admin, "01-game-running")
    asked: list[str] = []

    def confirm(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    admin.on("dialog", confirm)
    for page in (alice, bob):
        page.evaluate(SEEN_TEXTS)
    end = row.get_by_role("button", name="End game")
    expect(end).to_be_in_viewport()  # not clipped by its panel (the games table spans the page)
    end.click()
    expect(admin.get_by_test_id("action-feedback")).to_have_text("Done: end_game")
    assert asked and game_id in asked[0] and "partner-left" in asked[0], asked
    expect(admin.locator('[data-testid="games"]')).to_contain_text("No game is running")
    expect(admin.get_by_test_id("actions")).to_contain_text("game_ended")

    # Both players see the scene's partner-left ending, then move on to the next page.
    for page in (alice, bob):
        wait_scene(page, "after")
        expect(page.get_by_role("heading", level=1, name="Thanks")).to_be_visible()
        assert "Your partner has left the game." in page.evaluate("() => window.seenTexts")
        assert game(page)["message"] == "Your partner has left the game."
    shots(alice, "03-alice-moved-on")
    shots(admin, "04-dashboard-after")

    (action,) = [
        r
        for r in wait_records(
            server,
            "multiplayer_leave_end",
            "admin_actions",
            lambda rows: any(r["action"] == "game_ended" for r in rows),
        )
        if r["action"] == "game_ended"
    ]
    assert action["admin_session"] == session_id and action["at"]
    assert action["detail"]["game_id"] == game_id
    assert sorted(action["detail"]["participant_ids"]) == sorted([alice_id, bob_id])
    games = wait_records(
        server, "multiplayer_leave_end", "games", lambda rows: any(g["event"] == "ended" for g in rows)
    )
    assert [(g["event"], g.get("reason")) for g in games if g["event"] in ("started", "ended")] == [
        ("started", None),
        ("ended", "ended_by_admin"),
    ]
    assert {g["game_id"] for g in games} == {game_id}
    # Their outcome is not changed by it (unlike a partner's leaving): Alice finishes "completed".
    alice.get_by_role("button", name="Continue").click()
    wait_scene(alice, "end")
    finished = wait_records(
        server,
        "multiplayer_leave_end",
        "sessions",
        lambda rows: any(r["event"] == "finished" and r["participant_id"] == alice_id for r in rows),
    )
    assert [r["detail"]["outcome"] for r in finished if r["event"] == "finished"] == ["completed"]
    assert not (admin.errors or alice.errors or bob.errors)
