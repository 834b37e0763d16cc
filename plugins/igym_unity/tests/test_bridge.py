"""The server side of a Unity scene, through the app and a scripted page (Litestar's test client):
bridge messages validated and recorded, episodes counted on the server, SendMessage of the
callback's value, the end rules, the way out, and a reload resuming at the server's episode."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

import igym_unity.plugin
from igym_core.testing import ScriptedParticipant, make_test_app, read_records
from igym_unity.testing import write_fake_build

from .support import unity_study

CALLS: list[tuple[str, int]] = []


def condition_for(game: Any, episode: int) -> Any:
    CALLS.append((game.game_id, episode))
    return {"episode": episode, "said": 'a "quote" \\ 🐇'}


@contextmanager
def in_unity_scene(tmp_path: Path, **scene: Any) -> Iterator[tuple[TestClient, ScriptedParticipant, str]]:
    """A participant on the Unity scene; yields the client, the participant and the game id."""
    write_fake_build(tmp_path / "build")
    app = make_test_app(
        unity_study(tmp_path / "build", **scene), tmp_path / "data", extra_plugins=[igym_unity.plugin]
    )
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        p.submit({})
        assert p.scene["scene"]["scene_id"] == "game"
        status = p.receive_type("game_status")
        assert (status["phase"], status["episode"], status["episodes_done"]) == ("waiting", 1, 0)
        yield client, p, status["game_id"]


def bridge(p: ScriptedParticipant, game_id: str, event: str, payload: str, t: float = 1.7e12) -> None:
    p.send({"type": "unity_event", "game_id": game_id, "event": event, "payload": payload, "t": t})


def loaded(p: ScriptedParticipant, game_id: str) -> dict[str, Any]:
    p.send({"type": "unity_loaded", "game_id": game_id, "ms": 812})
    return p.receive_type("game_status")


def test_episodes_are_counted_on_the_server_recorded_and_the_scene_ends(tmp_path: Path) -> None:
    CALLS.clear()
    scene = {
        "num_episodes": 2,
        "send_message_object": "Game Manager",
        "send_message_method": "Configure",
        "on_episode_start": condition_for,
    }
    with in_unity_scene(tmp_path, **scene) as (_client, p, game_id):
        assert loaded(p, game_id)["phase"] == "playing"
        note = 'she said "hi" \\ </script> 🦄'
        for episode in (1, 2):
            bridge(p, game_id, "episode_started", json.dumps({"level": episode}))
            status = p.receive_type("game_status")
            assert (status["episode"], status["episodes_done"]) == (episode, episode - 1)
            sent = p.receive_type("unity_send")
            assert (sent["object"], sent["method"]) == ("Game Manager", "Configure")
            assert json.loads(sent["value"]) == {"episode": episode, "said": 'a "quote" \\ 🐇'}
            bridge(p, game_id, "log", json.dumps({"said": note}, ensure_ascii=False))
            bridge(p, game_id, "episode_ended", json.dumps({"score": 1.5 * episode}))
            if episode == 1:
                assert p.receive_type("game_status")["episodes_done"] == 1
        final = p.receive_type("game_status")
        assert (final["phase"], final["episodes_done"], final["score"]) == ("ended", 2, 4.5)
        assert p.receive_type("scene")["scene"]["scene_id"] == "after"
    assert [c[1] for c in CALLS] == [1, 2]
    rows = read_records(tmp_path / "data", "unity_test", "unity_events")
    assert [(r["episode"], r["event"]) for r in rows] == [
        (1, "episode_started"),
        (1, "send_message"),
        (1, "log"),
        (1, "episode_ended"),
        (2, "episode_started"),
        (2, "send_message"),
        (2, "log"),
        (2, "episode_ended"),
    ]
    logs = [r for r in rows if r["event"] == "log"]
    assert all(json.loads(r["payload"]) == {"said": note} for r in logs)
    assert all(r["client_time_ms"] == 1.7e12 for r in rows if r["event"] != "send_message")
    episodes = read_records(tmp_path / "data", "unity_test", "episodes")
    assert [(e["episode"], e["end_reason"], e["returns"]) for e in episodes] == [
        (1, "ended", {"player": 1.5}),
        (2, "ended", {"player": 3.0}),
    ]


def test_a_done_payload_ends_the_scene_early(tmp_path: Path) -> None:
    with in_unity_scene(tmp_path, num_episodes=5) as (_client, p, game_id):
        loaded(p, game_id)
        bridge(p, game_id, "episode_started", "{}")
        p.receive_type("game_status")
        bridge(p, game_id, "episode_ended", '{"done": true}')
        assert p.receive_type("game_status")["phase"] == "ended"
        assert p.receive_type("scene")["scene"]["scene_id"] == "after"
    games = read_records(tmp_path / "data", "unity_test", "games")
    assert next(g for g in games if g["event"] == "ended")["reason"] == "game_done"


def test_bad_bridge_messages_are_refused_recorded_and_the_game_goes_on(tmp_path: Path) -> None:
    with in_unity_scene(tmp_path, max_payload_bytes=64) as (_client, p, game_id):
        # Before the game has loaded, its calls do not count.
        bridge(p, game_id, "log", "{}")
        assert "once the game has loaded" in p.receive_type("error")["message"]
        loaded(p, game_id)
        for message, named in [
            ({"event": "cheat", "payload": "{}", "t": 1}, "'event' must be one of"),
            ({"event": "log", "payload": {"a": 1}, "t": 1}, "'payload' must be the JSON text"),
            ({"event": "log", "payload": "{}", "t": -5}, "'t' must be a number"),
            ({"event": "log", "payload": "{}", "t": 1, "extra": 1}, "takes no extra"),
        ]:
            p.send({"type": "unity_event", "game_id": game_id, **message})
            error = p.receive_type("error")
            assert error["code"] == "bad_message" and named in error["message"], error
        bridge(p, game_id, "log", json.dumps({"x": "é" * 40}))  # 88 UTF-8 bytes > 64
        assert "this scene takes at most 64" in p.receive_type("error")["message"]
        bridge(p, game_id, "log", "{not json")
        assert "not JSON" in p.receive_type("error")["message"]
        bridge(p, game_id, "episode_ended", "{}")
        assert "without an episode started" in p.receive_type("error")["message"]
        bridge(p, game_id, "episode_started", "{}")  # still playing
        assert p.receive_type("game_status")["episode"] == 1
    refused = read_records(tmp_path / "data", "unity_test", "unity_rejected")
    assert [r["reason"] for r in refused] == ["not_loaded", "too_large", "not_json", "no_open_episode"]
    events = read_records(tmp_path / "data", "unity_test", "unity_events")
    assert [r["event"] for r in events] == ["episode_started"]


def test_more_events_than_the_rate_allows_are_refused(tmp_path: Path) -> None:
    with in_unity_scene(tmp_path, max_events_per_s=1) as (_client, p, game_id):
        loaded(p, game_id)
        for _ in range(4):  # a burst of 2 s worth (2) passes; the rest is refused
            bridge(p, game_id, "log", "{}")
        for _ in range(2):
            assert "bridge events a second" in p.receive_type("error")["message"]
    events = read_records(tmp_path / "data", "unity_test", "unity_events")
    assert len(events) == 2


def test_a_reload_resumes_at_the_servers_episode_and_replays_an_open_one(tmp_path: Path) -> None:
    with in_unity_scene(tmp_path, num_episodes=3) as (client, p, game_id):
        loaded(p, game_id)
        bridge(p, game_id, "episode_started", "{}")
        p.receive_type("game_status")
        bridge(p, game_id, "episode_ended", "{}")
        p.receive_type("game_status")
        bridge(p, game_id, "episode_started", "{}")  # episode 2 is open ...
        p.receive_type("game_status")
        token = p.token
        p.close()  # ... when the page goes away
        with ScriptedParticipant(client, token=token) as again:
            assert again.scene["scene"]["scene_id"] == "game"
            status = again.receive_type("game_status")
            assert (status["game_id"], status["phase"]) == (game_id, "waiting")
            assert (status["episode"], status["episodes_done"]) == (2, 1)
            assert loaded(again, game_id)["episode"] == 2
            # The interrupted episode 2 is played again from its start.
            bridge(again, game_id, "episode_started", "{}")
            assert again.receive_type("game_status")["episode"] == 2
            bridge(again, game_id, "episode_ended", "{}")
            assert again.receive_type("game_status")["episodes_done"] == 2
    episodes = read_records(tmp_path / "data", "unity_test", "episodes")
    assert [(e["episode"], e["end_reason"]) for e in episodes] == [
        (1, "ended"),
        (2, "interrupted"),
        (2, "ended"),
    ]


def test_a_failed_load_takes_the_configured_way_out_with_its_outcome(tmp_path: Path) -> None:
    with in_unity_scene(tmp_path, failure_scene="sorry") as (_client, p, game_id):
        p.send({"type": "unity_way_out", "game_id": game_id})  # nothing has failed yet
        assert "has not reported a failed load" in p.receive_type("error")["message"]
        p.send({"type": "unity_load_failed", "game_id": game_id, "stage": "webgl", "message": "no WebGL"})
        # Recorded at once; the participant is still on the scene until they take the way out.
        deadline = time.monotonic() + 5
        while not read_records(tmp_path / "data", "unity_test", "games")[1:] and time.monotonic() < deadline:
            time.sleep(0.1)
        games = read_records(tmp_path / "data", "unity_test", "games")
        assert [g["event"] for g in games] == ["started", "runtime_load_failed"]
        p.send({"type": "unity_way_out", "game_id": game_id})
        assert p.receive_type("game_status")["phase"] == "ended"
        p.scene = p.receive_type("scene")
        assert p.scene["scene"]["scene_id"] == "sorry"
        end = p.submit({})
        assert end["scene"]["scene_id"] == "end" and end["context"]["completion_code"] == "NOGAME"
    games = read_records(tmp_path / "data", "unity_test", "games")
    failed = next(g for g in games if g["event"] == "runtime_load_failed")
    assert (failed["stage"], failed["message"]) == ("webgl", "no WebGL")


def test_on_failure_end_goes_to_the_end_scene(tmp_path: Path) -> None:
    with in_unity_scene(tmp_path, on_failure="end") as (_client, p, game_id):
        p.send({"type": "unity_load_failed", "game_id": game_id, "stage": "instance", "message": "boom"})
        p.send({"type": "unity_way_out", "game_id": game_id})
        p.receive_type("game_status")
        end = p.receive_type("scene")
        assert end["scene"]["scene_id"] == "end" and end["context"]["completion_code"] == "NOGAME"


def test_the_scene_time_limit_ends_it_with_its_outcome(tmp_path: Path) -> None:
    with in_unity_scene(tmp_path, timeout_s=1, failure_scene="sorry") as (_client, p, game_id):
        loaded(p, game_id)
        bridge(p, game_id, "episode_started", "{}")
        p.receive_type("game_status")
        final = p.receive_type("game_status")  # within ~1 s, from the server's timer
        assert (final["phase"], final["message"]) == ("ended", "Time is up for this game.")
        p.scene = p.receive_type("scene")
        assert p.scene["scene"]["scene_id"] == "sorry"
        assert p.submit({})["context"]["completion_code"] == "LATE"
    episodes = read_records(tmp_path / "data", "unity_test", "episodes")
    assert [(e["episode"], e["end_reason"]) for e in episodes] == [(1, "timeout")]


def test_an_open_page_that_never_loads_is_told_and_stays_until_it_takes_the_way_out(tmp_path: Path) -> None:
    with in_unity_scene(tmp_path, load_timeout_s=5) as (_client, p, game_id):
        p.timeout_s = 15
        assert p.receive_type("unity_load_timeout") == {"type": "unity_load_timeout", "game_id": game_id}
        # A build that loads after the timeout does not count: the way out stands.
        p.send({"type": "unity_loaded", "game_id": game_id, "ms": 9000})
        assert "after load_timeout_s" in p.receive_type("error")["message"]
        p.send({"type": "unity_way_out", "game_id": game_id})
        final = p.receive_type("game_status")
        assert (final["phase"], final["message"]) == (
            "ended",
            "The game could not be loaded in this browser.",
        )
        p.scene = p.receive_type("scene")
        assert p.scene["scene"]["scene_id"] == "after"  # skip, no failure_scene: the next scene
    games = read_records(tmp_path / "data", "unity_test", "games")
    assert [g["event"] for g in games] == ["started", "load_timeout", "ended"]
    assert games[-1]["reason"] == "load_timeout"


def test_a_closed_page_meets_the_load_timeout_and_finds_the_next_scene(tmp_path: Path) -> None:
    with in_unity_scene(tmp_path, load_timeout_s=5) as (client, p, _game_id):
        p.close()
        time.sleep(6)
        with ScriptedParticipant(client, token=p.token) as back:
            assert back.scene["scene"]["scene_id"] == "after"
    games = read_records(tmp_path / "data", "unity_test", "games")
    assert [g["event"] for g in games] == ["started", "load_timeout", "ended"]


def test_a_game_records_at_most_max_events(tmp_path: Path) -> None:
    with in_unity_scene(tmp_path, max_events=10) as (_client, p, game_id):
        loaded(p, game_id)
        for _ in range(11):
            bridge(p, game_id, "log", "{}")
        assert "recorded its 10 bridge events" in p.receive_type("error")["message"]
    assert len(read_records(tmp_path / "data", "unity_test", "unity_events")) == 10


def test_a_game_nobody_is_connected_to_ends_abandoned_after_abandon_after_s(tmp_path: Path) -> None:
    with in_unity_scene(tmp_path, abandon_after_s=10) as (client, p, game_id):
        loaded(p, game_id)
        bridge(p, game_id, "episode_started", "{}")
        p.receive_type("game_status")
        token = p.token
        p.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            games = read_records(tmp_path / "data", "unity_test", "games")
            if any(g["event"] == "ended" for g in games):
                break
            time.sleep(0.25)
        with ScriptedParticipant(client, token=token) as again:
            assert again.scene["scene"]["scene_id"] == "after"  # moved on when they come back
    games = read_records(tmp_path / "data", "unity_test", "games")
    assert next(g for g in games if g["event"] == "ended")["reason"] == "abandoned"
    episodes = read_records(tmp_path / "data", "unity_test", "episodes")
    assert [(e["episode"], e["end_reason"]) for e in episodes] == [(1, "abandoned")]
