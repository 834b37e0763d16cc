"""The admin dashboard in real Chromium against `igym run`: log in with the token, watch two
participants move through a study, pause new arrivals and see a newcomer get the message."""

from __future__ import annotations

from typing import Any

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
    assert not [m for m in console if "Content Security Policy" in m or "Refused" in m], console
    assert not (admin.errors or first.errors or second.errors or newcomer.errors)
