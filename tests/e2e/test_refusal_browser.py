"""A participant the server refuses to start sees why, in real Chromium against `igym run`."""

from __future__ import annotations

from urllib.parse import urlencode

from playwright.sync_api import expect

EXAMPLE = "igym_core.examples.survey_study:experiment"


def test_the_page_says_why_a_new_participant_was_refused(live_server, new_page, shots) -> None:
    server = live_server(EXAMPLE, env={"IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN": "1"})

    too_long = new_page()
    too_long.goto(f"{server.url}/?{urlencode({f'p{i}': 'x' for i in range(17)})}")
    alert = too_long.get_by_role("alert")
    expect(alert).to_contain_text("The study could not start")
    expect(alert).to_contain_text("17 URL parameters")
    expect(alert).to_contain_text("at most 16")
    expect(alert).not_to_contain_text("technical problem")
    shots(too_long, "01-url-parameters")

    first = new_page()
    first.goto(f"{server.url}/?PROLIFIC_PID=first")
    expect(first.locator("#igym-main")).to_have_attribute("data-scene-kind", "start")

    second = new_page()  # another browser on the same address, within the minute
    second.goto(f"{server.url}/?PROLIFIC_PID=second")
    alert = second.get_by_role("alert")
    expect(alert).to_contain_text("The study could not start")
    expect(alert).to_contain_text("Too many new sessions")
    expect(alert).to_have_attribute("data-refusal", "too_many_new_participants")
    shots(second, "02-rate-limited")

    # the participant who started is never refused: a reload resumes them
    first.reload()
    expect(first.locator("#igym-main")).to_have_attribute("data-scene-kind", "start")
    assert first.evaluate("() => window.igym.state.connected") is True
    assert not (too_long.errors or first.errors or second.errors)
