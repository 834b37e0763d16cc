"""A participant's whole study over the socket: answers, validation, reloads, tabs, records, the end."""

from __future__ import annotations

import math
import time
import unicodedata
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from igym_core import (
    ChoiceQuestion,
    EndScene,
    Experiment,
    OptionBoxes,
    ScaleQuestion,
    StartScene,
    SurveyScene,
    TextQuestion,
    hookimpl,
)
from igym_core.config.urls import UrlParam
from igym_core.errors import ConfigError
from igym_core.examples.survey_study import experiment as example_study
from igym_core.testing import ScriptedParticipant, make_test_app, read_records

EXAMPLE_ID = example_study.experiment_id
CODE_ALPHABET = set("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")

ANSWERS: dict[str, list[dict[str, Any]]] = {
    # one answer set per instance of the scene
    "consent": [{"agree": True}],
    "instructions": [{}],
    "about_you": [{"nickname": "  Kim  ", "age_group": "55 or older", "devices": ["console", "pc"]}],
    "game_taste": [{"enjoy_competition": 1, "hours_per_week": 40, "partner": "stranger"}],
    # the optional text question left empty
    "teamwork": [{"trust": 5, "good_teammate": ""}],
    "mood": [{"energy": 2}, {"energy": 5}],
}
QUESTIONS = {
    "consent": ["agree"],
    "instructions": [],
    "about_you": ["nickname", "age_group", "devices"],
    "game_taste": ["enjoy_competition", "hours_per_week", "partner"],
    "teamwork": ["trust", "good_teammate"],
    "mood": ["energy"],
}


def _answer(p: ScriptedParticipant) -> dict[str, Any]:
    return ANSWERS[p.scene["scene"]["scene_id"]][p.scene["instance"]]


def _data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _mine(rows: list[dict[str, Any]], participant_id: str | None) -> list[dict[str, Any]]:
    return [r for r in rows if r["participant_id"] == participant_id]


@pytest.fixture
def quiet_app(tmp_path: Path) -> Any:
    """The example study, with the periodic flush effectively off: only explicit flushes write."""
    return make_test_app(example_study, _data(tmp_path), flush_interval_ms=600_000)


# --- the whole study -------------------------------------------------------------------------------------


def _close_and_wait(p: ScriptedParticipant, study: Any) -> None:
    """Close like a page that goes away, and wait until the server has noticed.

    Without the wait, a reconnection may reach the server first, which then (rightly) treats it as a
    second tab taking over rather than as a reload after a disconnection.
    """
    p.close()
    deadline = time.monotonic() + 5
    while study.by_id[p.participant_id].connection_id is not None:
        assert time.monotonic() < deadline, "the server did not notice the disconnection"
        time.sleep(0.005)


def test_walk_the_whole_example_study(quiet_app, tmp_path):
    study = quiet_app.state.study
    params = {"PROLIFIC_PID": "pid-123", "STUDY_ID": "study-9", "SESSION_ID": "sess-1"}
    with TestClient(quiet_app) as client, ExitStack() as sockets:
        p = sockets.enter_context(ScriptedParticipant(client, params=params))
        assert p.welcome["resumed"] is False
        assert len(p.token) >= 40
        seen = []
        total = p.scene["total"]
        while p.kind != "end":
            scene = p.scene
            assert scene["total"] == total
            assert scene["position"] == len(seen)
            seen.append((scene["scene"]["scene_id"], scene["instance"]))
            reply = p.submit(_answer(p))
            assert reply["type"] == "scene", reply
            if len(seen) == 3:  # a reload in the middle of the study
                _close_and_wait(p, study)
                p = sockets.enter_context(ScriptedParticipant(client, params=params, token=p.token))
                assert p.welcome["resumed"] is True
                assert p.scene == reply
        end = p.scene
        # Everything is on disk the moment the end scene arrives.
        at_end = {
            kind: _mine(read_records(_data(tmp_path), EXAMPLE_ID, kind), p.participant_id)
            for kind in ("responses", "sessions")
        }
        _close_and_wait(p, study)
    after = {
        kind: _mine(read_records(_data(tmp_path), EXAMPLE_ID, kind), p.participant_id)
        for kind in ("responses", "sessions")
    }

    # the sequence: fixed scenes, the shuffle of game_taste/teamwork, mood twice
    ids = [scene_id for scene_id, _ in seen]
    assert ids[:3] == ["consent", "instructions", "about_you"]
    assert sorted(ids[3:5]) == ["game_taste", "teamwork"]
    assert seen[5:] == [("mood", 0), ("mood", 1)]
    assert total == len(seen) + 1
    assert end["position"] == len(seen) and end["scene"]["scene_id"] == "done"

    # the completion code
    code = end["context"]["completion_code"]
    assert len(code) == 8 and set(code) <= CODE_ALPHABET
    assert "redirect_url" not in end["context"]

    # responses: one row per question per scene instance, with who, where and when
    responses = at_end["responses"]
    expected = [
        (scene_id, instance, question) for scene_id, instance in seen for question in QUESTIONS[scene_id]
    ]
    assert [(r["scene_id"], r["instance"], r["question_id"]) for r in responses] == expected
    assert (
        Counter((r["scene_id"], r["instance"], r["question_id"]) for r in responses).most_common(1)[0][1] == 1
    )
    for row in responses:
        assert row["participant_id"] == p.participant_id
        assert row["params"] == params
        assert row["experiment_id"] == EXAMPLE_ID
        assert row["run_id"] == quiet_app.state.run_id
        assert row["condition"] is None
        submitted = ANSWERS[row["scene_id"]][row["instance"]].get(row["question_id"])
        # An optional question left empty ("" or []) is recorded as null: unanswered.
        assert row["value"] == (None if submitted in ("", []) else submitted)
        assert row["entered_at"] <= row["submitted_at"]
        assert row["rt_ms"] >= 0
        for stamp in (row["entered_at"], row["submitted_at"], row["timestamp"]):
            assert stamp.endswith("Z") and stamp[:4].isdigit()
    mood = [r for r in responses if r["scene_id"] == "mood"]
    assert [(r["instance"], r["value"]) for r in mood] == [(0, 2), (1, 5)]

    # sessions: the events of the participant's study, in order
    events = at_end["sessions"]
    names = [e["event"] for e in events]
    assert names[:3] == ["joined", "sequence_drawn", "scene_entered"]
    assert names.count("scene_entered") == len(seen) + 1
    assert names.count("scene_left") == len(seen)
    assert names[-2:] == ["scene_entered", "finished"]
    # the reload: after entering the fourth scene, before leaving it
    reload = [
        (e["event"], e["position"], e["scene_id"])
        for e in events
        if e["event"] in ("disconnected", "resumed")
    ]
    assert reload == [("disconnected", 3, seen[3][0]), ("resumed", 3, seen[3][0])]
    entered_at = [i for i, name in enumerate(names) if name == "scene_entered"]
    assert names.index("disconnected") == entered_at[3] + 1
    assert names.index("resumed") == names.index("disconnected") + 1
    assert "superseded" not in names
    joined = events[0]
    assert joined["detail"]["recruitment_ids"] == {"PROLIFIC_PID": "pid-123"}
    drawn = events[1]["detail"]
    assert [(s["scene_id"], s["instance"]) for s in drawn["sequence"]] == [*seen, ("done", 0)]
    assert drawn["draws"] == {"$.scenes[3]": ids[3:5]}
    assert drawn["seed"] == example_study.seed
    finished = events[-1]
    assert finished["detail"]["values"]["completion_code"] == code
    assert finished["scene_id"] == "done"
    entered = [(e["scene_id"], e["instance"], e["position"]) for e in events if e["event"] == "scene_entered"]
    assert entered == [(s, i, n) for n, (s, i) in enumerate([*seen, ("done", 0)])]

    # after closing, only the disconnection was added
    assert after["responses"] == responses
    assert after["sessions"][: len(events)] == events
    assert [e["event"] for e in after["sessions"][len(events) :]] == ["disconnected"]


def test_snapshot_records_the_experiment_and_plugins(tmp_path):
    app = make_test_app(example_study, _data(tmp_path))
    with TestClient(app):
        pass
    snapshots = list((_data(tmp_path) / EXAMPLE_ID / "snapshots").glob("*.json"))
    assert len(snapshots) == 1
    import json

    snapshot = json.loads(snapshots[0].read_text(encoding="utf-8"))
    assert snapshot["run_id"] == app.state.run_id
    assert snapshot["experiment"] == app.state.converter.unstructure(example_study)
    assert {p["name"] for p in snapshot["plugins"]} >= {"igym.scenes_static", "igym.sink_jsonl"}


# --- validation on the server ------------------------------------------------------------------------------

VALIDATION_SURVEY = SurveyScene(
    scene_id="checks",
    questions=(
        TextQuestion(id="name", prompt="Name", min_length=3, max_length=10),
        TextQuestion(id="comment", prompt="Comment", min_length=5, required=False),
        ChoiceQuestion(id="colour", prompt="Colour", choices=("red", "green", "blue")),
        ChoiceQuestion(
            id="pets", prompt="Pets", choices=("cat", "dog", "fish", "bird"), multiple=True, max_selected=2
        ),
        ChoiceQuestion(id="maybe", prompt="Maybe", choices=("yes", "no"), required=False),
        ScaleQuestion(id="likert", prompt="Agree?", min=1, max=5),
        ScaleQuestion(
            id="slider", prompt="How many?", min=0, max=10, step=0.5, style="slider", required=False
        ),
        OptionBoxes(id="plan", prompt="Plan", options=("a", "b", "c")),
        OptionBoxes(id="extras", prompt="Extras", options=("x", "y", "z"), multiple=True, min_selected=2),
    ),
)
VALID = {"name": "Ada", "colour": "red", "pets": ["cat"], "likert": 3, "plan": "b", "extras": ["x", "z"]}
VALIDATION_STUDY = Experiment(
    experiment_id="validation_study",
    scenes=(StartScene(scene_id="consent"), VALIDATION_SURVEY, EndScene(scene_id="done")),
)


@pytest.fixture
def at_the_survey(tmp_path: Path) -> Any:
    app = make_test_app(VALIDATION_STUDY, _data(tmp_path))
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        p.submit({"agree": True})
        assert p.scene["scene"]["scene_id"] == "checks"
        yield p


@pytest.mark.parametrize(
    ("change", "bad"),
    [
        ({"name": "Al"}, "name"),  # too short
        ({"name": "  Al  "}, "name"),  # too short once stripped
        ({"name": "A" * 11}, "name"),  # too long
        ({"name": 42}, "name"),  # not text
        ({"comment": "hey"}, "comment"),  # optional, but too short when given
        ({"colour": "purple"}, "colour"),  # unknown choice
        ({"colour": ["red"]}, "colour"),  # a list for a single choice
        ({"pets": ["cat", "dog", "fish"]}, "pets"),  # too many selections
        ({"pets": ["cat", "cat"]}, "pets"),  # a duplicate
        ({"pets": ["hamster"]}, "pets"),  # unknown choice
        ({"pets": "cat"}, "pets"),  # not a list
        ({"pets": []}, "pets"),  # required: at least one
        ({"maybe": "perhaps"}, "maybe"),
        ({"likert": 6}, "likert"),  # out of range
        ({"likert": 0}, "likert"),
        ({"likert": 2.5}, "likert"),  # off-step
        ({"likert": True}, "likert"),  # a bool is not a number
        ({"likert": "3"}, "likert"),
        ({"slider": 10.5}, "slider"),
        ({"slider": 0.25}, "slider"),  # off the 0.5 step
        ({"plan": "d"}, "plan"),
        ({"extras": ["x"]}, "extras"),  # fewer than min_selected
        ({"extras": ["x", "x"]}, "extras"),
        ({"name": None}, "name"),  # missing required
        ({"colour": None}, "colour"),
        ({"likert": None}, "likert"),
        ({"plan": None}, "plan"),
        ({"surname": "Lovelace"}, "surname"),  # unknown question id
    ],
)
def test_invalid_answers_are_rejected_per_question(at_the_survey, tmp_path, change, bad):
    p = at_the_survey
    answers = {**VALID, **change}
    reply = p.submit(answers)
    assert reply["type"] == "rejected", reply
    assert reply["position"] == p.position
    assert set(reply["errors"]) == {bad}, reply["errors"]
    assert isinstance(reply["errors"][bad], str) and reply["errors"][bad]
    assert reply["message"]
    # nothing advanced and nothing was recorded as an answer
    assert p.ping()["type"] == "pong"
    assert p.scene["scene"]["scene_id"] == "checks"
    # the participant can still fix it
    assert p.submit(VALID)["scene"]["kind"] == "end"


def test_missing_required_answers_are_all_reported(at_the_survey):
    reply = at_the_survey.submit({})
    assert reply["type"] == "rejected"
    assert set(reply["errors"]) == {"name", "colour", "pets", "likert", "plan", "extras"}


def test_optional_questions_may_be_left_empty(at_the_survey, tmp_path):
    p = at_the_survey
    answers = {**VALID, "comment": "   ", "maybe": None, "slider": None}
    assert p.submit(answers)["scene"]["kind"] == "end"
    rows = _mine(read_records(_data(tmp_path), "validation_study", "responses"), p.participant_id)
    values = {r["question_id"]: r["value"] for r in rows if r["scene_id"] == "checks"}
    assert values == {**{q.id: None for q in VALIDATION_SURVEY.questions}, **answers}
    rejected = [
        e
        for e in read_records(_data(tmp_path), "validation_study", "sessions")
        if e["event"] == "submission_rejected"
    ]
    assert rejected == []


def test_rejections_are_recorded_as_events(at_the_survey, tmp_path):
    p = at_the_survey
    p.submit({**VALID, "likert": 9})
    p.submit(VALID)
    events = read_records(_data(tmp_path), "validation_study", "sessions")
    rejected = [e for e in events if e["event"] == "submission_rejected"]
    assert len(rejected) == 1
    assert set(rejected[0]["detail"]["errors"]) == {"likert"}
    assert rejected[0]["scene_id"] == "checks"


def test_consent_requires_agreement(tmp_path):
    app = make_test_app(VALIDATION_STUDY, _data(tmp_path))
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        for answers in ({}, {"agree": False}, {"agree": "yes"}, {"agree": 1}):
            reply = p.submit(answers)
            assert reply["type"] == "rejected" and "agree" in reply["errors"], (answers, reply)
        reply = p.submit({"agree": True, "extra": 1})
        assert reply["type"] == "rejected" and set(reply["errors"]) == {"extra"}
        assert p.submit({"agree": True})["scene"]["scene_id"] == "checks"


# What JavaScript's String.prototype.trim removes: WhiteSpace (including every Zs character) and
# LineTerminator (ECMA-262 sections 12.2 and 12.3). The browser and the server must agree.
_JS_TRIM = "".join(
    {"\t", "\n", "\v", "\f", "\r", "\ufeff", "\u2028", "\u2029"}
    | {chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Zs"}
)


# An independent reading of the validation table in docs/protocol.md.
def _doc_accepts(question: Any, value: Any) -> bool:
    kind = question.kind
    if kind == "text":
        if value is None:
            value = ""
        if not isinstance(value, str):
            return False
        n = len(value.strip(_JS_TRIM))
        if n == 0:
            return not question.required
        return n >= question.min_length and (question.max_length is None or n <= question.max_length)
    if kind == "scale":
        if value is None:
            return not question.required
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return False
        steps = (value - question.min) / question.step
        within = question.min - 1e-9 <= value <= question.max + 1e-9  # float slack for slider steps
        return within and abs(steps - round(steps)) < 1e-6
    values = [c.value for c in (question.choices if kind == "choice" else question.options)]
    if not question.multiple:
        if value is None:
            return not question.required
        return isinstance(value, str) and value in values
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return False
    if len(set(value)) != len(value) or not set(value) <= set(values):
        return False
    if not value:
        return not question.required
    return (question.min_selected or 0) <= len(value) <= (question.max_selected or len(values))


def _candidates(question: Any) -> st.SearchStrategy[Any]:
    junk = (
        st.none()
        | st.booleans()
        | st.integers(-3, 12)
        | st.floats(allow_nan=True)
        | st.lists(st.integers(-3, 3), max_size=2)
    )
    if question.kind == "text":
        spaces = st.text(alphabet=_JS_TRIM + "\x1c\x1d\x1e\x1f\x85\u200b", max_size=3)
        padded = st.tuples(spaces, st.text(max_size=12), spaces).map("".join)
        return junk | st.text(max_size=14) | padded
    if question.kind == "scale":
        return junk | st.integers(-2, 12) | st.sampled_from([0.5, 2.5, 9.75, 10.0, float("inf")])
    values = [c.value for c in (question.choices if question.kind == "choice" else question.options)]
    choice = st.sampled_from([*values, "other"])
    return junk | choice | st.lists(choice, max_size=4)


@st.composite
def _submissions(draw: Any) -> dict[str, Any]:
    answers = {}
    for question in VALIDATION_SURVEY.questions:
        if draw(st.booleans()):
            answers[question.id] = draw(_candidates(question))
    return answers


def test_server_validation_matches_the_documented_rules(tmp_path):
    app = make_test_app(VALIDATION_STUDY, _data(tmp_path))
    outcomes = Counter()
    with TestClient(app) as client:
        p = ScriptedParticipant(client).connect()
        p.submit({"agree": True})

        @settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(answers=_submissions())
        def check(answers: dict[str, Any]) -> None:
            nonlocal p
            expected_bad = {
                q.id for q in VALIDATION_SURVEY.questions if not _doc_accepts(q, answers.get(q.id))
            }
            reply = p.submit(answers)
            if expected_bad:
                assert reply["type"] == "rejected", (answers, reply)
                assert set(reply["errors"]) == expected_bad, (answers, reply["errors"])
                outcomes["rejected"] += 1
            else:
                assert reply["type"] == "scene" and reply["scene"]["kind"] == "end", (answers, reply)
                outcomes["accepted"] += 1
                p.close()
                p = ScriptedParticipant(client).connect()
                p.submit({"agree": True})

        try:
            check()
        finally:
            p.close()
    assert outcomes["rejected"] > 50


# --- reload, second tab, another person ---------------------------------------------------------------------


def test_reload_resumes_the_same_participant_position_and_draft(tmp_path):
    app = make_test_app(example_study, _data(tmp_path))
    study = app.state.study
    params = {"PROLIFIC_PID": "reloader"}
    with TestClient(app) as client, ExitStack() as sockets:
        first = sockets.enter_context(ScriptedParticipant(client, params=params))
        first.submit({"agree": True})
        first.submit({})
        assert first.scene["scene"]["scene_id"] == "about_you"
        draft = {"nickname": "half-typed", "devices": ["pc"]}
        assert first.draft(draft)["type"] == "ack"
        assert first.scene["draft"] == {}
        _close_and_wait(first, study)
        for reload_params in (params, {}):  # a reload without the query string resumes too
            again = sockets.enter_context(
                ScriptedParticipant(client, params=reload_params, token=first.token)
            )
            assert again.welcome["resumed"] is True
            assert again.participant_id == first.participant_id
            assert again.token == first.token
            assert again.position == 2
            assert again.scene["scene"]["scene_id"] == "about_you"
            assert again.scene["draft"] == draft
            _close_and_wait(again, study)
        # after submitting, the draft of that scene is gone
        again = sockets.enter_context(ScriptedParticipant(client, params=params, token=first.token))
        again.submit(ANSWERS["about_you"][0])
        position = again.position
        _close_and_wait(again, study)
        again = sockets.enter_context(ScriptedParticipant(client, params=params, token=first.token))
        assert again.position == position
        assert again.scene["draft"] == {}
        _close_and_wait(again, study)
    events = _mine(read_records(_data(tmp_path), EXAMPLE_ID, "sessions"), first.participant_id)
    names = [e["event"] for e in events]
    assert names.count("joined") == 1
    assert names.count("resumed") == 4
    assert names.count("disconnected") == 5
    resumed = [e for e in events if e["event"] == "resumed"]
    assert [e["scene_id"] for e in resumed] == ["about_you", "about_you", "about_you", position_scene(events)]


def position_scene(events: list[dict[str, Any]]) -> str:
    """The scene the participant was on when they last resumed."""
    return [e for e in events if e["event"] == "scene_entered"][-1]["scene_id"]


def test_unknown_token_starts_a_new_participant(participant):
    p = participant(params={"PROLIFIC_PID": "a"}, token="not-a-token-this-server-issued")
    assert p.welcome["resumed"] is False
    assert p.token != "not-a-token-this-server-issued"
    assert p.position == 0


def test_every_way_of_reading_a_scene_updates_the_scripted_participants_scene(participant):
    """``ScriptedParticipant.scene`` follows the server whether a test reads the next scene with
    ``submit``, ``receive_type("scene")``, ``receive`` or ``receive_until``."""
    p = participant(params={"PROLIFIC_PID": "reader"})
    assert p.position == 0
    consent = p.scene["scene"]["scene_id"]

    def send_submit(answers: dict[str, Any]) -> None:
        time.sleep((p.scene["scene"].get("min_duration_ms") or 0) / 1000)
        p.send({"type": "submit", "seq": p.next_seq(), "position": p.position, "answers": answers})
        assert p.receive_type("ack")["type"] == "ack"

    send_submit({"agree": True})
    scene = p.receive_type("scene")
    assert p.scene is scene and p.position == 1 and p.scene["scene"]["scene_id"] != consent
    send_submit(_answer(p))
    scene = p.receive()
    assert scene["type"] == "scene" and p.scene is scene and p.position == 2
    send_submit(_answer(p))
    scene, _ = p.receive_until(lambda m: m["type"] == "scene")
    assert p.scene is scene and p.position == 3


def test_a_token_with_another_prolific_pid_starts_a_new_participant(participant, igym_app, tmp_path):
    first = participant(params={"PROLIFIC_PID": "alice"})
    first.submit({"agree": True})
    first.close()
    other = participant(params={"PROLIFIC_PID": "bob"}, token=first.token)
    assert other.welcome["resumed"] is False
    assert other.participant_id != first.participant_id
    assert other.token != first.token
    assert other.position == 0
    # alice's session is untouched and still hers
    again = participant(params={"PROLIFIC_PID": "alice"}, token=first.token)
    assert again.welcome["resumed"] is True
    assert again.participant_id == first.participant_id
    assert again.position == 1


def test_a_second_tab_supersedes_the_first(tmp_path):
    app = make_test_app(example_study, _data(tmp_path))
    study = app.state.study
    with TestClient(app) as client, ExitStack() as sockets:
        old = sockets.enter_context(ScriptedParticipant(client, params={"PROLIFIC_PID": "tabby"}))
        old.submit({"agree": True})
        old.submit({})
        before = set(study.connections)
        new = sockets.enter_context(
            ScriptedParticipant(client, params={"PROLIFIC_PID": "tabby"}, token=old.token)
        )
        (new_connection,) = set(study.connections) - before
        (old_connection,) = before
        assert new.welcome["resumed"] is True
        assert new.participant_id == old.participant_id
        assert new.scene["scene"]["scene_id"] == "about_you"

        notice = old.receive()
        assert notice["type"] == "superseded" and notice["message"]
        with pytest.raises(WebSocketDisconnect) as info:
            old.receive()
        assert info.value.code == 4001

        # A submit from the old tab is ignored...
        stale_answers = {"nickname": "OLD", "age_group": "18–24", "devices": ["pc"]}
        old.send({"type": "submit", "seq": 50, "position": 2, "answers": stale_answers})
        deadline = time.monotonic() + 5
        while old_connection in study.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert old_connection not in study.connections, "the old connection did not handle its frame"
        assert study.by_id[new.participant_id].position == 2
        assert study.by_id[new.participant_id].connection_id == new_connection
        # ...and the new one carries on.
        assert new.submit(ANSWERS["about_you"][0])["position"] == 3
        old.close()
        new.close()
    rows = _mine(read_records(_data(tmp_path), EXAMPLE_ID, "responses"), new.participant_id)
    nickname = [r["value"] for r in rows if r["question_id"] == "nickname"]
    assert nickname == ["  Kim  "]
    events = _mine(read_records(_data(tmp_path), EXAMPLE_ID, "sessions"), new.participant_id)
    names = [e["event"] for e in events]
    assert names.count("superseded") == 1 and names.count("resumed") == 1
    assert names.index("superseded") < names.index("resumed")
    superseded = events[names.index("superseded")]
    assert superseded["detail"] == {"old_connection": old_connection, "new_connection": new_connection}
    # the old tab's socket closing is not the participant leaving
    assert names.count("disconnected") == 1
    assert names[-1] == "disconnected"


def test_the_superseded_tab_can_take_the_session_back(participant):
    first = participant(params={"PROLIFIC_PID": "pp"})
    second = participant(params={"PROLIFIC_PID": "pp"}, token=first.token)
    assert first.receive()["type"] == "superseded"
    first.close()
    third = participant(params={"PROLIFIC_PID": "pp"}, token=first.token)
    assert second.receive()["type"] == "superseded"
    assert third.submit({"agree": True})["scene"]["kind"] == "static"
    assert third.participant_id == first.participant_id


# --- the end scene and the redirect ------------------------------------------------------------------------

REDIRECT = "https://app.prolific.com/submissions/complete?cc={completion_code}&pid={PROLIFIC_PID}"


def _with_redirect() -> Experiment:
    *scenes, end = example_study.scenes
    return attrs.evolve(
        example_study,
        experiment_id="redirect_study",
        url_params=("PROLIFIC_PID",),
        scenes=(*scenes, attrs.evolve(end, redirect_url=REDIRECT, redirect_delay_ms=1500)),
    )


def test_end_scene_gives_a_code_and_an_encoded_redirect(tmp_path):
    app = make_test_app(_with_redirect(), _data(tmp_path), flush_interval_ms=600_000)
    pid = "a&b c/d?e=f#g"
    with TestClient(app) as client, ExitStack() as sockets:
        p = sockets.enter_context(ScriptedParticipant(client, params={"PROLIFIC_PID": pid, "STUDY_ID": "s"}))
        while p.kind != "end":
            p.submit(_answer(p))
        context = p.scene["context"]
        sessions_at_end = _mine(read_records(_data(tmp_path), "redirect_study", "sessions"), p.participant_id)
        responses_at_end = _mine(
            read_records(_data(tmp_path), "redirect_study", "responses"), p.participant_id
        )
        assert p.scene["scene"]["redirect_delay_ms"] == 1500
        # the same code when the participant reloads the end page
        with ScriptedParticipant(client, params={"PROLIFIC_PID": pid}, token=p.token) as again:
            assert again.scene["context"] == context
        p.close()
    code = context["completion_code"]
    assert len(code) == 8 and set(code) <= CODE_ALPHABET
    url = context["redirect_url"]
    assert url.startswith("https://app.prolific.com/submissions/complete?")
    assert f"cc={code}" in url
    assert "pid=a%26b%20c%2Fd%3Fe%3Df%23g" in url
    query = parse_qs(urlsplit(url).query)
    assert query == {"cc": [code], "pid": [pid]}
    assert urlsplit(url).fragment == ""

    finished = [e for e in sessions_at_end if e["event"] == "finished"]
    assert len(finished) == 1 and finished[0]["detail"]["values"]["completion_code"] == code
    assert len(responses_at_end) == sum(len(QUESTIONS[s]) for s in QUESTIONS) + len(QUESTIONS["mood"])


def test_every_participant_gets_their_own_code(participant):
    codes = set()
    for n in range(5):
        p = participant(params={"PROLIFIC_PID": f"p{n}"})
        while p.kind != "end":
            p.submit(_answer(p))
        codes.add(p.scene["context"]["completion_code"])
    assert len(codes) == 5


def test_a_fixed_completion_code_and_participant_id_placeholder(tmp_path):
    experiment = Experiment(
        experiment_id="fixed_code",
        scenes=(
            StartScene(scene_id="consent"),
            EndScene(
                scene_id="done",
                completion_code="C1X2Y3",
                redirect_url="/thanks?code={completion_code}&who={participant_id}",
            ),
        ),
    )
    app = make_test_app(experiment, _data(tmp_path))
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        context = p.submit({"agree": True})["context"]
    assert context["completion_code"] == "C1X2Y3"
    assert context["redirect_url"] == f"/thanks?code=C1X2Y3&who={p.participant_id}"


# --- URL parameters a link must carry ---------------------------------------------------------------


def _url_study(*url_params: Any) -> Experiment:
    return Experiment(
        experiment_id="url_study",
        url_params=url_params,
        scenes=(
            StartScene(scene_id="consent"),
            EndScene(
                scene_id="done",
                completion_code="C1X2Y3",
                redirect_url="https://x.test/done?cc={completion_code}&pid={PROLIFIC_PID}&s={STUDY_ID}",
            ),
        ),
    )


def test_a_placeholder_that_could_go_out_empty_is_refused_with_a_suggestion(tmp_path):
    typo = attrs.evolve(
        _url_study("PROLIFIC_PID", "STUDY_ID"),
        scenes=(
            StartScene(scene_id="consent"),
            EndScene(
                scene_id="done", completion_code="auto", redirect_url="https://x.test/?cc={completion_cod}"
            ),
        ),
    )
    with pytest.raises(ConfigError) as info:
        make_test_app(typo, _data(tmp_path))
    (problem,) = info.value.problems
    assert problem.startswith("$.scenes[1].redirect_url: unknown placeholder {completion_cod}")
    assert "Did you mean {completion_code}?" in problem

    undeclared = _url_study("PROLIFIC_PID")  # the redirect also uses {STUDY_ID}
    with pytest.raises(ConfigError) as info:
        make_test_app(undeclared, _data(tmp_path))
    (problem,) = info.value.problems
    assert "unknown placeholder {STUDY_ID}" in problem
    assert "url_params: PROLIFIC_PID" in problem and "url_params=(..., 'STUDY_ID')" in problem

    no_code = attrs.evolve(
        undeclared,
        url_params=("PROLIFIC_PID",),
        scenes=(
            StartScene(scene_id="consent"),
            EndScene(scene_id="done", redirect_url="/x?cc={completion_code}"),
        ),
    )
    with pytest.raises(
        ConfigError, match=r"\{completion_code\} is used, but this scene has no completion code"
    ):
        make_test_app(no_code, _data(tmp_path))


def test_a_missing_url_param_is_filled_with_its_marked_value_and_recorded(tmp_path):
    experiment = _url_study("PROLIFIC_PID", UrlParam(name="STUDY_ID", missing_value="NO_STUDY"))
    app = make_test_app(experiment, _data(tmp_path))
    with TestClient(app) as client:
        with ScriptedParticipant(client, params={"STUDY_ID": "s1"}) as p:
            url = p.submit({"agree": True})["context"]["redirect_url"]
        with ScriptedParticipant(client, params={"PROLIFIC_PID": "abc", "STUDY_ID": " "}) as q:
            url_q = q.submit({"agree": True})["context"]["redirect_url"]
    assert url == "https://x.test/done?cc=C1X2Y3&pid=MISSING&s=s1"
    assert url_q == "https://x.test/done?cc=C1X2Y3&pid=abc&s=NO_STUDY"
    sessions = read_records(_data(tmp_path), "url_study", "sessions")
    missing = [(e["participant_id"], e["detail"]) for e in sessions if e["event"] == "url_params_missing"]
    assert missing == [
        (p.participant_id, {"names": ["PROLIFIC_PID"], "action": "marked"}),
        (q.participant_id, {"names": ["STUDY_ID"], "action": "marked"}),
    ]
    joined = {e["participant_id"]: e["params"] for e in sessions if e["event"] == "joined"}
    assert joined[p.participant_id] == {"STUDY_ID": "s1", "PROLIFIC_PID": "MISSING"}


def test_a_link_without_a_required_url_param_is_refused_with_a_clear_message(tmp_path):
    experiment = _url_study(UrlParam(name="PROLIFIC_PID", on_missing="refuse"), "STUDY_ID")
    app = make_test_app(experiment, _data(tmp_path))
    study = app.state.study
    with TestClient(app) as client:
        with client.websocket_connect("/ws") as ws:
            ws.send_bytes(
                msgpack.packb({"type": "hello", "protocol": 1, "token": None, "params": {"STUDY_ID": "s"}})
            )
            reply = msgpack.unpackb(ws.receive_bytes())
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_bytes()
        assert info.value.code == 1008
        assert {k: reply[k] for k in ("type", "code", "message")} == {
            "type": "error",
            "code": "entry_refused",
            "message": "This link is missing PROLIFIC_PID. Please open the study from the page where you "
            "found it (for example, Prolific).",
        }
        assert study.by_id == {}
        # With the parameter, the same study lets them in.
        with ScriptedParticipant(client, params={"PROLIFIC_PID": "abc", "STUDY_ID": "s"}) as p:
            assert p.kind == "start"
    sessions = read_records(_data(tmp_path), "url_study", "sessions")
    refused = [e for e in sessions if e["event"] == "entry_refused"]
    assert len(refused) == 1
    assert refused[0]["detail"] == {"missing_url_params": ["PROLIFIC_PID"]}
    assert refused[0]["params"] == {"STUDY_ID": "s"}
    assert [e["participant_id"] for e in sessions if e["event"] == "joined"] == [p.participant_id]


# --- notifications to plugins ---------------------------------------------------------------------------


class Listener:
    """A plugin that notes every notification it hears."""

    def __init__(self) -> None:
        self.heard: list[tuple[Any, ...]] = []

    @hookimpl
    def igym_on_participant_joined(self, participant: Any) -> None:
        self.heard.append(("joined", participant.participant_id, len(participant.slots)))

    @hookimpl
    def igym_on_scene_activated(self, participant: Any, scene: Any, instance: int) -> None:
        self.heard.append(("scene", participant.participant_id, scene.scene_id, instance))

    @hookimpl
    def igym_on_participant_left(self, participant: Any, reason: str) -> None:
        self.heard.append(("left", participant.participant_id, reason))

    @hookimpl
    def igym_on_participant_finished(self, participant: Any) -> None:
        self.heard.append(("finished", participant.participant_id, participant.values.get("completion_code")))


def test_plugins_hear_every_step_of_a_study(igym_pm, register_plugin, tmp_path):
    listener = Listener()
    register_plugin(listener, name="listener")
    app = make_test_app(example_study, _data(tmp_path), plugins=igym_pm)
    with TestClient(app) as client, ExitStack() as sockets:
        first = sockets.enter_context(ScriptedParticipant(client, params={"PROLIFIC_PID": "h"}))
        first.submit({"agree": True})
        second = sockets.enter_context(
            ScriptedParticipant(client, params={"PROLIFIC_PID": "h"}, token=first.token)
        )
        assert first.receive()["type"] == "superseded"
        _close_and_wait(second, app.state.study)
        third = sockets.enter_context(
            ScriptedParticipant(client, params={"PROLIFIC_PID": "h"}, token=first.token)
        )
        scenes = [(third.scene["scene"]["scene_id"], third.scene["instance"])]
        while third.kind != "end":
            third.submit(_answer(third))
            scenes.append((third.scene["scene"]["scene_id"], third.scene["instance"]))
        code = third.scene["context"]["completion_code"]
        third.close()
    pid = first.participant_id
    assert listener.heard == [
        ("joined", pid, 8),
        ("scene", pid, "consent", 0),
        ("scene", pid, "instructions", 0),
        ("left", pid, "superseded"),
        ("left", pid, "disconnected"),
        *[("scene", pid, scene_id, instance) for scene_id, instance in scenes[1:]],
        ("finished", pid, code),
    ]


def test_a_study_that_starts_at_its_end_confirms_the_data_first(igym_pm, register_plugin, tmp_path):
    listener = Listener()
    register_plugin(listener, name="listener")
    experiment = Experiment(
        experiment_id="closed_study", scenes=(EndScene(scene_id="closed", completion_code="auto"),)
    )
    app = make_test_app(experiment, _data(tmp_path), plugins=igym_pm, flush_interval_ms=600_000)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        assert p.kind == "end"
        code = p.scene["context"]["completion_code"]
        events = [e["event"] for e in read_records(_data(tmp_path), "closed_study", "sessions")]
        assert events == ["joined", "sequence_drawn", "scene_entered", "finished"]
        assert listener.heard[-1] == ("finished", p.participant_id, code)
