"""The pyodide_p2p runtime's pure parts: its messages, its options, and ``FrameBook`` (one stored copy
per frame, the other compared) under any interleaving of the two pages' batches."""

from __future__ import annotations

import itertools
import json
from typing import Any, ClassVar

import attrs
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core.config.validators import FieldError
from igym_core.errors import PluginError, ProtocolError
from igym_core.protocol.messages import MessageDecoder
from igym_core.runtime.interface import RuntimeMessage
from igym_pyodide_p2p.ingest import BatchProblem, StepData
from igym_pyodide_p2p.p2p_ingest import PENDING_MAX_AGE_S, FrameBook, split_p2p
from igym_pyodide_p2p.p2p_options import P2POptions
from igym_pyodide_p2p.p2p_runtime import P2PRuntime
from igym_pyodide_p2p.runtime import PyodideRuntime

# --- the decoder: one class, two runtimes -----------------------------------------------------------


def test_the_same_message_class_declared_by_two_runtimes_is_decoded_once() -> None:
    decoder = MessageDecoder.for_runtimes(
        [("pyodide", PyodideRuntime.messages), ("pyodide_p2p", P2PRuntime.messages)]
    )
    message = decoder.decode(
        msgpack.packb(
            {"type": "episode_done", "game_id": "g", "episode": 1, "steps": 3, "end_reason": "truncated"}
        )
    )
    assert type(message).__name__ == "EpisodeDone" and message.steps == 3
    relay = decoder.decode(
        msgpack.packb({"type": "p2p_relay", "game_id": "g", "data": b"\x01"}, use_bin_type=True)
    )
    assert relay.data == b"\x01"


def test_a_different_class_with_a_declared_type_is_still_refused() -> None:
    @attrs.frozen
    class OtherDone(RuntimeMessage):
        type: ClassVar[str] = "episode_done"

        @classmethod
        def decode(cls, data: Any) -> OtherDone:
            return cls(game_id="g")

    with pytest.raises(PluginError) as raised:
        MessageDecoder.for_runtimes([("pyodide_p2p", P2PRuntime.messages), ("other", (OtherDone,))])
    assert "'episode_done' is declared twice" in str(raised.value) and "OtherDone" in str(raised.value)


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ({"type": "p2p_signal", "game_id": "g", "signal": {"sdp": "x" * 20_000}}, "at most 16384"),
        ({"type": "p2p_signal", "game_id": "g", "signal": [1]}, "'signal' must be a map"),
        ({"type": "p2p_relay", "game_id": "g", "data": b"x" * 8193}, "at most 8192"),
        ({"type": "p2p_relay", "game_id": "g"}, "'data' must be bytes"),
        (
            {"type": "p2p_route", "game_id": "g", "route": "direct", "rtt_ms": None, "input_delay": 0},
            "from 1 to 8",
        ),
        (
            {"type": "p2p_route", "game_id": "g", "route": "relay", "input_delay": 2, "reason": "r" * 201},
            "200",
        ),
        (
            {"type": "p2p_route", "game_id": "g", "route": "relay", "input_delay": 2, "rtt_ms": float("nan")},
            "rtt_ms",
        ),
        (
            {"type": "p2p_event", "game_id": "g", "kind": "desync_detected", "episode": -1, "frame": 0},
            "'episode'",
        ),
        (
            {"type": "p2p_event", "game_id": "g", "kind": "x", "episode": 1, "frame": 0},
            "'kind' must be one of",
        ),
        ({"type": "p2p_event", "kind": "resumed", "episode": 1, "frame": 0}, "'game_id'"),
    ],
)
def test_bad_p2p_messages_are_refused_naming_the_field(message: dict[str, Any], words: str) -> None:
    decoder = MessageDecoder.for_runtimes([("pyodide_p2p", P2PRuntime.messages)])
    with pytest.raises(ProtocolError) as raised:
        decoder.decode(msgpack.packb(message, use_bin_type=True))
    assert raised.value.code == "bad_message" and words in str(raised.value)


# --- options -------------------------------------------------------------------------------------


def test_the_defaults_are_the_contract_s() -> None:
    options = P2POptions.from_mapping({})
    assert (options.input_delay, options.prediction_window, options.hash_every_frames) == (2, 8, 10)
    assert (options.connect_timeout_s, options.route, options.ice_servers) == (5.0, "auto", ())
    assert (options.silent_notice_ms, options.partner_lost_s, options.reload_grace_s) == (750, 5.0, 30.0)
    assert P2POptions.from_mapping({"input_delay": "auto"}).input_delay == "auto"


@pytest.mark.parametrize(
    ("given", "field", "words"),
    [
        ({"input_delay": 9}, "input_delay", "from 1 to 8, or 'auto'"),
        ({"input_delay": "fast"}, "input_delay", "'auto'"),
        ({"prediction_window": 0}, "prediction_window", "from 1 to 8"),
        ({"route": "direct"}, "route", "relay"),
        ({"ice_servers": [{"urls": "http://x"}]}, "ice_servers[0].urls", "stun:"),
        ({"ice_servers": [{"urls": "turn:t.example.org"}]}, "ice_servers[0]", "IGYM_P2P_ICE_SERVERS"),
        (
            {"ice_servers": [{"urls": "turn:t.example.org", "username": "u", "credential": "c"}]},
            "ice_servers[0].username",
            "IGYM_P2P_ICE_SERVERS",
        ),
        ({"ice_servers": [{"urls": "stun:s", "password": "p"}]}, "ice_servers[0]", "'password'"),
        ({"reload_grace": 3}, "runtime_options.reload_grace", "Did you mean 'reload_grace_s'?"),
    ],
)
def test_a_wrong_option_names_the_field(given: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(FieldError) as raised:
        P2POptions.from_mapping(given)
    assert raised.value.field == field and words in raised.value.message


# --- the p2p part of a step ------------------------------------------------------------------------


def test_split_p2p_takes_the_p2p_part_off_and_checks_it() -> None:
    batch = {"steps": [{"step": 1, "p2p": {"rollbacks": 2, "predicted": 3}}, {"step": 2}]}
    stripped, infos = split_p2p(batch, lambda a: a in range(6))
    assert stripped["steps"] == [{"step": 1}, {"step": 2}] and batch["steps"][0]["p2p"]["rollbacks"] == 2
    assert [(i.rollbacks, i.predicted) for i in infos] == [(2, 3), (None, None)]
    for part, kind in (
        ({"rollbacks": -1}, "bad_value"),
        ({"predicted": 7}, "bad_action"),
        ({"x": 1}, "malformed"),
    ):
        with pytest.raises(BatchProblem) as raised:
            split_p2p({"steps": [{"step": 1, "p2p": part}]}, lambda a: a in range(6))
        assert raised.value.kind == kind


# --- FrameBook ------------------------------------------------------------------------------------


def _step(n: int, left: int, right: int, reward: float = 0.0) -> StepData:
    return StepData(
        step=n,
        t_ms=0.0,
        actions={"left": left, "right": right},
        sources={"left": "human", "right": "human"},
        keys={},
        rewards={"left": reward, "right": -reward},
        terminated={"left": False, "right": False},
        truncated={"left": False, "right": False},
    )


@settings(max_examples=150, deadline=None)
@given(
    frames=st.integers(1, 40),
    cuts=st.tuples(st.lists(st.integers(1, 40), max_size=6), st.lists(st.integers(1, 40), max_size=6)),
    order=st.lists(st.booleans(), max_size=20),
    tampered=st.sets(st.integers(1, 40), max_size=5),
)
def test_each_frame_is_stored_once_and_every_difference_found_in_any_interleaving(
    frames: int, cuts: tuple[list[int], list[int]], order: list[bool], tampered: set[int]
) -> None:
    honest = [_step(n, n % 6, (n * 7) % 6, float(n % 3)) for n in range(1, frames + 1)]
    other = [
        _step(s.step, s.actions["left"], s.actions["right"], 9.0) if s.step in tampered else s for s in honest
    ]

    def chunks(steps: list[StepData], points: list[int]) -> list[list[StepData]]:
        edges = sorted({p for p in points if p < len(steps)} | {0, len(steps)})
        return [steps[a:b] for a, b in itertools.pairwise(edges)]

    queues = {"left": chunks(honest, cuts[0]), "right": chunks(other, cuts[1])}
    book = FrameBook(("left", "right"))
    stored: list[int] = []
    found = []
    picks = iter(order)
    while queues["left"] or queues["right"]:
        seat = "left" if not queues["right"] or (queues["left"] and next(picks, True)) else "right"
        chunk = queues[seat].pop(0)
        first, _hashes, differences = book.arrive(seat, 1, chunk, [], now=0.0)
        stored.extend(s.step for s in first)
        found.extend(differences)
    assert sorted(stored) == list(range(1, frames + 1))
    bad = {n for n in tampered if n <= frames}
    # A tampered frame's reward differs for both agents; nothing else differs anywhere.
    assert sorted((d.step, d.field, d.agent) for d in found) == sorted(
        (n, "reward", agent) for n in bad for agent in ("left", "right")
    )
    assert all(set(d.values) == {"left", "right"} for d in found)
    assert book.pending_count() == 0


def test_a_copy_that_waits_too_long_is_unconfirmed_and_a_late_one_is_not_stored_again() -> None:
    book = FrameBook(("left", "right"))
    first, _h, _d = book.arrive("left", 1, [_step(1, 0, 0), _step(2, 1, 1)], [(2, "abc")], now=0.0)
    assert [s.step for s in first] == [1, 2] and book.pending_count() == 3
    assert book.expire(PENDING_MAX_AGE_S - 1) == []
    gone = book.expire(PENDING_MAX_AGE_S)
    assert sorted((d.step, d.values["left"], d.values["right"]) for d in gone) == [
        (1, "step", None),
        (2, "state_hash", None),
        (2, "step", None),
    ]
    late, hashes, differences = book.arrive(
        "right", 1, [_step(2, 1, 1)], [(2, "abc")], now=PENDING_MAX_AGE_S + 1
    )
    assert (late, hashes, differences) == ([], [], [])
    # With the partner gone, nothing waits for their copy.
    book.partner_gone("right")
    book.arrive("left", 1, [_step(3, 0, 0)], [], now=0.0)
    assert book.pending_count() == 0


_P2P_DECODER = MessageDecoder.for_runtimes([("pyodide_p2p", P2PRuntime.messages)])
_values = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=30)
    | st.binary(max_size=40)
    | st.lists(st.integers(-9, 9), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.integers(-9, 9) | st.text(max_size=5), max_size=3)
)
_p2p_messages = st.fixed_dictionaries(
    {"type": st.sampled_from(["p2p_signal", "p2p_relay", "p2p_route", "p2p_event"])},
    optional={
        "game_id": st.text(max_size=70) | _values,
        "signal": _values,
        "data": _values,
        "route": st.sampled_from(["direct", "relay"]) | _values,
        "rtt_ms": st.floats(-10, 70_000) | _values,
        "input_delay": st.integers(-1, 10) | _values,
        "reason": st.text(max_size=210) | _values,
        "kind": st.sampled_from(["desync_detected", "partner_lost", "resumed"]) | _values,
        "episode": st.integers(-2, 2**54) | _values,
        "frame": st.integers(-2, 2**54) | _values,
        "detail": _values,
    },
)


@settings(max_examples=500, deadline=None)
@given(data=_p2p_messages)
def test_p2p_messages_are_decoded_exactly_or_refused_never_crash(data: dict[str, Any]) -> None:
    try:
        message = _P2P_DECODER.decode(msgpack.packb(data, use_bin_type=True))
    except ProtocolError as exc:
        assert exc.code == "bad_message"
        return
    game_id = data["game_id"]
    assert isinstance(game_id, str) and 0 < len(game_id) <= 64 and message.game_id == game_id
    if data["type"] == "p2p_relay":
        assert (
            isinstance(data["data"], bytes) and message.data == data["data"] and 0 < len(data["data"]) <= 8192
        )
    elif data["type"] == "p2p_signal":
        assert isinstance(data["signal"], dict) and message.signal == data["signal"]
    elif data["type"] == "p2p_route":
        assert message.route in ("direct", "relay") and 1 <= message.input_delay <= 8
        assert message.rtt_ms is None or 0 <= message.rtt_ms <= 60_000
    else:
        assert message.kind == data["kind"] and 0 <= message.episode <= 2**53 and 0 <= message.frame <= 2**53


def test_igym_p2p_ice_servers_is_json_and_a_bad_value_names_the_variable_not_its_secret() -> None:
    from igym_core.errors import ConfigError
    from igym_core.settings import Settings, recorded_settings

    turn = '[{"urls": "turn:t.example.org", "username": "u", "credential": "hunter2"}]'
    settings = Settings.from_env({"IGYM_P2P_ICE_SERVERS": turn})
    assert settings.p2p_ice_servers == (
        {"urls": "turn:t.example.org", "username": "u", "credential": "hunter2"},
    )
    assert "hunter2" not in repr(settings) and "hunter2" not in json.dumps(recorded_settings(settings))
    assert recorded_settings(settings)["p2p_ice_servers"] == [
        {"urls": "turn:t.example.org", "username": "<hidden>", "credential": "<hidden>"}
    ]
    for bad in ('[{"urls": "turn:t", "credential": "hunter2"', '{"credential": "hunter2"}'):
        with pytest.raises(ConfigError) as raised:
            Settings.from_env({"IGYM_P2P_ICE_SERVERS": bad})
        assert "IGYM_P2P_ICE_SERVERS" in str(raised.value) and "hunter2" not in str(raised.value)
