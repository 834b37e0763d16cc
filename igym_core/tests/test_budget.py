"""Per-connection budgets (server/budget.py): the frame gate over any chunking, the plain-ASGI budget,
rejections counted and logged in aggregate with an error budget that closes the socket."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from igym_core.examples.survey_study import experiment as example_study
from igym_core.server.budget import REJECTION_LOG_INTERVAL_S, FrameGate, InboundLimits, RejectionTally
from igym_core.testing import make_test_app

MASK = b"\x01\x02\x03\x04"


def client_frame(opcode: int, size: int, fin: bool = True) -> bytes:
    """A masked client frame with a payload of ``size`` bytes (the payload's content does not matter)."""
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        header = bytes((first, 0x80 | size))
    elif size < 65536:
        header = bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + MASK + bytes(size)


_sizes = st.one_of(
    st.integers(0, 130), st.sampled_from([125, 126, 127, 65535, 65536, 70000]), st.integers(0, 3000)
)
_frames = st.lists(st.tuples(st.sampled_from([1, 2, 0, 9, 10, 8]), _sizes), min_size=1, max_size=25)


def _stream(frames: list[tuple[int, int]]) -> tuple[bytes, list[int]]:
    """The bytes of ``frames`` and the offset where each frame starts."""
    starts, parts, offset = [], [], 0
    for opcode, size in frames:
        frame = client_frame(opcode, size)
        starts.append(offset)
        parts.append(frame)
        offset += len(frame)
    return b"".join(parts), starts


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _feed(gate: FrameGate, chunks: list[bytes], now: float = 0.0) -> tuple[int, bytes]:
    """Feed chunks as the protocol does (what is not admitted is held and offered again first)."""
    held = b""
    admitted = 0
    for chunk in chunks:
        data = held + chunk
        taken = gate.admit(data, now)
        assert 0 <= taken <= len(data)
        admitted += taken
        held = data[taken:]
    return admitted, held


@settings(max_examples=300, deadline=None)
@given(frames=_frames, cuts=st.lists(st.integers(0, 10**6), max_size=30))
def test_with_room_to_spare_every_byte_is_admitted_and_every_frame_counted(frames, cuts):
    data, _starts = _stream(frames)
    gate = FrameGate(
        InboundLimits(messages_per_s=1, message_burst=1000, bytes_per_s=1, byte_burst=10**7), 0.0
    )
    admitted, held = _feed(gate, _chunks(data, cuts))
    assert admitted == len(data) and held == b""
    assert gate.between_frames
    assert gate.frames == 1000 - len(frames)


@settings(max_examples=300, deadline=None)
@given(
    frames=_frames,
    cuts=st.lists(st.integers(0, 10**6), max_size=30),
    budget=st.integers(0, 30),
    later=st.integers(0, 30),
)
def test_no_frame_past_the_budget_is_admitted_until_the_budget_refills(frames, cuts, budget, later):
    data, starts = _stream(frames)
    # the budget is whole frames; the bucket refills one frame per second
    gate = FrameGate(
        InboundLimits(messages_per_s=1, message_burst=budget, bytes_per_s=1, byte_burst=10**7), 0.0
    )
    gate.bytes = gate.byte_burst = 1e12  # bytes are not what this test is about
    admitted, held = _feed(gate, _chunks(data, cuts))
    expected = starts[budget] if budget < len(frames) else len(data)
    assert admitted == expected  # up to the first byte of the first frame past the budget, exactly
    # `later` seconds refill `later` frames (capped by the burst)
    gate.frame_burst = float(budget + later)
    more = gate.admit(held, float(later))
    allowed = min(len(frames), budget + later)
    assert admitted + more == (starts[allowed] if allowed < len(frames) else len(data))


@settings(max_examples=200, deadline=None)
@given(frames=_frames, cuts=st.lists(st.integers(0, 10**6), max_size=30), burst=st.integers(0, 5000))
def test_no_byte_past_the_byte_budget_is_admitted(frames, cuts, burst):
    data, _starts = _stream(frames)
    gate = FrameGate(
        InboundLimits(messages_per_s=1, message_burst=10**6, bytes_per_s=1000, byte_burst=max(burst, 1)), 0.0
    )
    gate.bytes = float(burst)
    admitted, held = _feed(gate, _chunks(data, cuts))
    assert admitted == min(len(data), burst)
    assert gate.wait_s(len(held)) > 0 if held else True


def test_a_whole_frame_is_taken_from_both_budgets():
    gate = FrameGate(InboundLimits(messages_per_s=10, message_burst=2, bytes_per_s=100, byte_burst=100), 0.0)
    assert gate.take_frame(40, 0.0) and gate.take_frame(40, 0.0)
    assert not gate.take_frame(10, 0.0)  # no frames left
    assert gate.take_frame(10, 0.1)  # 0.1 s refills one frame and 10 bytes
    assert not gate.take_frame(40, 0.2)  # one frame, but 30 bytes
    assert gate.wait_s(0) >= 0.05


def test_rejections_are_logged_once_per_interval_and_past_the_budget_the_answer_is_no():
    with structlog.testing.capture_logs() as logs:
        tally = RejectionTally(50, now=0.0)
        answers = [tally.reject("bad_frame", "not msgpack", now=i / 1000) for i in range(1000)]
        assert answers[:50] == [True] * 50
        assert answers[50] is False
        assert sum(answers) <= 50 + 5  # 1 s refills 5 (50 per 10 s)
        assert [entry["event"] for entry in logs] == ["messages_rejected"]  # the first, at once
        assert logs[0]["counts"] == {"bad_frame": 1}
        tally.reject("not_in_game", "no such game", now=REJECTION_LOG_INTERVAL_S + 0.5)
        assert len(logs) == 2
        assert logs[1]["counts"] == {"bad_frame": 999, "not_in_game": 1}
        assert logs[1]["total"] == 1001
        tally.flush()  # nothing new since
        assert len(logs) == 2


# --- through plain ASGI (Litestar's test client): the same budgets, charged per message -----------


def _receive(ws: Any) -> dict[str, Any]:
    return msgpack.unpackb(ws.receive_bytes(timeout=5), raw=False)


def _hello(ws: Any) -> None:
    ws.send_bytes(msgpack.packb({"type": "hello", "protocol": 1, "token": None, "params": {}}))
    while _receive(ws)["type"] != "scene":
        pass


def test_plain_asgi_messages_past_the_budget_wait_for_it(tmp_path: Path) -> None:
    app = make_test_app(example_study, tmp_path / "data", ws_messages_per_s=20.0, ws_message_burst=5)
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        _hello(ws)
        time.sleep(0.3)  # the hello's share is back
        began = time.monotonic()
        for seq in range(25):
            ws.send_bytes(msgpack.packb({"type": "ping", "seq": seq, "t": 1.0}))
        pongs = [_receive(ws) for _ in range(25)]
        took = time.monotonic() - began
    assert [p["seq"] for p in pongs] == list(range(25))  # every one answered, in order
    assert took >= 0.8, took  # 5 at once, then 20 at 20 per second: 1 s


def test_plain_asgi_too_many_errors_close_the_socket_with_1008(tmp_path: Path) -> None:
    app = make_test_app(example_study, tmp_path / "data", ws_max_errors=10)
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        _hello(ws)
        for _ in range(11):
            ws.send_bytes(b"\xc1")  # never valid msgpack
        errors = [_receive(ws) for _ in range(11)]
        assert {e["code"] for e in errors} == {"bad_frame"}
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_bytes(timeout=5)
        assert info.value.code == 1008


def _never_throttled(gate: FrameGate, messages: list[tuple[float, int]]) -> bool:
    return all(gate.take_frame(size + 6, at) for at, size in sorted(messages))


def test_the_defaults_never_hold_back_an_honest_player() -> None:
    """What the client sends (frontend/src/connection.ts, game/keys.ts, app.ts), at its most."""
    from igym_core.settings import Settings

    limits = InboundLimits.from_settings(Settings())
    assert limits == InboundLimits()  # the protocol's own defaults are the settings' defaults
    # A game at the largest fps (120): a key change every frame, an RTT echo a second, a ping every
    # 10 s, for a minute; after a reconnect, the held keys, a ping and a draft all at once.
    game = [(i / 120, 60) for i in range(120 * 60)]
    game += [(i + 0.5, 40) for i in range(60)] + [(i * 10.0, 50) for i in range(6)]
    game += [(30.0, 200)] * 20
    assert _never_throttled(FrameGate(limits, 0.0), game)
    # A survey: a draft of the largest message (64 KiB) every 300 ms while typing, then the submit.
    survey = [(i * 0.3, 64 * 1024) for i in range(100)] + [(30.0, 64 * 1024)]
    assert _never_throttled(FrameGate(limits, 0.0), survey)
