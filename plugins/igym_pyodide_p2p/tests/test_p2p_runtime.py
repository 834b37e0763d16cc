"""The ``pyodide_p2p`` runtime on a real ``igym run`` server, with two pages over real sockets."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from honest_page import batches  # noqa: E402
from live_records import records_when, verify_then_tamper  # noqa: E402
from p2p_peer import Peer, p2p_episode, pair  # noqa: E402

from tests.conftest import LiveServer  # noqa: E402

STUDY = f"{HERE / 'studies' / 'slime_p2p.py'}:experiment"
EXPERIMENT = "slime_p2p"


def serve(
    tmp_path: Path,
    *,
    options: dict[str, Any] | None = None,
    partner_left: str = "end",
    env: dict[str, str] | None = None,
) -> LiveServer:
    variables = {
        "IGYM_TEST_P2P_OPTIONS": json.dumps(options or {}),
        "IGYM_TEST_P2P_PARTNER_LEFT": partner_left,
        **(env or {}),
    }
    return LiveServer(STUDY, tmp_path / "data", env=variables)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = serve(tmp_path)
    yield live
    live.stop()


def records(
    server: LiveServer, record_type: str, until: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """The records of a type once ``until`` holds for them (the sink writes them out every 500 ms)."""
    return records_when(server.data_dir, EXPERIMENT, record_type, until)


def route(peer: Peer, game_id: str, kind: str = "relay") -> None:
    peer.send(
        {
            "type": "p2p_route",
            "game_id": game_id,
            "route": kind,
            "rtt_ms": 12.5,
            "input_delay": 2,
            "reason": "no direct connection within 5 s" if kind == "relay" else "",
        }
    )


def send_episode(
    peer: Peer, game_id: str, issued: dict[str, Any], *, first_batch: int, tamper: Callable | None = None
) -> list[dict[str, Any]]:
    """Play the issued episode as ``peer``'s honest page (``tamper`` may change its steps first)."""
    seat = peer.start["seat"]
    steps, hashes = p2p_episode(issued["seed"], max_steps=issued["max_steps"], seat=seat)
    if tamper is not None:
        tamper(steps, hashes)
    sent = batches(game_id, issued["episode"], steps, hashes, first_batch=first_batch)
    for batch in sent:
        reply = peer.send_batch(batch)
        assert reply == {"type": "batch_ack", "game_id": game_id, "batch": batch["batch"]}, reply
    peer.send(
        {
            "type": "episode_done",
            "game_id": game_id,
            "episode": issued["episode"],
            "steps": len(steps),
            "end_reason": "truncated",
        }
    )
    return sent


def test_a_whole_game_over_the_relay_stores_every_frame_once_and_verifies(server: LiveServer) -> None:
    authority, other, game_id = pair(server.url)
    assert authority.start["seat"] == "left" and other.start["seat"] == "right"
    assert (authority.start["partner_seat"], other.start["partner_seat"]) == ("right", "left")
    assert authority.start["input_delay"] == 2 and authority.start["window"] == 8
    assert authority.start["hash_every"] == 10 and authority.start["route"] == "auto"
    assert authority.start["ice_servers"] == [] and authority.start["resume"] is False
    assert authority.start["lost_after_ms"] == 5000 and authority.start["silent_notice_ms"] == 750

    # Signalling and the relay: forwarded to the partner unchanged.
    offer = {"sdp": {"type": "offer", "sdp": "v=0 ..."}}
    authority.send({"type": "p2p_signal", "game_id": game_id, "signal": offer})
    assert other.next("p2p_signal") == {"type": "p2p_signal", "game_id": game_id, "signal": offer}
    packet = b'{"f":3,"i":[[1,0]]}'
    other.send({"type": "p2p_relay", "game_id": game_id, "data": packet})
    assert authority.next("p2p_relay") == {"type": "p2p_relay", "game_id": game_id, "data": packet}
    route(authority, game_id)
    route(other, game_id)

    seeds = []
    for episode in (1, 2):
        issued = [peer.next("pyodide_episode") for peer in (authority, other)]
        assert issued[0] == issued[1] and issued[0]["episode"] == episode
        seeds.append(issued[0]["seed"])
        first_batch = 1 if episode == 1 else 7
        # The authority reports first, then the other page: each frame is stored once, compared once.
        send_episode(authority, game_id, issued[0], first_batch=first_batch)
        send_episode(other, game_id, issued[1], first_batch=first_batch)
    for peer in (authority, other):
        assert peer.next("scene")["scene"]["kind"] == "end"
        assert peer.errors() == []

    rows = records(server, "steps", lambda rows: len(rows) >= 360)
    keys = Counter((r["episode"], r["step"], r["agent"]) for r in rows)
    assert len(keys) == 360 and set(keys.values()) == {1}
    assert {r["participant_id"] for r in rows} == {
        authority.welcome["participant_id"],
        other.welcome["participant_id"],
    }
    frames = records(server, "p2p_frames", lambda rows: len(rows) >= 360)
    assert Counter((f["episode"], f["step"]) for f in frames) == {
        (e, s): 2 for e in (1, 2) for s in range(1, 91)
    }
    assert {f["seat"] for f in frames} == {"left", "right"}
    assert [f["rollbacks"] for f in frames if f["seat"] == "left"][:4] == [1, 2, 0, 1]
    assert [f["predicted"] for f in frames if f["seat"] == "left"][:4] == [None, None, None, 0]
    assert records(server, "p2p_disagreements", lambda rows: True) == []
    hashes = records(server, "state_hashes", lambda rows: len(rows) >= 20)
    assert Counter((h["episode"], h["step"]) for h in hashes) == {
        (e, s): 1 for e in (1, 2) for s in range(0, 91, 10)
    }
    games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
    routes = [
        (g["seat"], g["route"], g["rtt_ms"], g["input_delay"]) for g in games if g["event"] == "p2p_route"
    ]
    assert sorted(routes) == [("left", "relay", 12.5, 2), ("right", "relay", 12.5, 2)]
    assert [g["reason"] for g in games if g["event"] == "ended"] == ["completed"]
    summary = next(g for g in games if g["event"] == "p2p_summary")
    assert summary["pages"]["left"]["signals"] == 1 and summary["pages"]["right"]["relayed"] == 1
    assert (summary["frames"], summary["compared"], summary["disagreements"]) == (180, 180, 0)
    episodes = records(server, "episodes", lambda rows: len(rows) >= 2)
    assert [(e["episode"], e["seed"], e["steps"], e["end_reason"]) for e in episodes] == [
        (1, seeds[0], 90, "truncated"),
        (2, seeds[1], 90, "truncated"),
    ]

    # igym verify re-runs both episodes from the canonical steps and state hashes; a copy with one
    # reward changed fails.
    output = verify_then_tamper(server.data_dir / EXPERIMENT, episode=2, step=40, agent="right", reward=5.0)
    assert (
        f"DIFFERS game {game_id} (scene slime_p2p) episode 2 (seed {seeds[1]}): step 40: reward of 'right'"
        in output
    )
