"""Recruitment platforms in real Chromium against `igym run`: Prolific's completion URL and code per
outcome, a second tab, a finished PID coming back; MTurk's preview and its form POST.

The page may load only loopback URLs; the way back to the platform is caught by a route for the
platform's host that records what the page sent (URL, method, body) and answers with a stub page.
At that moment the participant's `finished` record must already be on disk.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from playwright.sync_api import expect

from igym_core.testing import read_records
from tests.conftest import LiveServer
from tests.e2e.recruit_study import CODES, NO_PARTNER_MESSAGE

STUDY = "tests/e2e/recruit_study.py"
SONA = "tests/e2e/sona_plugin.py"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveServer]]:
    root = tmp_path_factory.mktemp("recruit")
    targets = {
        name: (f"{STUDY}:{name}", ())
        for name in ("prolific", "prolific_steps", "prolific_pair", "mturk", "screened")
    }
    targets["sona"] = (f"{SONA}:experiment", ("--plugin", "tests.e2e.sona_plugin"))
    started: dict[str, LiveServer] = {}

    def start(name: str) -> None:  # (in threads: each start mostly waits for its server)
        target, args = targets[name]
        started[name] = LiveServer(target, root / name / "data", args=list(args))

    try:
        with ThreadPoolExecutor(len(targets)) as pool:
            list(pool.map(start, targets))
        yield started
    finally:
        for server in started.values():
            server.stop()


class Platform:
    """Catches the page's way back to a platform host; `sessions` is read as the request arrives."""

    def __init__(self, page: Any, host: str, server: LiveServer, experiment_id: str) -> None:
        self.requests: list[dict[str, Any]] = []
        self._page = page
        self._server, self._experiment_id = server, experiment_id

        def handle(route: Any) -> None:
            request = route.request
            self.requests.append(
                {
                    "url": request.url,
                    "method": request.method,
                    "body": request.post_data,
                    "sessions": self.sessions(),
                }
            )
            route.fulfill(status=200, content_type="text/html", body="<h1>Back on the platform</h1>")

        page.context.route(
            f"https://{host}/**", handle
        )  # registered last: runs before the loopback-only route

    def sessions(self) -> list[dict[str, Any]]:
        return read_records(self._server.data_dir, self._experiment_id, "sessions")

    def wait(self, timeout_s: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while not self.requests and time.monotonic() < deadline:
            self._page.wait_for_timeout(50)  # (lets Playwright run the route handler meanwhile)
        assert self.requests, "the page never went back to the platform"
        return self.requests[0]


def _eventually(page: Any, read: Any, timeout_s: float = 10) -> Any:
    """``read()`` once it returns something (records reach the disk within the flush interval)."""
    deadline = time.monotonic() + timeout_s
    while not (found := read()) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    return found


def _prolific_link(server: LiveServer, pid: str, session: str) -> str:
    return f"{server.url}/?{urlencode({'PROLIFIC_PID': pid, 'STUDY_ID': 'ST1', 'SESSION_ID': session})}"


def _finished(sessions: list[dict[str, Any]], key: str, value: str) -> list[dict[str, Any]]:
    return [r for r in sessions if r["event"] == "finished" and r["params"].get(key) == value]


def test_prolific_completed_second_tab_and_a_finished_pid_coming_back(servers, new_page, shots) -> None:
    server = servers["prolific"]
    first = new_page()
    platform = Platform(first, "app.prolific.com", server, "recruit_prolific")
    first.goto(_prolific_link(server, "PID1", "SESS1"))
    expect(first.locator("#igym-main")).to_have_attribute("data-scene-kind", "static")

    # A second tab of the same browser resumes the same participant; the first one stops.
    second = first.context.new_page()
    second.errors = []
    second.goto(_prolific_link(server, "PID1", "SESS1"))
    expect(second.locator("#igym-main")).to_have_attribute("data-scene-kind", "static")
    expect(first.get_by_text("open in another tab")).to_be_visible()
    joined = [r for r in platform.sessions() if r["event"] == "joined"]
    assert len(joined) == 1
    assert joined[0]["detail"]["recruitment_ids"] == {"PROLIFIC_PID": "PID1", "SESSION_ID": "SESS1"}
    assert joined[0]["params"] == {"PROLIFIC_PID": "PID1", "STUDY_ID": "ST1", "SESSION_ID": "SESS1"}

    second.get_by_role("button", name="Continue").click()
    expect(second.locator(".igym-code")).to_have_text("C1DONE")
    shots(second, "01-prolific-end")
    back = platform.wait()
    assert back["method"] == "GET"
    assert back["url"] == "https://app.prolific.com/submissions/complete?cc=C1DONE"
    finished = _finished(back["sessions"], "PROLIFIC_PID", "PID1")  # on disk before the page left
    assert len(finished) == 1 and finished[0]["detail"]["outcome"] == "completed"
    assert finished[0]["detail"]["way_back"]["code"] == "C1DONE"

    # The same PID from another browser (even with a new Prolific session) is told and kept out.
    again = new_page()
    again.goto(_prolific_link(server, "PID1", "SESS2"))
    alert = again.get_by_role("alert")
    expect(alert).to_contain_text("already taken part")
    expect(alert).to_have_attribute("data-refusal", "entry_refused")
    shots(again, "02-finished-pid")
    refused = _eventually(again, lambda: [r for r in platform.sessions() if r["event"] == "entry_refused"])
    assert [r["detail"]["already_finished"] for r in refused] == [finished[0]["participant_id"]]
    assert not (first.errors or second.errors or again.errors)


def test_the_same_pid_and_session_in_another_browser_continues_the_participant(servers, new_page) -> None:
    server = servers["prolific_steps"]
    first = new_page()
    first.goto(_prolific_link(server, "PID7", "SESS7"))
    first.get_by_role("button", name="Continue").click()
    expect(first.get_by_text("Second page")).to_be_visible()

    # Another browser (its own storage: no token) with the same PID and SESSION_ID continues there.
    second = new_page()
    second.goto(_prolific_link(server, "PID7", "SESS7"))
    expect(second.get_by_text("Second page")).to_be_visible()
    expect(first.get_by_text("open in another tab")).to_be_visible()

    def sessions() -> list[dict[str, Any]]:
        return read_records(server.data_dir, "recruit_prolific_steps", "sessions")

    resumed = _eventually(
        second, lambda: [r for r in sessions() if r["detail"].get("reason") == "same_recruitment_identity"]
    )
    joined = [r for r in sessions() if r["event"] == "joined"]
    assert len(joined) == 1 and [r["participant_id"] for r in resumed] == [joined[0]["participant_id"]]
    assert resumed[0]["scene_id"] == "middle"

    # Without SESSION_ID the link does not name the submission: a second participant, as before.
    third = new_page()
    third.goto(f"{server.url}/?{urlencode({'PROLIFIC_PID': 'PID7', 'STUDY_ID': 'ST1'})}")
    expect(third.get_by_text("Press continue to go on.")).to_be_visible()
    assert len(_eventually(third, lambda: [r for r in sessions() if r["event"] == "joined"][1:])) == 1
    assert not (first.errors or second.errors or third.errors)


def test_prolific_no_partner_goes_back_with_its_code_after_the_data_is_stored(servers, new_page) -> None:
    server = servers["prolific_pair"]
    page = new_page()
    platform = Platform(page, "app.prolific.com", server, "recruit_prolific_pair")
    page.goto(_prolific_link(server, "PID9", "SESS9"))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text(NO_PARTNER_MESSAGE)).to_be_visible(timeout=10_000)
    back = platform.wait()
    assert back["url"] == "https://app.prolific.com/submissions/complete?cc=C3NOPART"
    finished = _finished(back["sessions"], "PROLIFIC_PID", "PID9")
    assert len(finished) == 1 and finished[0]["detail"]["outcome"] == "waiting_timeout"
    assert finished[0]["detail"]["way_back"]["outcome"] == "no_partner"
    assert not page.errors


def _mturk_link(
    server: LiveServer, assignment: str, submit_to: str = "https://workersandbox.mturk.com"
) -> str:
    params = {"assignmentId": assignment, "hitId": "HIT1", "workerId": "W1", "turkSubmitTo": submit_to}
    if assignment == "ASSIGNMENT_ID_NOT_AVAILABLE":
        params = {"assignmentId": assignment, "hitId": "HIT1"}
    return f"{server.url}/?{urlencode(params)}"


def test_mturk_preview_then_the_accepted_hit_posts_to_externalsubmit(servers, new_page, shots) -> None:
    server = servers["mturk"]
    preview = new_page()
    preview.goto(_mturk_link(server, "ASSIGNMENT_ID_NOT_AVAILABLE"))
    panel = preview.locator("[data-refusal=preview]")
    expect(panel).to_contain_text("Accept the HIT to start")
    expect(preview.get_by_role("button", name="Continue")).to_have_count(0)  # the task is not there
    shots(preview, "01-mturk-preview")

    # A link whose turkSubmitTo is not MTurk's would send the form elsewhere: refused at entry.
    elsewhere = new_page()
    elsewhere.goto(_mturk_link(server, "A0", submit_to="https://evil.example"))
    expect(elsewhere.locator("[data-refusal=entry_refused]")).to_contain_text("turkSubmitTo")

    page = new_page()
    platform = Platform(page, "workersandbox.mturk.com", server, "recruit_mturk")
    page.goto(_mturk_link(server, "A1"))
    page.get_by_role("button", name="Continue").click()
    back = platform.wait()
    assert back["method"] == "POST"
    assert back["url"] == "https://workersandbox.mturk.com/mturk/externalSubmit"
    assert parse_qs(back["body"]) == {"assignmentId": ["A1"], "outcome": ["completed"]}
    sessions = back["sessions"]
    assert len(_finished(sessions, "assignmentId", "A1")) == 1
    joined = [r for r in sessions if r["event"] == "joined"]
    assert [r["params"]["assignmentId"] for r in joined] == ["A1"]  # the preview and the bad link made none
    assert not (preview.errors or page.errors)


# A slow link to the server: every message the page receives arrives 250 ms late (in order).
SLOW_DOWNLINK = """
(() => {
  const own = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  Object.defineProperty(WebSocket.prototype, "onmessage", {
    configurable: true,
    get() { return own.get.call(this); },
    set(handler) {
      own.set.call(this, handler && ((event) => setTimeout(() => handler.call(this, event), 250)));
    },
  });
})();
"""
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1"
)


def _screening(sessions: list[dict[str, Any]], pid: str) -> dict[str, Any]:
    rows = [r for r in sessions if r["event"] == "screening" and r["params"].get("PROLIFIC_PID") == pid]
    assert len(rows) == 1
    return {c["check"]: c for c in rows[0]["detail"]["checks"]}


@pytest.mark.parametrize(
    ("case", "options", "failed", "says"),
    [
        ("fine", {}, None, None),
        ("small_window", {"viewport": {"width": 700, "height": 900}}, "window_width", "700 pixels wide"),
        ("phone", {"user_agent": IPHONE}, "device", "cannot be done on a phone"),
        ("slow_ping", {"init_script": SLOW_DOWNLINK}, "rtt", "too slow"),
    ],
)
def test_screening_judges_on_the_server_records_each_check_and_returns_with_the_code(
    servers, new_page, shots, case, options, failed, says
) -> None:
    server = servers["screened"]
    options = dict(options)
    init_script = options.pop("init_script", None)
    page = new_page(**options)
    if init_script:
        page.add_init_script(init_script)
    platform = Platform(page, "app.prolific.com", server, "recruit_screened")
    pid = f"SCR-{case}"
    page.goto(_prolific_link(server, pid, "S1"))
    if failed is None:
        expect(page.locator("#igym-main")).to_have_attribute("data-scene-kind", "static", timeout=15_000)
        checks = _screening(platform.sessions(), pid)
        assert all(c["passed"] for c in checks.values())
        assert set(checks) == {"browser", "device", "window_width", "window_height", "rtt"}
        assert checks["browser"]["measured"]["family"] == "chrome"
        assert len(checks["rtt"]["measured"]["rtt_ms"]) == 5
        return
    reasons = page.locator(".igym-exit-reasons")
    expect(reasons).to_contain_text(says, timeout=15_000)
    shots(page, f"screened-{case}")
    back = platform.wait()
    assert back["url"] == "https://app.prolific.com/submissions/complete?cc=C2SCREEN"
    checks = _screening(back["sessions"], pid)
    assert [name for name, c in checks.items() if not c["passed"]] == [failed]
    finished = _finished(back["sessions"], "PROLIFIC_PID", pid)
    assert len(finished) == 1 and finished[0]["detail"]["outcome"] == "screened_out"
    if case == "slow_ping":
        assert checks["rtt"]["measured"]["median_ms"] >= 250
        assert checks["rtt"]["threshold"] == {"max_median_ms": 150, "pings": 5}
    if case == "small_window":
        assert checks["window_width"] == {
            "check": "window_width",
            "threshold": 800,
            "measured": 700,
            "passed": False,
            "reason": checks["window_width"]["reason"],
        }
    assert not page.errors


def test_a_platform_from_a_plugin_works_end_to_end(servers, new_page) -> None:
    server = servers["sona"]
    page = new_page()
    platform = Platform(page, "lab.sona-systems.com", server, "recruit_sona")
    page.goto(f"{server.url}/?id=S%2042")
    page.get_by_role("button", name="Continue").click()
    back = platform.wait()
    assert back["url"] == (
        "https://lab.sona-systems.com/webstudy_credit.aspx?experiment_id=123&credit_token=tok9&survey_code=S%2042"
    )
    joined = [r for r in back["sessions"] if r["event"] == "joined"]
    assert [r["detail"]["recruitment_ids"] for r in joined] == [{"sona_id": "S 42"}]
    assert _finished(back["sessions"], "id", "S 42")[0]["detail"]["way_back"]["url"] == back["url"]
    again = new_page()  # the same person from another browser
    again.goto(f"{server.url}/?id=S%2042")
    expect(again.locator("[data-refusal=entry_refused]")).to_contain_text("already taken part")
    assert not (page.errors or again.errors)


def test_the_page_reports_tab_focus_and_full_screen_changes(servers, new_page) -> None:
    server = servers["prolific"]
    page = new_page()
    page.goto(_prolific_link(server, "PID-EVENTS", "S1"))
    expect(page.locator("#igym-main")).to_have_attribute("data-scene-kind", "static")
    page.evaluate(
        "() => { window.dispatchEvent(new Event('blur')); window.dispatchEvent(new Event('focus')); }"
    )
    page.locator("#igym-main").click()  # a user gesture, which full screen needs
    page.evaluate("() => document.documentElement.requestFullscreen()")
    page.evaluate("() => document.exitFullscreen()")
    sessions = Platform(page, "app.prolific.com", server, "recruit_prolific").sessions

    def events() -> list[str]:
        return [
            r["detail"]["page_event"]
            for r in sessions()
            if r["event"] == "page_event" and r["params"]["PROLIFIC_PID"] == "PID-EVENTS"
        ]

    _eventually(page, lambda: len(events()) >= 4)
    assert events() == ["blur", "focus", "fullscreen_enter", "fullscreen_exit"]
    assert not page.errors


# --- every way back, on both platforms ---------------------------------------------------------


@pytest.fixture(scope="module")
def ways_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveServer]]:
    root = tmp_path_factory.mktemp("ways")
    started: dict[str, LiveServer] = {}

    def start(platform: str) -> None:
        started[platform] = LiveServer(f"{STUDY}:ways_{platform}", root / platform / "data")

    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(start, ("prolific", "mturk")))
        yield started
    finally:
        for server in started.values():
            server.stop()


#: igym's outcome in the `finished` record behind each platform outcome in `ways_*`.
IGYM_OUTCOME = {
    "completed": "completed",
    "screened_out": "screened_out",
    "no_partner": "waiting_timeout",
    "partner_left": "partner_left",
    "timed_out": "game_abandoned",
}
PLATFORM_HOST = {"prolific": "app.prolific.com", "mturk": "workersandbox.mturk.com"}


def _ways_link(server: LiveServer, platform: str, person: str) -> str:
    if platform == "prolific":
        return _prolific_link(server, person, f"S-{person}")
    return _mturk_link(server, person).replace("workerId=W1", f"workerId=W-{person}")


@pytest.mark.parametrize("platform", ["prolific", "mturk"])
@pytest.mark.parametrize("outcome", list(IGYM_OUTCOME))
def test_each_outcome_goes_back_to_the_platform_with_its_code(
    ways_servers, new_page, shots, platform, outcome
) -> None:
    from tests.e2e.game_pages import wait_phase
    from tests.e2e.test_survey_browser import wait_scene

    server = ways_servers[platform]
    experiment_id = f"recruit_ways_{platform}"
    person = f"{platform[:2].upper()}-{outcome}"
    page = new_page()
    if outcome == "screened_out":
        page.set_viewport_size({"width": 700, "height": 900})
    platform_side = Platform(page, PLATFORM_HOST[platform], server, experiment_id)
    page.goto(_ways_link(server, platform, person))
    partner = None
    if outcome in ("completed", "partner_left"):  # a second person, who plays with them
        partner = new_page()
        partner.goto(_ways_link(server, platform, f"{person}-partner"))
    if outcome != "screened_out":
        for each in (page, partner) if partner else (page,):
            wait_scene(each, "intro", timeout_s=15)
            each.get_by_role("button", name="Continue").click()
    if outcome == "partner_left":
        for each in (page, partner):
            wait_scene(each, "pair", timeout_s=20)
            wait_phase(each, "playing")
        partner.close()  # type: ignore[union-attr]
    if outcome == "timed_out":  # they close the page mid-game and come back after it was abandoned
        wait_scene(page, "solo", timeout_s=15)
        wait_phase(page, "playing")
        context = page.context
        page.close()
        time.sleep(2.5)  # > abandon_after_s (1 s), with room for a loaded machine
        page = context.new_page()
        page.errors = []
        platform_side._page = page  # (its route is the context's: it still catches the way back)
        page.goto(_ways_link(server, platform, person))
    back = platform_side.wait(timeout_s=30)
    shots(page, f"{platform}-{outcome}")
    code = CODES[outcome]
    if platform == "prolific":
        assert back["method"] == "GET"
        assert back["url"] == f"https://app.prolific.com/submissions/complete?cc={code}"
        key = "PROLIFIC_PID"
    else:
        assert back["method"] == "POST"
        assert back["url"] == "https://workersandbox.mturk.com/mturk/externalSubmit"
        assert parse_qs(back["body"]) == {
            "assignmentId": [person],
            "outcome": [outcome],
            "completion_code": [code],
        }
        key = "assignmentId"
    (finished,) = _finished(back["sessions"], key, person)  # stored before the page left
    assert finished["detail"]["outcome"] == IGYM_OUTCOME[outcome]
    assert finished["detail"]["way_back"]["code"] == code
    assert finished["detail"]["way_back"]["outcome"] == outcome
    assert not page.errors


def test_the_same_mturk_assignment_in_a_second_tab_and_another_browser_continues(servers, new_page) -> None:
    server = servers["mturk"]
    link = _mturk_link(server, "A2").replace("workerId=W1", "workerId=W2")

    def sessions() -> list[dict[str, Any]]:
        return read_records(server.data_dir, "recruit_mturk", "sessions")

    first = new_page()
    first.goto(link)
    expect(first.get_by_text("Press continue to go on.")).to_be_visible()
    # A second tab of the same browser takes over the same participant.
    tab = first.context.new_page()
    tab.errors = []
    tab.goto(link)
    expect(tab.get_by_text("Press continue to go on.")).to_be_visible()
    expect(first.get_by_text("open in another tab")).to_be_visible()
    # Another browser (no token) with the same worker and assignment continues it too.
    other = new_page()
    platform = Platform(other, "workersandbox.mturk.com", server, "recruit_mturk")
    other.goto(link)
    expect(other.get_by_text("Press continue to go on.")).to_be_visible()
    expect(tab.get_by_text("open in another tab")).to_be_visible()
    joined = [r for r in sessions() if r["event"] == "joined" and r["params"].get("workerId") == "W2"]
    assert len(joined) == 1
    assert joined[0]["detail"]["recruitment_ids"] == {"workerId": "W2", "assignmentId": "A2"}
    resumed = _eventually(
        other,
        lambda: [
            r
            for r in sessions()
            if r["detail"].get("reason") == "same_recruitment_identity"
            and r["params"].get("workerId") == "W2"
        ],
    )
    assert [r["participant_id"] for r in resumed] == [joined[0]["participant_id"]]

    other.get_by_role("button", name="Continue").click()
    back = platform.wait()
    assert parse_qs(back["body"]) == {"assignmentId": ["A2"], "outcome": ["completed"]}
    assert len(_finished(back["sessions"], "workerId", "W2")) == 1
    # The worker who has finished is kept out from a new browser, with this or another assignment.
    for assignment in ("A2", "A3"):
        again = new_page()
        again.goto(_mturk_link(server, assignment).replace("workerId=W1", "workerId=W2"))
        expect(again.locator("[data-refusal=entry_refused]")).to_contain_text("already taken part")
        assert not again.errors
    assert len([r for r in sessions() if r["event"] == "joined" and r["params"].get("workerId") == "W2"]) == 1
    assert not (first.errors or tab.errors or other.errors)
