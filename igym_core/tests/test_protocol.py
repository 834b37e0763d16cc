"""The participant WebSocket protocol (docs/protocol.md): garbage in, clear errors out, nobody else hurt."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from igym_core.examples.survey_study import experiment as example_study
from igym_core.testing import ScriptedParticipant, make_test_app, read_records

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
KNOWN_TYPES = ("hello", "draft", "submit", "ping")


def _documented_error_codes() -> set[str]:
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    match = re.search(r"`code` is one of ([^|]*)\|", text)
    assert match, "docs/protocol.md no longer lists the error codes in the `error` row"
    codes = set(re.findall(r"`([a-z_]+)`", match.group(1)))
    assert {"bad_frame", "bad_message", "unknown_type", "hello_required"} <= codes
    return codes


ERROR_CODES = _documented_error_codes()

# Answers that are right for each scene of the example study.
GOOD_ANSWERS: dict[str, dict[str, Any]] = {
    "consent": {"agree": True},
    "instructions": {},
    "about_you": {"nickname": "Robin", "age_group": "25–34", "devices": ["pc", "phone"]},
    "game_taste": {"enjoy_competition": 6, "hours_per_week": 12, "partner": "ai"},
    "teamwork": {"trust": 4, "good_teammate": "Someone who listens to the others."},
    "mood": {"energy": 3},
}


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _walk_to_the_end(p: ScriptedParticipant) -> list[str]:
    seen = [p.scene["scene"]["scene_id"]]
    while p.kind != "end":
        reply = p.submit(GOOD_ANSWERS[p.scene["scene"]["scene_id"]])
        assert reply["type"] == "scene", reply
        seen.append(reply["scene"]["scene_id"])
    return seen


def _expect_close(ws_or_participant: Any, code: int) -> None:
    ws = getattr(ws_or_participant, "_ws", ws_or_participant)
    with pytest.raises(WebSocketDisconnect) as info:
        ws.receive_bytes(timeout=5)
    assert info.value.code == code


def _receive(ws: Any) -> dict[str, Any]:
    return msgpack.unpackb(ws.receive_bytes(timeout=5), raw=False)


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return make_test_app(example_study, tmp_path / "data")


@pytest.fixture
def client(app: Any) -> Any:
    with TestClient(app) as client:
        yield client


# --- garbage after hello ------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=12)
)
_json_like = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.integers(-5, 5), children, max_size=4)
    ),
    max_leaves=20,
)


def _is_known_message(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in KNOWN_TYPES


_huge = st.integers(2**53 + 1, 2**64 - 1) | st.integers(-(2**63), -(2**53) - 1)
_ints = st.integers(-(2**63), 2**64 - 1)  # what msgpack can carry
_not_an_int = st.none() | st.text(max_size=5) | st.floats() | st.booleans() | st.lists(_ints, max_size=2)
_not_a_map = st.none() | st.text(max_size=5) | _ints | st.lists(st.text(max_size=3), max_size=3)
_not_a_number = st.none() | st.text(max_size=5) | st.booleans() | st.lists(st.floats(), max_size=2)


@st.composite
def _wrong_field_types(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["draft", "submit", "ping"]))
    if kind == "ping":
        message = {"type": "ping", "seq": 1, "t": 1.5}
        field = draw(st.sampled_from(["seq", "t"]))
        message[field] = draw(_not_an_int if field == "seq" else _not_a_number)
        if draw(st.booleans()):
            message.pop(field)
        return message
    message = {"type": kind, "seq": 1, "position": 0, "answers": {}}
    field = draw(st.sampled_from(["seq", "position", "answers", "answer_keys"]))
    if field == "answer_keys":
        message["answers"] = {draw(_ints): "x"}
    elif field == "answers":
        message["answers"] = draw(_not_a_map)
    else:
        message[field] = draw(_not_an_int | _huge)
    if field != "answer_keys" and draw(st.booleans()):
        message.pop(field)
    return message


def _deep(levels: int) -> bytes:
    return b"\x81\xa1a" * levels + b"\xc0"


# (frame, codes the reply may carry)
_garbage = st.one_of(
    st.binary(max_size=200).map(lambda b: (b, {"bad_frame", "bad_message", "unknown_type"})),
    st.text(max_size=100).map(lambda t: (t, {"bad_frame"})),
    _json_like.filter(lambda v: not _is_known_message(v)).map(
        lambda v: (
            _pack(v),
            {"unknown_type"} if isinstance(v, dict) and isinstance(v.get("type"), str) else {"bad_message"},
        )
    ),
    _wrong_field_types().map(lambda m: (_pack(m), {"bad_message"})),
    st.fixed_dictionaries(
        {"type": st.text(max_size=60).filter(lambda t: t not in KNOWN_TYPES)},
        optional={"seq": st.integers(0, 100), "position": st.integers(0, 5), "answers": st.just({})},
    ).map(lambda m: (_pack(m), {"unknown_type"})),
    st.builds(
        lambda seq, position: {
            "type": "submit",
            "seq": seq,
            "position": position,
            "answers": {"agree": True},
        },
        _huge | st.just(1),
        _huge,
    ).map(lambda m: (_pack(m), {"bad_message"})),
    st.integers(1100, 3000).map(lambda n: (_deep(n), {"bad_frame"})),
    st.integers(1, 30).map(
        lambda n: (
            _pack({"type": "draft", "seq": 1, "position": {"x": {"y": [{"z": {}}] * n}}, "answers": {}}),
            {"bad_message"},
        )
    ),
    st.builds(
        lambda token, params: {"type": "hello", "protocol": 1, "token": token, "params": params},
        st.none() | st.text(max_size=10),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    ).map(lambda m: (_pack(m), {"bad_message"})),  # a second hello on one connection
)


@pytest.fixture
def lenient_client(tmp_path: Path) -> Any:
    """A client of an app that closes no socket for its rejected messages (test_flood.py covers that)."""
    with TestClient(make_test_app(example_study, tmp_path / "data", ws_max_errors=100_000)) as client:
        yield client


def test_garbage_gets_errors_and_hurts_nobody(lenient_client, tmp_path):
    client = lenient_client
    victim = ScriptedParticipant(client, params={"PROLIFIC_PID": "victim"}).connect()
    bystander = ScriptedParticipant(client, params={"PROLIFIC_PID": "bystander"}).connect()
    bystander.submit(GOOD_ANSWERS["consent"])
    bystander.submit(GOOD_ANSWERS["instructions"])  # on to a survey, which keeps drafts
    drafts = 0

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(garbage=_garbage)
    def send_garbage(garbage: tuple[bytes | str, set[str]]) -> None:
        nonlocal drafts
        frame, codes = garbage
        if isinstance(frame, bytes):
            try:  # random bytes that happen to be a real message are not garbage
                decoded = msgpack.unpackb(frame, raw=False, strict_map_key=False)
            except Exception:
                decoded = None
            if _is_known_message(decoded):
                return
        victim.send_raw(frame)
        reply = victim.receive()
        assert reply["type"] == "error", (frame, reply)
        assert reply["code"] in ERROR_CODES, reply
        assert reply["code"] in codes, (frame, reply)
        assert isinstance(reply["message"], str) and reply["message"]
        assert reply["seq"] is None or isinstance(reply["seq"], int)
        # the other participant is not affected, at any point
        assert bystander.draft({"nickname": str(drafts)})["type"] == "ack"
        drafts += 1

    try:
        send_garbage()
        assert drafts >= 100, f"only {drafts} garbage frames were sent"

        # The victim's connection still works, and nothing was recorded for them.
        assert victim.ping()["type"] == "pong"
        assert victim.position == 0
        assert victim.submit(GOOD_ANSWERS["consent"])["scene"]["scene_id"] == "instructions"
        # The bystander walks to the end; their records are exactly their answers.
        seen = _walk_to_the_end(bystander)
        assert client.get("/health").json()["status"] == "ok"
    finally:  # an open socket would keep the test client from shutting down
        victim.close()
        bystander.close()
    responses = read_records(tmp_path / "data", example_study.experiment_id, "responses")
    mine = [r for r in responses if r["participant_id"] == bystander.participant_id]
    expected = [
        (scene_id, question, value)
        for scene_id in ["consent", *seen[:-1]]  # (seen starts after the instructions)
        for question, value in GOOD_ANSWERS[scene_id].items()
    ]
    assert [(r["scene_id"], r["question_id"], r["value"]) for r in mine] == expected
    theirs = [r for r in responses if r["participant_id"] == victim.participant_id]
    assert [(r["scene_id"], r["question_id"]) for r in theirs] == [("consent", "agree")]


def test_errors_to_a_message_carry_its_seq(client):
    with ScriptedParticipant(client) as p:
        p.send({"type": "submit", "seq": 41, "position": 3, "answers": {}})
        reply = p.receive()
        assert (reply["type"], reply["code"], reply["seq"]) == ("error", "stale_position", 41)
        assert p.receive() == p.scene  # the current scene again, so the page catches up
        p.send({"type": "ping", "seq": 42, "t": 123.5})
        pong = p.receive()
        assert (pong["type"], pong["seq"], pong["t"]) == ("pong", 42, 123.5)
        assert abs(pong["server_time"] - time.time() * 1000) < 60_000


# --- before hello ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        {"type": "ping", "seq": 1, "t": 0.0},
        {"type": "submit", "seq": 1, "position": 0, "answers": {"agree": True}},
        {"type": "draft", "seq": 1, "position": 0, "answers": {}},
    ],
)
def test_a_non_hello_first_message_closes_with_1008(client, app, first):
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(_pack(first))
        reply = _receive(ws)
        assert (reply["type"], reply["code"]) == ("error", "hello_required")
        _expect_close(ws, 1008)
    assert app.state.study.by_id == {}


@pytest.mark.parametrize("version", [0, 2, 99])
def test_wrong_protocol_version_closes_with_1008(client, app, version):
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(_pack({"type": "hello", "protocol": version, "token": None, "params": {}}))
        reply = _receive(ws)
        assert (reply["type"], reply["code"]) == ("error", "protocol_version")
        assert "Reload" in reply["message"]
        _expect_close(ws, 1008)
    assert app.state.study.by_id == {}


def test_no_hello_in_time_closes_with_1008(tmp_path):
    app = make_test_app(example_study, tmp_path / "data", hello_timeout_ms=100)
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        reply = _receive(ws)
        assert (reply["type"], reply["code"]) == ("error", "hello_required")
        _expect_close(ws, 1008)


def test_a_malformed_hello_is_an_error_and_a_good_one_still_works(client):
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(_pack({"type": "hello", "protocol": 1, "token": None, "params": {"a": 1}}))
        reply = _receive(ws)
        assert (reply["type"], reply["code"]) == ("error", "bad_message")
        ws.send_bytes(_pack({"type": "hello", "protocol": 1, "token": None, "params": {}}))
        assert _receive(ws)["type"] == "welcome"
        assert _receive(ws)["type"] == "scene"


@pytest.fixture
def small_app(tmp_path: Path) -> Any:
    return make_test_app(example_study, tmp_path / "data", max_message_bytes=1024)


def _frame_of_size(size: int) -> bytes:
    base = {"type": "ping", "seq": 1, "t": 1.0, "pad": ""}
    overhead = len(_pack(base))
    for pad in range(size - overhead, size - overhead - 4, -1):
        frame = _pack({**base, "pad": "x" * pad})
        if len(frame) == size:
            return frame
    raise AssertionError(f"cannot build a frame of {size} bytes")


def test_a_frame_over_the_limit_closes_with_1009(small_app, tmp_path):
    with TestClient(small_app) as client:
        with ScriptedParticipant(client, params={"PROLIFIC_PID": "big"}) as p:
            p.send_raw(_frame_of_size(1024))  # at the limit: fine
            assert p.receive()["type"] == "pong"
            p.send_raw(_frame_of_size(1025))
            reply = p.receive()
            assert (reply["type"], reply["code"]) == ("error", "too_large")
            assert "1024" in reply["message"]
            _expect_close(p, 1009)
        # The participant can come back.
        with ScriptedParticipant(client, token=p.token, params={"PROLIFIC_PID": "big"}) as again:
            assert again.welcome["resumed"] is True
            assert again.participant_id == p.participant_id


def test_a_frame_over_the_limit_before_hello_closes_with_1009(small_app):
    with TestClient(small_app) as client, client.websocket_connect("/ws") as ws:
        ws.send_bytes(b"\x00" * 5000)
        reply = _receive(ws)
        assert (reply["type"], reply["code"]) == ("error", "too_large")
        _expect_close(ws, 1009)
        assert small_app.state.study.by_id == {}


# --- out-of-place messages ------------------------------------------------------------------------------


def _expect_stale(p: ScriptedParticipant, message: dict[str, Any]) -> None:
    """Send an out-of-place message: ``stale_position``, and after a submit the current scene."""
    p.send(message)
    reply = p.receive()
    assert (reply["type"], reply["code"], reply["seq"]) == ("error", "stale_position", message["seq"])
    assert f"position {p.position}" in reply["message"]
    if message["type"] == "submit":
        again = p.receive_type("scene")
        assert again == p.scene


def test_out_of_place_submit_and_draft_are_stale(client, tmp_path):
    with ScriptedParticipant(client) as p:
        _expect_stale(p, {"type": "submit", "seq": 1, "position": 1, "answers": {}})
        _expect_stale(p, {"type": "submit", "seq": 2, "position": -1, "answers": {"agree": True}})
        _expect_stale(p, {"type": "draft", "seq": 3, "position": 4, "answers": {"nickname": "x"}})
        assert p.submit(GOOD_ANSWERS["consent"])["scene"]["scene_id"] == "instructions"
        # a late retry of the consent submission, and a draft for the old scene
        _expect_stale(p, {"type": "submit", "seq": 10, "position": 0, "answers": {"agree": True}})
        _expect_stale(p, {"type": "draft", "seq": 11, "position": 0, "answers": {"agree": True}})
        assert p.position == 1
        assert p.draft({})["type"] == "ack"
        seen = _walk_to_the_end(p)
        # nothing more once finished
        _expect_stale(p, {"type": "submit", "seq": 99, "position": p.position, "answers": {}})
        _expect_stale(p, {"type": "draft", "seq": 100, "position": p.position, "answers": {}})
    responses = read_records(tmp_path / "data", example_study.experiment_id, "responses")
    scenes = [r["scene_id"] for r in responses if r["question_id"] in ("agree", "energy")]
    assert scenes == ["consent", "mood", "mood"]
    assert seen[-1] == "done"


def test_close_codes_are_documented():
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    for code in ("1008", "1009", "4001"):
        assert re.search(rf"^\| {code} \|", text, re.MULTILINE), code


# --- the codec on its own -------------------------------------------------------------------------------

_safe_ints = st.integers(-(2**53), 2**53)
_answer_values = st.recursive(
    st.none() | st.booleans() | _safe_ints | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
_valid_messages = st.one_of(
    st.builds(
        lambda token, params: {"type": "hello", "protocol": 1, "token": token, "params": params},
        st.none() | st.text(max_size=128),
        st.dictionaries(st.text(max_size=20), st.text(max_size=50), max_size=10),
    ),
    *[
        st.builds(
            lambda kind, seq, position, answers: {
                "type": kind,
                "seq": seq,
                "position": position,
                "answers": answers,
            },
            st.just(kind),
            _safe_ints,
            _safe_ints,
            st.dictionaries(st.text(max_size=10), _answer_values, max_size=5),
        )
        for kind in ("draft", "submit")
    ],
    st.builds(
        lambda seq, t: {"type": "ping", "seq": seq, "t": t},
        _safe_ints,
        st.floats(allow_nan=False) | _safe_ints,
    ),
)


@settings(max_examples=200, deadline=None)
@given(message=_valid_messages)
def test_valid_messages_decode_to_their_fields(message):
    from igym_core.protocol.messages import decode_client_message

    decoded = decode_client_message(_pack(message))
    assert decoded.type == message["type"]
    for key, value in message.items():
        if key != "type":
            assert getattr(decoded, key) == value


# Game messages (see _game_messages below).
_packable_ints = st.integers(-(2**63), 2**64 - 1)
_any_value = (
    st.none() | st.booleans() | _packable_ints | st.floats() | st.text(max_size=3) | st.binary(max_size=3)
)


def _keys_field():
    key = st.text(min_size=0, max_size=34) | st.sampled_from(["ArrowLeft", "a", "x" * 32, "x" * 33])
    return st.none() | st.lists(key, max_size=17) | _any_value


_field_values = {
    "type": st.sampled_from(["input", "game_ready", "rtt_echo", "ping"]) | st.text(max_size=5) | _any_value,
    "game_id": st.text(max_size=66) | st.sampled_from(["g", "g" * 64, "g" * 65]) | _any_value,
    "seq": st.integers(-(2**54), 2**54) | st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1]) | _any_value,
    "keys": _keys_field(),
    "press": _keys_field(),
}
_valid_game_messages = st.one_of(
    st.builds(
        lambda game_id, seq, field, keys: {"type": "input", "game_id": game_id, "seq": seq, field: keys},
        st.text(min_size=1, max_size=64),
        _safe_ints,
        st.sampled_from(["keys", "press"]),
        st.lists(st.text(min_size=1, max_size=32), max_size=16),
    ),
    st.builds(lambda game_id: {"type": "game_ready", "game_id": game_id}, st.text(min_size=1, max_size=64)),
)
# A valid message, then maybe some fields replaced (by values near and past their limits, of the
# right type or not), some removed, and unknown fields (also with non-string keys) beside them.
_game_messages = st.builds(
    lambda valid, replaced, removed, extra: {
        key: value for key, value in {**extra, **valid, **replaced}.items() if key not in removed
    },
    _valid_game_messages,
    st.fixed_dictionaries({}, optional=_field_values),
    st.sets(st.sampled_from(sorted(_field_values)), max_size=2),
    st.dictionaries(st.text(max_size=4) | _packable_ints, _any_value, max_size=2),
)


def _outcome(decode, frame):
    try:
        return decode(frame)
    except Exception as exc:  # the same error class, code and text, or the same message
        return (type(exc), getattr(exc, "code", None), str(exc))


@settings(max_examples=1500, deadline=None)
@given(message=_game_messages)
def test_the_fast_game_message_decoder_agrees_with_the_general_one(message):
    from igym_core.protocol.messages import _decode, decode_client_message

    frame = msgpack.packb(message, use_bin_type=True)
    assert _outcome(decode_client_message, frame) == _outcome(_decode, frame)


def test_a_deeply_nested_game_message_gets_the_general_decoders_answer():
    from igym_core.protocol.messages import _decode, decode_client_message

    fields = b"".join(msgpack.packb(x) for x in ("type", "input", "game_id", "g", "seq", 1, "keys", ["a"]))
    for depth in (100, 5000):  # a list in a list in ... in an unknown field
        frame = b"\x85" + fields + msgpack.packb("junk") + b"\x91" * depth + b"\x90"
        assert _outcome(decode_client_message, frame) == _outcome(_decode, frame)
