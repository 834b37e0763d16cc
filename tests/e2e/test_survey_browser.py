"""A participant in real Chromium against a real `igym run` process: the example survey study,
the redirect back to the recruitment platform, a second tab, and keyboard-only use.

Everything goes through what a participant does (clicks, typing, keys) and accessible locators
(labels, roles), so the tests also show that the forms can be used by name.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from playwright.sync_api import Locator, Page, expect

from igym_core.testing import poll, read_records

EXAMPLE = "igym_core.examples.survey_study:experiment"
CODE_RE = re.compile(r"^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{8}$")
PARAMS = {"PROLIFIC_PID": "abc", "STUDY_ID": "s1", "SESSION_ID": "x"}


# ---- helpers ------------------------------------------------------------------------------------


def state(page: Page) -> dict[str, Any]:
    return page.evaluate("() => window.igym && window.igym.state")


def wait_scene(page: Page, scene_id: str, instance: int = 0, timeout_s: float = 10) -> dict[str, Any]:
    """Wait until the client shows `scene_id` (instance), connected."""

    def shown() -> dict[str, Any] | None:
        s = state(page)
        ok = s and s["connected"] and s["scene_id"] == scene_id and s["instance"] == instance
        return s if ok else None

    return poll(
        shown, page, f"scene {scene_id}#{instance}", timeout_s, detail=lambda: f"state: {state(page)}"
    )


def records(server: Any, experiment_id: str, record_type: str) -> list[dict[str, Any]]:
    return read_records(server.data_dir, experiment_id, record_type)


def wait_records(
    server: Any, experiment_id: str, record_type: str, predicate: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """Records are flushed at most every 500 ms: wait until `predicate` holds for them."""
    return poll(
        lambda: (rows := records(server, experiment_id, record_type)) and predicate(rows) and rows,
        what=f"{record_type} records",
    )


def continue_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Continue", exact=True)


def group(page: Page, prompt: str) -> Locator:
    """A question shown as a fieldset: its accessible name is the prompt (the legend)."""
    return page.get_by_role("group", name=prompt, exact=True)


def error_of(control: Locator) -> Locator:
    """The visible error message the control points to with aria-describedby."""
    ids = (control.get_attribute("aria-describedby") or "").split()
    errors = [i for i in ids if i.endswith("-error")]
    assert errors, f"no error message linked with aria-describedby (ids: {ids})"
    return control.page.locator(f"[id='{errors[0]}']")


def submit_and_wait(page: Page, next_scene: str, instance: int = 0) -> None:
    continue_button(page).click()
    wait_scene(page, next_scene, instance)


# ---- scenes -------------------------------------------------------------------------------------


def pass_consent(page: Page, title: str = "Welcome") -> None:
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible()
    agree = page.get_by_role("checkbox", name="I have read the information above and agree to take part.")
    expect(continue_button(page)).to_be_disabled()
    agree.check()
    expect(continue_button(page)).to_be_enabled()


def fill_game_taste(page: Page) -> dict[str, Any]:
    expect(page.get_by_role("heading", level=1, name="Your taste in games")).to_be_visible()
    # Likert: click a point.
    enjoy = group(page, "I enjoy playing against other people.")
    enjoy.get_by_role("radio", name="6", exact=True).click()
    expect(enjoy.get_by_role("radio", name="6", exact=True)).to_be_checked()
    # Slider: keyboard. It starts in the middle (20) and counts as unanswered until moved.
    slider = page.get_by_role("slider", name="About how many hours a week do you play?")
    expect(slider).to_have_attribute("aria-valuetext", "Not answered yet")
    expect(page.get_by_text("Not answered yet — move the slider to answer")).to_be_visible()
    slider.focus()
    for _ in range(3):
        slider.press("ArrowRight")
    expect(slider).to_have_value("23")
    expect(slider).to_have_attribute("aria-valuetext", "23")
    expect(page.get_by_text("Your answer: 23", exact=True)).to_be_visible()
    # Option boxes: click a card (its label text).
    partner = group(page, "Who would you rather play with?")
    partner.get_by_text("An AI partner", exact=True).click()
    expect(partner.get_by_role("radio", name="An AI partner")).to_be_checked()
    expect(partner.get_by_role("radio", name="A friend")).not_to_be_checked()
    return {"enjoy_competition": 6, "hours_per_week": 23, "partner": "ai"}


def last_touch_game_taste(page: Page, answers: dict[str, Any]) -> None:
    """A change made just before the reload, well inside the draft's 300 ms debounce."""
    group(page, "Who would you rather play with?").get_by_text("A stranger", exact=True).click()
    answers["partner"] = "stranger"


def assert_game_taste_restored(page: Page) -> None:
    enjoy = group(page, "I enjoy playing against other people.")
    expect(enjoy.get_by_role("radio", name="6", exact=True)).to_be_checked()
    slider = page.get_by_role("slider", name="About how many hours a week do you play?")
    expect(slider).to_have_value("23")
    expect(slider).to_have_attribute("aria-valuetext", "23")
    expect(page.get_by_text("Your answer: 23", exact=True)).to_be_visible()
    partner = group(page, "Who would you rather play with?")
    expect(partner.get_by_role("radio", name="A stranger")).to_be_checked()
    expect(partner.get_by_role("radio", name="An AI partner")).not_to_be_checked()


TEAMMATE = "Someone who listens,\nshares the load and stays calm."


def fill_teamwork(page: Page) -> dict[str, Any]:
    expect(page.get_by_role("heading", level=1, name="Playing in a team")).to_be_visible()
    trust = group(page, "I trust teammates I have never met.")
    trust.get_by_role("radio", name="4", exact=True).click()
    expect(trust.get_by_role("radio", name="4", exact=True)).to_be_checked()
    text = page.get_by_role("textbox", name="What makes a good teammate?")
    expect(text).to_have_attribute("placeholder", "A sentence or two")
    text.fill("")
    text.press_sequentially(TEAMMATE.split("\n")[0])
    text.press("Enter")  # a newline in a multiline answer, not a submit
    text.press_sequentially(TEAMMATE.split("\n")[1])
    expect(text).to_have_value(TEAMMATE)
    return {"trust": 4, "good_teammate": TEAMMATE}


def last_touch_teamwork(page: Page, answers: dict[str, Any]) -> None:
    """A change made just before the reload, well inside the draft's 300 ms debounce."""
    text = page.get_by_role("textbox", name="What makes a good teammate?")
    text.press("End")
    text.press_sequentially(" Always.")
    answers["good_teammate"] = TEAMMATE + " Always."


def assert_teamwork_restored(page: Page) -> None:
    trust = group(page, "I trust teammates I have never met.")
    expect(trust.get_by_role("radio", name="4", exact=True)).to_be_checked()
    text = page.get_by_role("textbox", name="What makes a good teammate?")
    expect(text).to_have_value(TEAMMATE + " Always.")


def check_teammate_min_length(page: Page, shots: Any) -> None:
    """The optional multiline answer has min_length=10: a short answer is refused in the browser."""
    text = page.get_by_role("textbox", name="What makes a good teammate?")
    text.fill("Kind")
    continue_button(page).click()
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(error_of(text)).to_have_text("Please write at least 10 characters (you wrote 4).")
    expect(error_of(text)).to_be_visible()
    expect(text).to_be_focused()
    shots(page, "teamwork-min-length-error")
    assert state(page)["scene_id"] == "teamwork"


# ---- 1. the example study, start to end ---------------------------------------------------------


def test_participant_walks_the_example_study(live_server: Any, new_page: Any, shots: Any) -> None:
    server = live_server(EXAMPLE)
    page = new_page()
    page.goto(f"{server.url}/?PROLIFIC_PID=abc&STUDY_ID=s1&SESSION_ID=x")

    # Consent: continue only once the box is ticked.
    wait_scene(page, "consent")
    progress = page.get_by_role("progressbar", name="Study progress")
    expect(progress).to_have_attribute("aria-valuetext", "Step 1 of 8")
    shots(page, "01-consent")
    pass_consent(page)
    shots(page, "02-consent-ticked")
    participant_id = state(page)["participant_id"]
    assert participant_id and participant_id.startswith("p-")
    submit_and_wait(page, "instructions")

    # Instructions: continue disabled for min_duration_ms (1500), then enabled.
    shown_at = time.monotonic()
    expect(page.get_by_role("heading", level=1, name="How this study works")).to_be_visible()
    expect(continue_button(page)).to_be_disabled()
    expect(page.get_by_text(re.compile(r"^You can continue in \d seconds?\.$"))).to_be_visible()
    shots(page, "03-instructions-waiting")
    expect(continue_button(page)).to_be_enabled(timeout=5000)
    assert time.monotonic() - shown_at >= 1.0, "continue was enabled before min_duration_ms"
    expect(page.get_by_text(re.compile(r"^You can continue in"))).to_be_hidden()
    shots(page, "04-instructions-ready")
    submit_and_wait(page, "about_you")

    # about_you: an empty submit shows an error next to every required question.
    expect(page.get_by_role("heading", level=1, name="About you")).to_be_visible()
    nickname = page.get_by_role("textbox", name="What should we call you?")
    age = group(page, "How old are you?")
    devices = group(page, "Which devices do you play games on? Choose all that apply.")
    continue_button(page).click()
    expect(nickname).to_have_attribute("aria-invalid", "true")
    expect(error_of(nickname)).to_have_text("Please answer this question.")
    expect(error_of(nickname)).to_be_visible()
    expect(age).to_have_attribute("aria-invalid", "true")
    expect(error_of(age)).to_have_text("Please choose an option.")
    for radio in age.get_by_role("radio").all():
        expect(radio).to_have_attribute("aria-invalid", "true")
    expect(devices).to_have_attribute("aria-invalid", "true")
    expect(error_of(devices)).to_have_text("Please select at least one option.")
    expect(page.get_by_text("Please correct the 3 highlighted answers above.")).to_be_visible()
    expect(nickname).to_be_focused()  # the first invalid question
    assert state(page)["scene_id"] == "about_you"
    shots(page, "05-about-you-errors")

    nickname.fill("Sam")
    expect(nickname).not_to_have_attribute("aria-invalid", "true")  # re-validated as they type
    age.get_by_role("radio", name="25–34").check()
    devices.get_by_role("checkbox", name="Computer").check()
    devices.get_by_role("checkbox", name="Phone or tablet").check()
    expect(devices.get_by_role("checkbox", name="Games console")).not_to_be_checked()
    expect(page.get_by_text("Please correct the")).to_be_hidden()
    shots(page, "06-about-you-filled")
    continue_button(page).click()

    # The two randomised surveys; the order is drawn per participant.
    first = poll(
        lambda: (s := state(page))["scene_id"] in ("game_taste", "teamwork") and s["scene_id"],
        page=page,
        what="the first randomised survey",
    )
    second = "teamwork" if first == "game_taste" else "game_taste"
    fill = {"game_taste": fill_game_taste, "teamwork": fill_teamwork}
    last_touch = {"game_taste": last_touch_game_taste, "teamwork": last_touch_teamwork}
    restored = {"game_taste": assert_game_taste_restored, "teamwork": assert_teamwork_restored}

    expected: dict[tuple[str, int], dict[str, Any]] = {
        ("consent", 0): {"agree": True},
        ("about_you", 0): {"nickname": "Sam", "age_group": "25–34", "devices": ["pc", "phone"]},
    }
    # Answer part of the first survey, reload, and find the answers again (the draft).
    expected[(first, 0)] = fill[first](page)
    shots(page, f"07-{first}-before-reload")
    last_touch[first](page, expected[(first, 0)])
    page.reload()  # at once: the page flushes the pending draft when it is hidden
    wait_scene(page, first)
    assert state(page)["participant_id"] == participant_id
    restored[first](page)
    shots(page, f"08-{first}-restored-draft")
    if first == "teamwork":
        check_teammate_min_length(page, shots)
        expected[(first, 0)] = fill_teamwork(page)
    submit_and_wait(page, second)

    expected[(second, 0)] = fill[second](page)
    if second == "teamwork":
        check_teammate_min_length(page, shots)
        fill_teamwork(page)
    shots(page, f"09-{second}")
    submit_and_wait(page, "mood", 0)

    # mood, twice (instances 0 and 1).
    for instance, point in ((0, 2), (1, 5)):
        expect(page.get_by_role("heading", level=1, name="Right now")).to_be_visible()
        energy = group(page, "How energetic do you feel right now?")
        expect(energy.get_by_role("radio")).to_have_count(5)
        for radio in energy.get_by_role("radio").all():
            expect(radio).not_to_be_checked()  # the second time starts empty too
        label = {2: "2", 5: "5 – Full of energy"}[point]
        energy.get_by_role("radio", name=label, exact=True).click()
        expect(energy.get_by_role("radio", name=label, exact=True)).to_be_checked()
        shots(page, f"10-mood-{instance}")
        expected[("mood", instance)] = {"energy": point}
        if instance == 0:
            submit_and_wait(page, "mood", 1)
        else:
            submit_and_wait(page, "done")

    # The end: a completion code.
    expect(page.get_by_role("heading", level=1, name="Thank you")).to_be_visible()
    expect(page.get_by_text("Thank you for taking part! Your completion code is below.")).to_be_visible()
    completion = page.get_by_role("region", name="Your completion code")
    code_el = completion.get_by_text(CODE_RE)
    expect(code_el).to_be_visible()
    code = code_el.inner_text().strip()
    assert CODE_RE.match(code), code
    expect(completion.get_by_role("button", name="Copy")).to_be_visible()
    expect(progress).to_have_attribute("aria-valuetext", "Step 8 of 8")
    shots(page, "11-end")

    # The data: every answer exactly once, with who, the link's params and the value entered.
    sessions = wait_records(
        server, "demo_survey", "sessions", lambda rows: any(r["event"] == "finished" for r in rows)
    )
    responses = records(server, "demo_survey", "responses")
    counts = Counter((r["scene_id"], r["instance"], r["question_id"]) for r in responses)
    assert counts, "no responses recorded"
    assert all(n == 1 for n in counts.values()), counts
    got: dict[tuple[str, int], dict[str, Any]] = {}
    for row in responses:
        assert row["participant_id"] == participant_id
        assert row["params"] == PARAMS
        got.setdefault((row["scene_id"], row["instance"]), {})[row["question_id"]] = row["value"]
    assert got == expected
    assert {r["instance"] for r in responses if r["scene_id"] == "mood"} == {0, 1}
    assert {r["position"] for r in responses if r["scene_id"] == "mood"} == {5, 6}

    mine = [r for r in sessions if r["participant_id"] == participant_id]
    assert len(mine) == len(sessions), "only one participant took part"
    events = [r["event"] for r in mine]
    resumed = [r for r in mine if r["event"] == "resumed"]
    assert len(resumed) == 1 and resumed[0]["scene_id"] == first, events
    assert events.index("resumed") > events.index("joined")
    finished = [r for r in mine if r["event"] == "finished"]
    assert len(finished) == 1, events
    assert finished[0]["detail"]["values"]["completion_code"] == code
    assert finished[0]["scene_id"] == "done"
    assert page.errors == []


# ---- 2. redirect back to the platform -----------------------------------------------------------

REDIRECT_STUDY = """
from igym_core import EndScene, Experiment, StartScene

experiment = Experiment(
    experiment_id="redirect_study",
    title="Redirect",
    url_params=("PROLIFIC_PID",),
    scenes=(
        StartScene(scene_id="consent", body="A study that sends you back to Prolific."),
        EndScene(
            scene_id="end",
            completion_code="auto",
            redirect_url="https://app.prolific.com/submissions/complete?cc={completion_code}&pid={PROLIFIC_PID}",
            redirect_delay_ms=500,
        ),
    ),
)
"""


def test_redirect_waits_for_stored_data_and_encodes_ids(
    live_server: Any, new_page: Any, shots: Any, tmp_path: Path
) -> None:
    path = tmp_path / "redirect_study.py"
    path.write_text(REDIRECT_STUDY)
    server = live_server(f"{path}:experiment")
    pid = "a b&c/d"
    page = new_page()

    seen: list[dict[str, Any]] = []

    def prolific(route: Any) -> None:
        # What is on disk at the moment the browser leaves for the platform.
        seen.append(
            {
                "url": route.request.url,
                "at": time.monotonic(),
                "sessions": records(server, "redirect_study", "sessions"),
                "responses": records(server, "redirect_study", "responses"),
            }
        )
        route.fulfill(status=200, content_type="text/html", body="returned")

    # Registered after the fixture's catch-all abort, so it wins for this host.
    page.context.route("https://app.prolific.com/**", prolific)

    page.goto(f"{server.url}/?PROLIFIC_PID={quote(pid, safe='')}&STUDY_ID=s9")
    wait_scene(page, "consent")
    pass_consent(page, title="Consent")
    shots(page, "01-consent")
    continue_button(page).click()
    clicked_at = time.monotonic()
    page.wait_for_url("https://app.prolific.com/**", timeout=10_000)
    expect(page.locator("body")).to_have_text("returned")

    assert len(seen) == 1, seen
    url = seen[0]["url"]
    assert page.url == url
    finished = [r for r in seen[0]["sessions"] if r["event"] == "finished"]
    assert len(finished) == 1, "the finished event was not stored before the redirect"
    code = finished[0]["detail"]["values"]["completion_code"]
    assert CODE_RE.match(code), code
    consent = [r for r in seen[0]["responses"] if r["scene_id"] == "consent"]
    assert [(r["question_id"], r["value"]) for r in consent] == [("agree", True)], (
        "the consent response was not stored before the redirect"
    )
    assert consent[0]["params"] == {"PROLIFIC_PID": pid, "STUDY_ID": "s9"}
    assert seen[0]["at"] - clicked_at >= 0.45, "redirected before redirect_delay_ms"

    # The code and the PID, each URL-encoded (space, & and / included).
    assert url == f"https://app.prolific.com/submissions/complete?cc={code}&pid=a%20b%26c%2Fd"
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "app.prolific.com", "/submissions/complete")
    assert parse_qs(parts.query) == {"cc": [code], "pid": [pid]}
    assert page.errors == []


# ---- 3. a second tab ----------------------------------------------------------------------------


SUPERSEDED_HEADING = "Study open in another window"


def test_second_tab_takes_over_and_can_be_taken_back(live_server: Any, new_page: Any, shots: Any) -> None:
    server = live_server(EXAMPLE)
    first = new_page()
    link = f"{server.url}/?PROLIFIC_PID=tabs&STUDY_ID=s1&SESSION_ID=x"
    first.goto(link)
    wait_scene(first, "consent")
    participant_id = state(first)["participant_id"]

    # The same browser (same localStorage, hence the same token) opens the link again.
    second = new_page(first.context)
    second.goto(link)
    wait_scene(second, "consent")
    assert state(second)["participant_id"] == participant_id

    expect(first.get_by_role("heading", level=1, name=SUPERSEDED_HEADING)).to_be_visible()
    expect(first.get_by_text("This study is now open in another tab or window")).to_be_visible()
    take_back = first.get_by_role("button", name="Continue in this window")
    expect(take_back).to_be_visible()
    expect(first.get_by_role("checkbox")).to_have_count(0)  # the scene is gone from the old tab
    assert state(first)["status"] == "superseded" and not state(first)["connected"]
    shots(first, "01-first-tab-superseded")

    # The second tab works.
    pass_consent(second)
    submit_and_wait(second, "instructions")
    shots(second, "02-second-tab-instructions")

    # The first takes it back and continues where the second left off.
    take_back.click()
    wait_scene(first, "instructions")
    assert state(first)["participant_id"] == participant_id
    expect(first.get_by_role("heading", level=1, name="How this study works")).to_be_visible()
    expect(second.get_by_role("heading", level=1, name=SUPERSEDED_HEADING)).to_be_visible()
    expect(second.get_by_role("button", name="Continue in this window")).to_be_visible()
    assert state(second)["status"] == "superseded"
    shots(first, "03-first-tab-took-back")
    shots(second, "04-second-tab-superseded")

    # The first tab can go on.
    expect(continue_button(first)).to_be_enabled(timeout=5000)
    submit_and_wait(first, "about_you")

    sessions = wait_records(
        server, "demo_survey", "sessions", lambda rows: sum(r["event"] == "superseded" for r in rows) >= 2
    )
    assert {r["participant_id"] for r in sessions} == {participant_id}
    superseded = [r for r in sessions if r["event"] == "superseded"]
    assert len(superseded) == 2
    assert [r["scene_id"] for r in superseded] == ["consent", "instructions"]
    assert sum(r["event"] == "joined" for r in sessions) == 1
    assert first.errors == [] and second.errors == []


# ---- 4. keyboard only ---------------------------------------------------------------------------

FOCUS_INFO = """() => {
  const el = document.activeElement;
  const style = (node) => node ? getComputedStyle(node) : null;
  const own = style(el);
  // Radio buttons, checkboxes and cards draw the ring on their row/card (a label around them).
  const label = el.closest('label');
  const ring = own.outlineStyle !== 'none' ? own : style(label);
  return {
    tag: el.tagName.toLowerCase(),
    type: el.getAttribute('type'),
    name: el.getAttribute('aria-label') || el.textContent.trim() || el.labels?.[0]?.textContent.trim() || '',
    focusVisible: el.matches(':focus-visible'),
    outlineStyle: ring ? ring.outlineStyle : 'none',
    outlineWidth: ring ? parseFloat(ring.outlineWidth) : 0,
  };
}"""


def focused(page: Page) -> dict[str, Any]:
    info = page.evaluate(FOCUS_INFO)
    assert info["focusVisible"], f"focus is not :focus-visible on {info}"
    assert info["outlineStyle"] != "none" and info["outlineWidth"] >= 2, f"no visible focus ring on {info}"
    return info


def tab_to(page: Page, expected: Locator, *, max_tabs: int = 1, key: str = "Tab") -> dict[str, Any]:
    for _ in range(max_tabs):
        page.keyboard.press(key)
    expect(expected).to_be_focused()
    return focused(page)


def test_keyboard_only(live_server: Any, new_page: Any, shots: Any) -> None:
    server = live_server(EXAMPLE)
    page = new_page()
    page.goto(f"{server.url}/?PROLIFIC_PID=keys&STUDY_ID=s1&SESSION_ID=x")
    wait_scene(page, "consent")

    # Consent: Tab to the box, Space ticks it, Tab to Continue, Enter.
    agree = page.get_by_role("checkbox", name="I have read the information above and agree to take part.")
    tab_to(page, agree)
    page.keyboard.press("Space")
    expect(agree).to_be_checked()
    shots(page, "01-consent-focus")
    tab_to(page, continue_button(page))
    shots(page, "02-consent-button-focus")
    page.keyboard.press("Enter")
    wait_scene(page, "instructions")

    # Instructions: the button is focusable only once enabled.
    expect(continue_button(page)).to_be_enabled(timeout=5000)
    tab_to(page, continue_button(page))
    page.keyboard.press("Enter")
    wait_scene(page, "about_you")

    # about_you: type, arrow through the radios, Space the checkboxes, Enter on Continue.
    nickname = page.get_by_role("textbox", name="What should we call you?")
    tab_to(page, nickname)
    page.keyboard.type("Kim")
    page.keyboard.press("Enter")  # must not submit the page from a one-line answer
    assert state(page)["scene_id"] == "about_you"
    expect(page.get_by_text("Please answer this question.")).to_have_count(0)
    age = group(page, "How old are you?")
    tab_to(page, age.get_by_role("radio", name="18–24"))
    shots(page, "03-radio-focus")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(age.get_by_role("radio", name="35–44")).to_be_checked()
    focused(page)
    devices = group(page, "Which devices do you play games on? Choose all that apply.")
    tab_to(page, devices.get_by_role("checkbox", name="Computer"))
    tab_to(page, devices.get_by_role("checkbox", name="Games console"))
    page.keyboard.press("Space")
    expect(devices.get_by_role("checkbox", name="Games console")).to_be_checked()
    shots(page, "04-checkbox-focus")
    tab_to(page, continue_button(page), max_tabs=3)
    page.keyboard.press("Enter")
    first = poll(
        lambda: (s := state(page))["scene_id"] in ("game_taste", "teamwork") and s["scene_id"],
        page=page,
        what="the next survey",
    )

    # The next survey: Likert by arrows, the slider by arrows, an option card or a text by keys.
    if first == "game_taste":
        enjoy = group(page, "I enjoy playing against other people.")
        tab_to(page, enjoy.get_by_role("radio", name="1 – Strongly disagree"))
        page.keyboard.press("Space")
        page.keyboard.press("ArrowRight")
        expect(enjoy.get_by_role("radio", name="2", exact=True)).to_be_checked()
        slider = page.get_by_role("slider", name="About how many hours a week do you play?")
        tab_to(page, slider)
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("End")
        expect(page.get_by_text("Your answer: 40 (40 or more)", exact=True)).to_be_visible()
        shots(page, "05-slider-focus")
        partner = group(page, "Who would you rather play with?")
        tab_to(page, partner.get_by_role("radio", name="A friend"))
        page.keyboard.press("ArrowDown")
        expect(partner.get_by_role("radio", name="A stranger")).to_be_checked()
        shots(page, "06-card-focus")
        expected = {"enjoy_competition": 2, "hours_per_week": 40, "partner": "stranger"}
    else:
        trust = group(page, "I trust teammates I have never met.")
        tab_to(page, trust.get_by_role("radio", name="1 – Not at all"))
        page.keyboard.press("Space")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        expect(trust.get_by_role("radio", name="3", exact=True)).to_be_checked()
        shots(page, "05-likert-focus")
        text = page.get_by_role("textbox", name="What makes a good teammate?")
        tab_to(page, text)
        page.keyboard.type("Patient and kind.")
        shots(page, "06-textarea-focus")
        expected = {"trust": 3, "good_teammate": "Patient and kind."}
    tab_to(page, continue_button(page))
    page.keyboard.press("Enter")
    second = "teamwork" if first == "game_taste" else "game_taste"
    wait_scene(page, second)

    responses = wait_records(
        server, "demo_survey", "responses", lambda rows: any(r["scene_id"] == first for r in rows)
    )
    got = {(r["scene_id"], r["question_id"]): r["value"] for r in responses}
    assert got == {
        ("consent", "agree"): True,
        ("about_you", "nickname"): "Kim",
        ("about_you", "age_group"): "35–44",
        ("about_you", "devices"): ["console"],
        **{(first, k): v for k, v in expected.items()},
    }
    assert page.errors == []


URL_PARAMS_STUDY = """
from igym_core import EndScene, Experiment, StartScene, UrlParam

experiment = Experiment(
    experiment_id="url_params_study",
    title="Links",
    url_params=(UrlParam(name="PROLIFIC_PID", on_missing="refuse"), "STUDY_ID"),
    scenes=(
        StartScene(scene_id="consent", body="A study whose link must carry PROLIFIC_PID."),
        EndScene(
            scene_id="end",
            completion_code="C0DE",
            redirect_url="/done?pid={PROLIFIC_PID}&s={STUDY_ID}",
            redirect_delay_ms=100,
        ),
    ),
)
"""


def test_a_link_without_a_required_parameter_shows_why_and_a_missing_optional_one_is_marked(
    live_server: Any, new_page: Any, shots: Any, tmp_path: Path
) -> None:
    path = tmp_path / "url_params_study.py"
    path.write_text(URL_PARAMS_STUDY)
    server = live_server(str(path))  # no ":experiment": the file's one experiment

    refused = new_page()
    refused.goto(f"{server.url}/?STUDY_ID=s1")
    panel = refused.locator("[data-igym-refused]")
    expect(panel).to_be_visible(timeout=10_000)
    expect(panel.locator("h1")).to_have_text("This study link cannot be used")
    expect(panel).to_contain_text(
        "This link is missing PROLIFIC_PID. Please open the study from the page where you found it "
        "(for example, Prolific)."
    )
    expect(refused.locator(".igym-start, form")).to_have_count(0)
    shots(refused, "refused")

    let_in = new_page()
    let_in.goto(f"{server.url}/?PROLIFIC_PID=p%201")  # STUDY_ID missing: marked, not refused
    wait_scene(let_in, "consent")
    let_in.get_by_role("checkbox").check()
    let_in.get_by_role("button", name="Continue").click()
    # The end page sends them on with the marked value in place of the missing parameter.
    let_in.wait_for_url(f"{server.url}/done?pid=p%201&s=MISSING", timeout=10_000)

    sessions = wait_records(
        server, "url_params_study", "sessions", lambda rows: any(e["event"] == "finished" for e in rows)
    )
    assert [e["detail"] for e in sessions if e["event"] == "entry_refused"] == [
        {"missing_url_params": ["PROLIFIC_PID"]}
    ]
    assert [e["detail"]["names"] for e in sessions if e["event"] == "url_params_missing"] == [["STUDY_ID"]]
    assert refused.errors == [] and let_in.errors == []
