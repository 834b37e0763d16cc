"""Typed server → client messages encode to the bytes the client reads (docs/protocol.md,
docs/game-protocol.md): the maps below are the messages as the server built them by hand before
they were typed, keys in the same order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from igym_core.protocol import server_messages as sm

DOCS = Path(__file__).resolve().parents[2] / "docs"


def packed(message: dict[str, Any]) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


names = st.text(min_size=0, max_size=12)
maybe = st.none() | names


@given(
    game_id=maybe,
    phase=st.sampled_from(["matching", "waiting", "countdown", "playing", "paused", "ended"]),
    episode=st.integers(1, 1000),
    num_episodes=st.integers(1, 1000),
    seat=maybe,
    message=names,
    countdown_ms=st.integers(0, 10_000),
    pause_reason=st.none() | st.sampled_from(["saving", "nobody_connected"]),
    players=st.none()
    | st.lists(
        st.fixed_dictionaries(
            {"seat": names, "you": st.booleans(), "status": st.sampled_from(["connected", "away", "bot"])}
        ),
        max_size=3,
    ),
    notice=maybe,
    waiting=st.none()
    | st.tuples(
        st.none() | st.integers(0, 99), st.integers(2, 4), st.integers(0, 10**6), st.integers(0, 10**6)
    ),
    final=st.booleans(),
    outcome=maybe,
    redirect_url=maybe,
)
def test_game_status_has_the_hand_built_bytes_for_every_combination_of_its_parts(
    game_id, phase, episode, num_episodes, seat, message, countdown_ms, pause_reason, players, notice,
    waiting, final, outcome, redirect_url,
):  # fmt: skip
    # The runtime's status (pause_reason, then players and notice), the waiting room's, and the
    # study's final one (final, outcome, redirect_url), each added in that order.
    expected: dict[str, Any] = {
        "type": "game_status",
        "game_id": game_id,
        "phase": phase,
        "episode": episode,
        "num_episodes": num_episodes,
        "seat": seat,
        "message": message,
        "countdown_ms": countdown_ms,
    }
    if pause_reason is not None:
        expected["pause_reason"] = pause_reason
    if players is not None:
        expected["players"] = players
    if notice is not None:
        expected["notice"] = notice
    room = None
    if waiting is not None:
        count, group_size, waited_ms, timeout_ms = waiting
        expected["waiting"] = {
            "count": count,
            "group_size": group_size,
            "waited_ms": waited_ms,
            "timeout_ms": timeout_ms,
        }
        room = sm.WaitingRoom(count=count, group_size=group_size, waited_ms=waited_ms, timeout_ms=timeout_ms)
    if final:
        expected["final"] = True
    if outcome is not None:
        expected["outcome"] = outcome
    if redirect_url is not None:
        expected["redirect_url"] = redirect_url
    status = sm.GameStatus(
        game_id=game_id,
        phase=phase,
        episode=episode,
        num_episodes=num_episodes,
        seat=seat,
        message=message,
        countdown_ms=countdown_ms,
        pause_reason=pause_reason,
        players=players,
        notice=notice,
        waiting=room,
        final=final,
        outcome=outcome,
        redirect_url=redirect_url,
    )
    assert sm.encode(status) == packed(expected)
    assert sm.encode(status.wire()) == packed(expected)


@given(seq=st.none() | st.integers(0, 2**31), retry=st.none() | st.integers(0, 60_000), text=names)
def test_errors_have_the_hand_built_bytes(seq, retry, text):
    expected: dict[str, Any] = {"type": "error", "code": "too_early", "message": text, "seq": seq}
    if retry is not None:
        expected["retry_after_ms"] = retry
    assert sm.encode(
        sm.ErrorMessage(code="too_early", message=text, seq=seq, retry_after_ms=retry)
    ) == packed(expected)


def test_the_other_messages_have_the_hand_built_bytes():
    cases: list[tuple[sm.ServerMessage, dict[str, Any]]] = [
        (
            sm.RttProbe(game_id="g-1", n=3, t=1.75e12),
            {"type": "rtt_probe", "game_id": "g-1", "n": 3, "t": 1.75e12},
        ),
        (sm.Pong(seq=4, t=1.0, server_time=2.5), {"type": "pong", "seq": 4, "t": 1.0, "server_time": 2.5}),
        (sm.Ack(seq=9), {"type": "ack", "seq": 9}),
        (
            sm.Welcome(protocol=1, token="tok", participant_id="p1", resumed=False),
            {"type": "welcome", "protocol": 1, "token": "tok", "participant_id": "p1", "resumed": False},
        ),
        (sm.Superseded(message="elsewhere"), {"type": "superseded", "message": "elsewhere"}),
        (
            sm.SceneMessage(
                position=2, total=5, instance=0, scene={"kind": "static"}, draft={}, context=None
            ),
            {
                "type": "scene",
                "position": 2,
                "total": 5,
                "instance": 0,
                "scene": {"kind": "static"},
                "draft": {},
                "context": None,
            },
        ),
        (
            sm.Rejected(seq=1, position=2, errors={"q": "Required"}, message="Please check.", error_count=30),
            {
                "type": "rejected",
                "seq": 1,
                "position": 2,
                "errors": {"q": "Required"},
                "message": "Please check.",
                "error_count": 30,
            },
        ),
        (
            sm.Rejected(
                code="unknown_answers",
                seq=1,
                position=2,
                errors={"x": "No"},
                unknown_count=1,
                message="Reload.",
            ),
            {
                "type": "rejected",
                "code": "unknown_answers",
                "seq": 1,
                "position": 2,
                "errors": {"x": "No"},
                "unknown_count": 1,
                "message": "Reload.",
            },
        ),
        (sm.Saving(position=3, message="Wait"), {"type": "saving", "position": 3, "message": "Wait"}),
    ]
    for message, expected in cases:
        assert message.wire()["type"] == type(message).type
        assert sm.encode(message) == packed(expected), type(message).__name__


def test_frames_start_with_the_head_and_pack_as_the_general_encoder_does():
    frame = {
        **sm.frame_head(game_id="g-1", tick=7, episode=1, step=6, t=1.75e12),
        "key": True,
        "hud": "Score 1",
        "add": [{"id": "a", "object_type": "circle", "x": 0.5, "y": 0.25, "depth": 1, "permanent": False}],
        "image": b"\x89PNG",
    }
    assert list(frame)[:6] == ["type", "game_id", "tick", "episode", "step", "t"]
    assert sm.pack(frame) == sm.encode(frame) == packed(frame)


def test_game_status_carries_the_fields_the_protocol_docs_name():
    text = (DOCS / "game-protocol.md").read_text(encoding="utf-8")
    line = re.search(r'\{"type": "game_status", ([^}]*)\}', text, re.S)
    assert line is not None
    documented = re.findall(r'"(\w+)"', line.group(1))
    status = sm.GameStatus(game_id="g", phase="playing", episode=1, num_episodes=2, seat="a", message="")
    assert list(status.wire()) == ["type", *documented]
    probe = re.search(r'\{"type": "rtt_probe", ([^}]*)\}', text)
    assert probe is not None
    assert list(sm.RttProbe(game_id="g", n=1, t=0.0).wire()) == [
        "type",
        *re.findall(r'"(\w+)"', probe.group(1)),
    ]
