"""Recruitment platforms through the real app (Litestar's test client) and `igym check`: the way back
per outcome only once the data is stored (a real full disk), a person who finished kept out also
after a restart, the partner-left outcome, MTurk's turkSubmitTo rule, and the check's warnings."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import attrs
import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient
from structlog.testing import capture_logs

from igym_core import EndScene, Experiment, GymScene, MTurk, Prolific, ScreeningScene, StaticScene
from igym_core.builtin.recruiters import mturk_submit_base
from igym_core.builtin.scene_gym import WaitingRoom
from igym_core.config.validators import FieldError
from igym_core.envs import resolve_callable
from igym_core.errors import ConfigError, DuplicatePluginNameError
from igym_core.plugins.manager import create_plugin_manager
from igym_core.plugins.markers import hookimpl
from igym_core.recruitment import PLATFORM_OUTCOMES, UNDECLARED_PLATFORM_OUTCOME, Outcome, platform_outcome
from igym_core.scenes.interface import SceneJudgement
from igym_core.serving import validate_for_serving
from igym_core.settings import Settings
from igym_core.testing import ScriptedParticipant, make_test_app, read_records
from igym_core.testing.full_disk import mount_full_disk

HERE = Path(__file__).resolve().parent
Duel = resolve_callable(f"{HERE / 'game_envs.py'}:Duel", what="test env")
CODES = {o: f"CODE-{o.upper()}" for o in PLATFORM_OUTCOMES}
PARAMS = {"PROLIFIC_PID": "PID-A", "STUDY_ID": "ST", "SESSION_ID": "SE"}
ESSAY = "I like games. " * 500
GOOD_MEASURES = {
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0",
    "window_width": 1200,
    "window_height": 800,
    "screen_width": 1920,
    "screen_height": 1080,
    "max_touch_points": 0,
    "pointer_fine": True,
    "hover": True,
    "webgl": True,
    "key_pressed": None,
    "rtt_ms": [20, 21, 19, 22, 20],
}


def _duel(**room: Any) -> GymScene:
    return GymScene(
        scene_id="duel",
        env_factory=Duel,
        human_seats=("human", "bot"),
        default_action=0,
        fps=60,
        max_steps=30,
        countdown_s=0,
        waiting_room=WaitingRoom(timeout_s=0.5, on_timeout="message", message="Nobody came.", **room),
    )


def _study(experiment_id: str, *scenes: Any) -> Experiment:
    return Experiment(
        experiment_id=experiment_id,
        recruitment=Prolific(codes=CODES),
        scenes=(*scenes, EndScene(scene_id="end", redirect_delay_ms=0)),
    )


def _way_back(message: dict[str, Any]) -> dict[str, Any] | None:
    return message.get("way_back") or (message.get("context") or {}).get("way_back")


# Each way out: how the participant takes it, and the outcome the platform is told.
WAYS_OUT = {
    "completed": (_study("out_completed", StaticScene(scene_id="intro")), lambda p: p.submit({})),
    "screened_out": (
        _study("out_screened", ScreeningScene(scene_id="check", min_window_width=2000)),
        lambda p: p.submit(GOOD_MEASURES),
    ),
    "no_partner": (_study("out_no_partner", _duel()), lambda p: None),
}


@pytest.mark.parametrize("outcome", sorted(WAYS_OUT))
def test_no_way_back_to_the_platform_before_the_data_is_stored(tmp_path, outcome) -> None:
    experiment, leave = WAYS_OUT[outcome]
    with mount_full_disk(tmp_path / "disk", size_kib=1024) as disk:
        app = make_test_app(experiment, disk.path / "data", flush_interval_ms=100)
        with TestClient(app) as client, ScriptedParticipant(client, params=PARAMS) as p:
            disk.fill()
            app.state.study.recorder.write("sessions", {"event": "note", "detail": {"pad": ESSAY}})
            reply, seen = leave(p), []  # a submit's answer, or (a waiting room) what comes
            if reply is None:
                reply, seen = p.receive_until(lambda m: m["type"] == "saving" or _way_back(m) is not None)
            assert reply["type"] == "saving", reply
            assert not any(_way_back(m) for m in [*seen, p.scene])
            disk.free()
            final, _ = p.receive_until(lambda m: _way_back(m) is not None)
        way = _way_back(final)
        assert way["outcome"] == outcome and way["code"] == CODES[outcome]
        assert way["url"] == f"https://app.prolific.com/submissions/complete?cc={CODES[outcome]}"
        finished = [
            r
            for r in read_records(disk.path / "data", experiment.experiment_id, "sessions")
            if r["event"] == "finished"
        ]
        assert len(finished) == 1 and finished[0]["detail"]["way_back"] == way


def test_a_person_who_finished_is_kept_out_also_after_a_restart_and_their_own_browser_sees_the_end(
    tmp_path,
) -> None:
    experiment = _study("once", StaticScene(scene_id="intro"))
    data = tmp_path / "data"
    with TestClient(make_test_app(experiment, data)) as client:
        with ScriptedParticipant(client, params=PARAMS) as p:
            p.submit({})
            token = p.token
        refused = _hello(client, {**PARAMS, "SESSION_ID": "other"})
        assert refused["type"] == "error" and refused["code"] == "entry_refused"
        assert "already taken part" in refused["message"]
        with ScriptedParticipant(client, params={**PARAMS, "PROLIFIC_PID": "PID-B"}) as other:
            assert other.kind == "static"  # someone else is let in
    with TestClient(make_test_app(experiment, data)) as client:  # restarted: restored from the records
        assert _hello(client, PARAMS)["code"] == "entry_refused"
        with ScriptedParticipant(client, token=token, params=PARAMS) as own:
            assert own.kind == "end" and own.scene["context"]["completion_code"] == CODES["completed"]
    refused = [r for r in read_records(data, "once", "sessions") if r["event"] == "entry_refused"]
    assert len(refused) == 2 and all(r["detail"]["already_finished"] for r in refused)

    allowed = Experiment(
        experiment_id="twice",
        recruitment=Prolific(codes=CODES, once_per_person=False),
        scenes=(StaticScene(scene_id="intro"), EndScene(scene_id="end")),
    )
    with TestClient(make_test_app(allowed, tmp_path / "data2")) as client:
        for _ in range(2):
            with ScriptedParticipant(client, params=PARAMS) as p:
                assert p.kind == "static"
                p.submit({})


def _hello(client: Any, params: dict[str, str]) -> dict[str, Any]:
    """The server's first answer to a new page's hello (a refusal is an ``error``)."""
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(msgpack.packb({"type": "hello", "protocol": 1, "token": None, "params": params}))
        return msgpack.unpackb(ws.receive_bytes(timeout=5))


@given(st.text(max_size=60))
def test_turksubmitto_must_be_one_of_mturks_two_https_hosts(raw) -> None:
    base = mturk_submit_base(raw)
    assert base in (None, "https://www.mturk.com", "https://workersandbox.mturk.com")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.mturk.com", "https://www.mturk.com"),
        ("https://workersandbox.mturk.com/", "https://workersandbox.mturk.com"),
        ("http://www.mturk.com", None),
        ("https://www.mturk.com.evil.example", None),
        ("https://evil.example/?https://www.mturk.com", None),
        ("https://user@www.mturk.com", None),
        ("https://www.mturk.com/elsewhere", None),
        ("https://www.mturk.com:8443", None),
        ("javascript:alert(1)", None),
    ],
)
def test_turksubmitto_cases(raw, expected) -> None:
    assert mturk_submit_base(raw) == expected


def test_mturk_way_back_posts_assignment_and_outcome() -> None:
    params = {"assignmentId": "A1", "hitId": "H", "workerId": "W", "turkSubmitTo": "https://www.mturk.com"}
    way = MTurk(codes={"completed": "DONE"}).way_back("completed", params)
    assert way is not None and way.wire() == {
        "url": "https://www.mturk.com/mturk/externalSubmit",
        "method": "post",
        "outcome": "completed",
        "fields": {"assignmentId": "A1", "outcome": "completed", "completion_code": "DONE"},
        "code": "DONE",
    }
    assert MTurk().preview_message({"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE"}) is not None
    assert MTurk().way_back("completed", {**params, "turkSubmitTo": "https://evil.example"}) is None


def test_outcomes_are_declared_by_the_plugin_that_produces_them() -> None:
    declared = create_plugin_manager(quiet=True).registry.outcomes  # every plugin of the workspace
    providers = {name: provider for name, _outcome, provider in declared.items()}
    assert {o.platform for o in declared.values()} == set(PLATFORM_OUTCOMES)
    assert all(o.meaning and "\n" not in o.meaning for o in declared.values())
    assert providers["waiting_timeout"] == providers["completed"] == "igym.outcomes"
    assert providers["unity_load_failed"] == providers["unity_timeout"] == "unity"
    assert providers["episodes_cut_short"] == "pyodide_p2p"
    assert platform_outcome("waiting_timeout", declared) == "no_partner"
    assert platform_outcome("unity_load_failed", declared) == "screened_out"
    assert platform_outcome("some_plugin_outcome", declared) == UNDECLARED_PLATFORM_OUTCOME == "timed_out"
    # Blocking a plugin takes its outcomes away; core's stay.
    without_unity = create_plugin_manager(blocked=["unity"], quiet=True).registry.outcomes
    assert "unity_timeout" not in without_unity and "completed" in without_unity
    # Without core's outcomes nobody could be reported as completed: such a server does not start.
    blocked = create_plugin_manager(autoload=False, blocked=["igym.outcomes"], quiet=True)
    with pytest.raises(ConfigError, match="no installed plugin declares the outcome 'completed'"):
        validate_for_serving(_study("no_outcomes", StaticScene(scene_id="intro")), blocked, Settings())


def test_an_outcome_declared_twice_or_wrongly_is_refused() -> None:
    class Twice:
        @hookimpl
        def igym_register_outcomes(self) -> list[Outcome]:
            return [Outcome(name="completed", platform="completed", meaning="Mine too.")]

    with pytest.raises(DuplicatePluginNameError, match=r"an outcome named 'completed': .*'igym.outcomes'"):
        create_plugin_manager(autoload=False, extra=[Twice()]).registry  # noqa: B018
    with pytest.raises(FieldError, match="not a platform outcome"):
        Outcome(name="lab_special", platform="paid", meaning="x")
    with pytest.raises(FieldError, match="one line"):
        Outcome(name="lab_special", platform="completed", meaning="two\nlines")


@attrs.frozen(kw_only=True)
class GateScene(StaticScene):
    """A test plugin's scene that ends the study with an outcome its plugin forgot to declare."""

    kind: ClassVar[str] = "test_gate"

    def judge_response(self, answers: Any, ctx: Any) -> SceneJudgement:
        return SceneJudgement(event="gated", exit_outcome="lab_gated")


class GatePlugin:
    @hookimpl
    def igym_register_scene_types(self) -> list[type]:
        return [GateScene]


def test_an_undeclared_outcome_is_logged_as_an_error_and_goes_back_as_timed_out(tmp_path) -> None:
    experiment = _study("undeclared", GateScene(scene_id="gate"))
    app = make_test_app(experiment, tmp_path / "data", extra_plugins=[GatePlugin()])
    with capture_logs() as logs, TestClient(app) as client, ScriptedParticipant(client, params=PARAMS) as p:
        final = p.submit({})
        if _way_back(final) is None:
            final, _ = p.receive_until(lambda m: _way_back(m) is not None)
    way = _way_back(final)
    assert way["outcome"] == "timed_out" and way["code"] == CODES["timed_out"]
    errors = [e for e in logs if e["event"] == "outcome_undeclared"]
    assert errors and all(e["log_level"] == "error" and e["outcome"] == "lab_gated" for e in errors)
    assert "igym_register_outcomes" in errors[0]["fix"] and errors[0]["participant_id"]
    finished = [
        r for r in read_records(tmp_path / "data", "undeclared", "sessions") if r["event"] == "finished"
    ]
    assert finished[0]["detail"]["outcome"] == "lab_gated"


def _check(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    study = tmp_path / "study.py"
    study.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "check", f"{study}:experiment"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"IGYM_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"},
    )


def test_igym_check_warns_about_random_codes_sent_to_prolific_and_refuses_a_missing_completed_code(
    tmp_path,
) -> None:
    warned = _check(
        tmp_path,
        """
        from igym_core import EndScene, Experiment, Prolific, StaticScene
        experiment = Experiment(
            experiment_id="warned",
            recruitment=Prolific(codes={"completed": "C1", "timed_out": "auto"}),
            scenes=(
                StaticScene(scene_id="intro"),
                EndScene(
                    scene_id="end",
                    completion_code="auto",
                    redirect_url="https://app.prolific.com/submissions/complete?cc={completion_code}",
                ),
            ),
        )
        """,
    )
    assert warned.returncode == 0, warned.stderr
    warnings = [line for line in warned.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert "$.recruitment.codes.timed_out" in warnings[0] and "Prolific accepts only" in warnings[0]
    assert "$.scenes[1].completion_code" in warnings[1]

    uncoded = _check(
        tmp_path,
        """
        from igym_core import EndScene, Experiment, Prolific, ScreeningScene
        experiment = Experiment(
            experiment_id="uncoded",
            recruitment=Prolific(codes={"completed": "C1"}),
            scenes=(ScreeningScene(scene_id="check", min_window_width=800), EndScene(scene_id="end")),
        )
        """,
    )
    assert uncoded.returncode == 0, uncoded.stderr
    assert [line for line in uncoded.stdout.splitlines() if line.startswith("warning:")] == [
        "warning: $.recruitment.codes: $.scenes[0] screens participants out, but there is no code for "
        "'screened_out': those participants get no code and stay on the page; add Prolific(codes={..., "
        "'screened_out': 'CODE'}) with a code of the study, or ignore this if they should return the study."
    ]

    refused = _check(
        tmp_path,
        """
        from igym_core import EndScene, Experiment, Prolific
        experiment = Experiment(
            experiment_id="refused",
            recruitment=Prolific(codes={"timed_out": "T1"}),
            scenes=(EndScene(scene_id="end"),),
        )
        """,
    )
    assert refused.returncode != 0
    assert (
        "$.recruitment.codes: Prolific needs the study's completion code" in refused.stdout + refused.stderr
    )


def test_page_events_are_recorded_with_timestamps_bounded_and_checked(tmp_path) -> None:
    experiment = _study("page_events", StaticScene(scene_id="intro"))
    app = make_test_app(experiment, tmp_path / "data", max_page_events_per_participant=3)
    with TestClient(app) as client, ScriptedParticipant(client, params=PARAMS) as p:
        for n, event in enumerate(["hidden", "visible", "blur", "focus", "fullscreen_enter"]):
            p.send({"type": "page_event", "event": event, "t": 1_700_000_000_000.0 + n})
        p.send({"type": "page_event", "event": "peeked", "t": 1.0})
        error = p.receive_type("error")
        assert error["code"] == "bad_message" and "'event' must be one of" in error["message"]
        assert p.ping()["type"] == "pong"  # the socket goes on
    rows = [
        r for r in read_records(tmp_path / "data", "page_events", "sessions") if r["event"] == "page_event"
    ]
    assert [(r["detail"]["page_event"], r["detail"]["page_time_ms"]) for r in rows] == [
        ("hidden", 1_700_000_000_000),
        ("visible", 1_700_000_000_001),
        ("blur", 1_700_000_000_002),
    ]
    assert all(r["timestamp"] and r["scene_id"] == "intro" for r in rows)


corridor_scene = resolve_callable(f"{HERE / 'game_envs.py'}:corridor_scene", what="test scene")


@pytest.mark.parametrize("late_ms", [0, 250])
def test_a_slow_connection_is_warned_then_its_game_ends_and_a_fast_one_plays_on(tmp_path, late_ms) -> None:
    from igym_core.builtin.slow_connection import SlowConnection

    rule = SlowConnection(max_rtt_ms=150, warn_after_s=0.4, end_after_s=0.4)
    game = corridor_scene(num_episodes=1, max_steps=90, fps=30, rtt_interval_s=0.1, slow_connection=rule)
    experiment = _study("slow", game, StaticScene(scene_id="after"))
    app = make_test_app(experiment, tmp_path / "data")
    with TestClient(app) as client, ScriptedParticipant(client, params=PARAMS) as p:
        p.answer_rtt_probes = False
        status, _ = p.receive_until(lambda m: m["type"] == "game_status")
        p.game_ready(status["game_id"])
        notices, deadline = [], time.monotonic() + 20
        while p.kind == "gym" and time.monotonic() < deadline:
            message = p.receive()
            if message["type"] == "rtt_probe":
                time.sleep(late_ms / 1000)  # a slow link: the echo comes back late
                p.send({"type": "rtt_echo", "game_id": message["game_id"], "n": message["n"]})
            elif message["type"] == "game_status" and message.get("notice"):
                notices.append(message["notice"])
            elif message["type"] == "scene":
                p.scene = message
        assert p.scene["scene"]["scene_id"] == "after"
    games = read_records(tmp_path / "data", "slow", "games")
    events = [r["event"] for r in games if r["event"].startswith("slow_connection")]
    sessions = read_records(tmp_path / "data", "slow", "sessions")
    left = [r for r in sessions if r["event"] == "scene_left" and r["scene_id"] == "walk"]
    if late_ms:
        assert notices and notices[0] == rule.warning
        assert events == ["slow_connection_warned", "slow_connection_ended"]
        ended = next(r for r in games if r["event"] == "slow_connection_ended")
        assert ended["rtt_ms"] > 150 and ended["slow_for_s"] >= 0.8
        assert left[0]["detail"]["reason"] == "slow_connection"
        steps = [r for r in read_records(tmp_path / "data", "slow", "episodes")]
        assert steps[0]["end_reason"] == "slow_connection" and steps[0]["steps"] < 90
    else:
        assert not notices and events == []
        assert left[0]["detail"]["reason"] == "completed"


@pytest.mark.parametrize(
    ("user_agent", "touch", "browser", "device"),
    [
        (GOOD_MEASURES["user_agent"], 0, ("chrome", 124), "desktop"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
            0,
            ("firefox", 126),
            "desktop",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/125.0.0.0 Safari/537.36 Edg/125.0.2535.51",
            0,
            ("edge", 125),
            "desktop",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.4 Safari/605.1.15",
            5,
            ("safari", 17),
            "tablet",  # an iPad asking for the desktop site
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Mobile Safari/537.36",
            5,
            ("chrome", 124),
            "phone",
        ),
        ("curl/8.5.0", 0, (None, None), "desktop"),
    ],
)
def test_browser_and_device_from_the_user_agent(user_agent, touch, browser, device) -> None:
    from igym_core.builtin.scene_screening import browser_of, device_of

    assert browser_of(user_agent) == browser
    assert device_of(user_agent, touch) == device


@given(st.text(max_size=300), st.integers(min_value=0, max_value=64))
def test_screening_judges_any_user_agent_without_failing(user_agent, touch) -> None:
    scene = ScreeningScene(scene_id="s", browsers={"chrome": 100}, max_rtt_ms=100)
    checks = scene.checks({**GOOD_MEASURES, "user_agent": user_agent, "max_touch_points": touch}, None)
    assert {c["check"] for c in checks} == {"browser", "device", "rtt"}
    assert all(c["passed"] or c["reason"] for c in checks)


def _matched(p: ScriptedParticipant) -> dict[str, Any]:
    status, _ = p.receive_until(
        lambda m: m["type"] == "game_status" and m.get("game_id") and m["phase"] != "matching"
    )
    p.game_ready(status["game_id"])
    return status


@pytest.mark.parametrize("way", ["left", "slow"])
def test_the_partner_who_stays_goes_back_with_the_partner_left_code(tmp_path, way) -> None:
    """A partner who closes the tab (or whose connection stays too slow) ends the game
    (``on_partner_left="end"``); the one who stays finishes with Prolific's partner-left code."""
    from igym_core.builtin.slow_connection import SlowConnection

    game = GymScene(
        scene_id="duel",
        env_factory=Duel,
        human_seats=("human", "bot"),
        default_action=0,
        fps=30,
        max_steps=100_000,
        countdown_s=0,
        waiting_room=WaitingRoom(timeout_s=5),
        reconnect_grace_s=0.3,
        on_partner_left="end",
        rtt_interval_s=0.1,
        slow_connection=SlowConnection(max_rtt_ms=150, warn_after_s=0.3, end_after_s=0.3),
    )
    app = make_test_app(_study("duo", game), tmp_path / "data")
    with TestClient(app) as client, ScriptedParticipant(client, params=PARAMS) as a:
        b = ScriptedParticipant(client, params={**PARAMS, "PROLIFIC_PID": "PID-B"}).connect()
        _matched(b)
        _matched(a)
        b_id = b.participant_id
        # a keeps reading its socket (and answering its round-trip probes) as a page does: a page
        # that stops answering is slow too (its probes' age counts).
        finals: list[dict[str, Any]] = []
        reader = threading.Thread(
            target=lambda: finals.append(
                a.receive_until(lambda m: m["type"] == "scene" and m["scene"]["kind"] == "end")[0]
            )
        )
        reader.start()
        if way == "left":
            b.close()
        else:  # b stays connected but answers every probe 250 ms late
            b.answer_rtt_probes = False
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                message = b.receive()
                if message["type"] == "rtt_probe":
                    time.sleep(0.25)
                    b.send({"type": "rtt_echo", "game_id": message["game_id"], "n": message["n"]})
                elif message["type"] == "game_status" and message["phase"] == "ended":
                    break
        reader.join(20)
        (final,) = finals
        assert final["context"]["completion_code"] == CODES["partner_left"]
        assert _way_back(final)["url"].endswith(f"cc={CODES['partner_left']}")
        if way == "slow":
            b.close()
    sessions = read_records(tmp_path / "data", "duo", "sessions")
    finished = {r["participant_id"]: r["detail"]["outcome"] for r in sessions if r["event"] == "finished"}
    assert finished[a.participant_id] == "partner_left"
    games = read_records(tmp_path / "data", "duo", "games")
    slow = [r["event"] for r in games if r["event"].startswith("slow_connection")]
    assert slow == ([] if way == "left" else ["slow_connection_warned", "slow_connection_ended"])
    assert [r["left"] for r in games if r["event"] == "partner_left"] == [b_id]


@pytest.mark.parametrize(
    ("measures", "failed"),
    [
        ({"key_pressed": False}, ["keyboard"]),
        ({"webgl": False}, ["webgl"]),
        ({"screen_width": 1024, "rtt_ms": [400, 410, 390, 20, 405]}, ["screen_width", "rtt"]),
        ({}, []),
    ],
)
def test_each_screening_check_is_judged_by_the_server_and_recorded(tmp_path, measures, failed) -> None:
    check = ScreeningScene(
        scene_id="check", require_keyboard=True, require_webgl=True, min_screen_width=1280, max_rtt_ms=300
    )
    experiment = _study("screen_all", check, StaticScene(scene_id="intro"))
    with (
        TestClient(make_test_app(experiment, tmp_path / "data")) as client,
        ScriptedParticipant(client, params=PARAMS) as p,
    ):
        bad = p.submit({**GOOD_MEASURES, "rtt_ms": [10, 20]})  # fewer pings than asked: not judged
        assert bad["type"] == "rejected" and "rtt_ms" in bad["errors"]
        p.submit({**GOOD_MEASURES, "key_pressed": True, **measures})
        assert p.scene["scene"]["kind"] == ("end" if failed else "static")
        reasons = p.scene["context"].get("exit_reasons", [])
        assert len(reasons) == len(failed)
    rows = [r for r in read_records(tmp_path / "data", "screen_all", "sessions") if r["event"] == "screening"]
    checks = rows[0]["detail"]["checks"]
    assert [c["check"] for c in checks if not c["passed"]] == failed
    assert {c["check"] for c in checks} == {"device", "screen_width", "webgl", "keyboard", "rtt"}
    if "rtt" in failed:
        assert next(c for c in checks if c["check"] == "rtt")["measured"]["median_ms"] == 400


def _three_scenes(experiment_id: str, recruitment: Any = None) -> Experiment:
    return Experiment(
        experiment_id=experiment_id,
        recruitment=recruitment or Prolific(codes=CODES),
        scenes=(StaticScene(scene_id="intro"), StaticScene(scene_id="middle"), EndScene(scene_id="end")),
    )


def test_the_same_prolific_pid_and_session_in_another_browser_resumes_the_participant(tmp_path) -> None:
    experiment = _three_scenes("same_person")
    data = tmp_path / "data"
    with (
        TestClient(make_test_app(experiment, data)) as client,
        ScriptedParticipant(client, params=PARAMS) as first,
    ):
        first.submit({})
        assert first.scene["scene"]["scene_id"] == "middle"
        # Another browser (no token) with the same PID and SESSION_ID: the same participant, where
        # they were, with a token of its own; the first page stops as a second tab's does.
        with ScriptedParticipant(client, params=PARAMS) as second:
            assert second.welcome["resumed"] is True
            assert second.participant_id == first.participant_id
            assert second.scene["scene"]["scene_id"] == "middle" and second.token != first.token
            assert first.receive()["type"] == "superseded"
            first.close()
            # Without SESSION_ID, or with another one, the link does not name this submission.
            for params in (
                {k: v for k, v in PARAMS.items() if k != "SESSION_ID"},
                {**PARAMS, "SESSION_ID": "S2"},
            ):
                with ScriptedParticipant(client, params=params) as other:
                    assert other.welcome["resumed"] is False and other.participant_id != first.participant_id
                    assert other.scene["scene"]["scene_id"] == "intro"
            second.submit({})
            assert second.kind == "end"
        # Finished: a browser without the token is refused as before (once_per_person).
        assert _hello(client, PARAMS)["code"] == "entry_refused"
    sessions = read_records(data, "same_person", "sessions")
    by_identity = [r for r in sessions if r["event"] == "resumed" and r["detail"].get("reason")]
    assert [(r["participant_id"], r["detail"]["reason"], r["scene_id"]) for r in by_identity] == [
        (first.participant_id, "same_recruitment_identity", "middle")
    ]
    assert len({r["participant_id"] for r in sessions if r["event"] == "joined"}) == 3


def test_resuming_by_identity_survives_a_restart_and_an_eviction(tmp_path) -> None:
    experiment = _three_scenes("same_person_restart")
    data = tmp_path / "data"
    with (
        TestClient(make_test_app(experiment, data)) as client,
        ScriptedParticipant(client, params=PARAMS) as first,
    ):
        first.submit({})
    # Restarted: restored from the records.
    with (
        TestClient(make_test_app(experiment, data)) as client,
        ScriptedParticipant(client, params=PARAMS) as second,
    ):
        assert second.participant_id == first.participant_id and second.scene["scene"]["scene_id"] == "middle"
        new_token = second.token
    with TestClient(make_test_app(experiment, data)) as client:
        # The token issued to the second browser is known after a restart (the resumed record).
        with ScriptedParticipant(client, token=new_token, params=PARAMS) as again:
            assert again.participant_id == first.participant_id and again.token == new_token
        study = client.app.state.study
        deadline = time.monotonic() + 5  # the closed socket's disconnect is handled first
        while not study.evict_idle(now=time.monotonic() + 864000.0) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert study.summary()["participants_evicted"] == 1
        with ScriptedParticipant(client, params=PARAMS) as third:  # rebuilt from the records
            assert (
                third.participant_id == first.participant_id and third.scene["scene"]["scene_id"] == "middle"
            )


@pytest.mark.parametrize(
    ("recruiter", "params", "key"),
    [
        (Prolific(codes=CODES), PARAMS, "prolific:PID-A:SE"),
        (Prolific(codes=CODES), {"PROLIFIC_PID": "PID-A", "SESSION_ID": " "}, None),
        (Prolific(codes=CODES), {"SESSION_ID": "SE"}, None),
        (MTurk(), {"workerId": "W1", "assignmentId": "A1"}, "mturk:W1:A1"),
        (MTurk(), {"workerId": "W1", "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE"}, None),
        (MTurk(), {"workerId": "W1"}, None),
    ],
)
def test_resume_key_only_for_a_complete_identity(recruiter, params, key) -> None:
    assert recruiter.resume_key(params) == key
