"""A server killed with SIGKILL and started again: nothing acknowledged is lost, participants resume."""

from __future__ import annotations

import signal
import time
from typing import Any

import msgpack
import pytest
from websockets.sync.client import connect

from igym_core.testing import read_records


class Browserless:
    """A participant over a real socket (the protocol, without a page)."""

    def __init__(self, url: str, token: str | None = None, params: dict[str, str] | None = None) -> None:
        self.ws = connect(url.replace("http://", "ws://") + "/ws").__enter__()
        self.seq = 0
        self.send({"type": "hello", "protocol": 1, "token": token, "params": params or {}})
        self.welcome = self.recv()
        self.scene = self.recv()

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(msgpack.packb(message))

    def recv(self) -> dict[str, Any]:
        return msgpack.unpackb(self.ws.recv(timeout=10))

    def submit(self, answers: dict[str, Any]) -> dict[str, Any]:
        # As the page does: the continue button is disabled for the scene's min_duration_ms.
        time.sleep(self.scene["scene"].get("min_duration_ms", 0) / 1000)
        self.seq += 1
        self.send({"type": "submit", "seq": self.seq, "position": self.scene["position"], "answers": answers})
        reply = self.recv()
        assert reply["type"] == "ack", reply
        self.scene = self.recv()
        return self.scene


def test_sigkill_loses_no_acknowledged_answer_and_participants_resume(live_server) -> None:
    server = live_server("igym_core.examples.survey_study:experiment")
    alice = Browserless(server.url, params={"PROLIFIC_PID": "alice"})
    alice.submit({"agree": True})
    alice.submit({})
    alice.submit({"nickname": "Al", "age_group": "25–34", "devices": ["pc"]})
    assert alice.scene["position"] == 3
    token, pid = alice.welcome["token"], alice.welcome["participant_id"]
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)

    rows = read_records(server.data_dir, "demo_survey", "responses")
    assert [(r["scene_id"], r["question_id"], r["value"]) for r in rows] == [
        ("consent", "agree", True),
        ("about_you", "nickname", "Al"),
        ("about_you", "age_group", "25–34"),
        ("about_you", "devices", ["pc"]),
    ]

    again = live_server("igym_core.examples.survey_study:experiment")
    assert again.data_dir == server.data_dir
    back = Browserless(again.url, token=token, params={"PROLIFIC_PID": "alice"})
    assert back.welcome["resumed"] is True
    assert back.welcome["participant_id"] == pid
    assert back.scene["position"] == 3
    assert back.scene["scene"]["scene_id"] == alice.scene["scene"]["scene_id"]

    # A stranger with the same link parameters but no token is someone new.
    other = Browserless(again.url, params={"PROLIFIC_PID": "bob"})
    assert other.welcome["participant_id"] != pid and other.scene["position"] == 0
    back.ws.close()
    other.ws.close()
    again.stop()
    events = [
        e["event"]
        for e in read_records(server.data_dir, "demo_survey", "sessions")
        if e["participant_id"] == pid
    ]
    assert events.count("joined") == 1
    assert "resumed" in events


GAME_STUDY = "tests/studies/short_game.py"


def _until(client: Browserless, predicate: Any, timeout_s: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = client.recv()
        if predicate(message):
            return message
    raise AssertionError("the expected message did not come")


def _kill_in_episode_2(server: Any) -> tuple[str, str, str]:
    """Play into the second episode, let its first steps reach the disk, SIGKILL the server."""
    player = Browserless(server.url)
    status = _until(player, lambda m: m["type"] == "game_status")
    player.send({"type": "game_ready", "game_id": status["game_id"]})
    _until(player, lambda m: m["type"] == "frame" and m["episode"] == 2 and m["step"] >= 10)
    time.sleep(0.8)  # past the recorder's flush interval (500 ms): steps of episode 2 are on disk
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    player.ws.socket.close()  # (a close handshake with a dead server would wait out its timeout)
    return player.welcome["token"], player.welcome["participant_id"], status["game_id"]


@pytest.mark.parametrize("rule", ["resume", "restart", "skip"])
def test_a_game_cut_off_by_sigkill_gets_its_records_and_the_player_goes_on_by_the_scenes_rule(
    live_server, rule
) -> None:
    server = live_server(f"{GAME_STUDY}:{rule}")
    token, pid, old_game = _kill_in_episode_2(server)
    games = read_records(server.data_dir, "short_game", "games")
    assert [g["event"] for g in games if g["game_id"] == old_game] == ["started"]  # as QA found it
    on_disk = max(
        s["step"]
        for s in read_records(server.data_dir, "short_game", "steps")
        if s["game_id"] == old_game and s["episode"] == 2
    )
    assert 10 <= on_disk < 45

    again = live_server(f"{GAME_STUDY}:{rule}")
    games = read_records(server.data_dir, "short_game", "games")
    ended = [g for g in games if g["game_id"] == old_game and g["event"] == "ended"]
    assert [(g["reason"], g["episodes_played"]) for g in ended] == [("server_restart", 2)]
    episodes = [
        e for e in read_records(server.data_dir, "short_game", "episodes") if e["game_id"] == old_game
    ]
    assert [(e["episode"], e["end_reason"]) for e in episodes] == [(1, "max_steps"), (2, "server_restart")]
    cut = episodes[1]
    assert cut["steps"] == on_disk and isinstance(cut["seed"], int) and cut["seed"] != episodes[0]["seed"]
    assert cut["returns"] == {"agent_0": 0.0} and cut["seats"] == {"agent_0": pid}

    back = Browserless(again.url, token=token)
    assert back.welcome["resumed"] is True and back.welcome["participant_id"] == pid
    if rule == "skip":
        assert back.scene["scene"]["kind"] == "end" and back.scene["context"]["completion_code"]
        left = [
            e
            for e in read_records(server.data_dir, "short_game", "sessions")
            if e["event"] == "scene_left" and e["detail"].get("reason") == "server_restart"
        ]
        assert [e["detail"]["game_id"] for e in left] == [old_game]
    else:
        status = _until(back, lambda m: m["type"] == "game_status")
        first = 2 if rule == "resume" else 1
        assert status["game_id"] != old_game and status["episode"] == first
        back.send({"type": "game_ready", "game_id": status["game_id"]})
        _until(back, lambda m: m["type"] == "scene" and m["scene"]["kind"] == "end", timeout_s=20)
        games = read_records(server.data_dir, "short_game", "games")
        new = [g for g in games if g["game_id"] == status["game_id"]]
        assert new[0]["continues"] == {"game_id": old_game, "from_episode": first}
        assert (new[-1]["event"], new[-1]["reason"]) == ("ended", "completed")
        replayed = [
            e
            for e in read_records(server.data_dir, "short_game", "episodes")
            if e["game_id"] == new[0]["game_id"]
        ]
        assert [e["episode"] for e in replayed] == list(range(first, 4))
        assert replayed[0]["steps"] == 45
        if rule == "resume":  # the interrupted episode replayed from its start, with its seed
            assert replayed[0]["seed"] == cut["seed"]
    back.ws.close()


def test_a_player_who_returns_only_after_a_second_restart_still_resumes_and_records_are_completed_once(
    live_server,
) -> None:
    server = live_server(f"{GAME_STUDY}:resume")
    token, _pid, old_game = _kill_in_episode_2(server)
    again = live_server(f"{GAME_STUDY}:resume")  # completes the old game's records; nobody returns
    again.stop()

    third = live_server(f"{GAME_STUDY}:resume")
    back = Browserless(third.url, token=token)
    resumed = _until(back, lambda m: m["type"] == "game_status")
    assert resumed["episode"] == 2 and resumed["game_id"] != old_game
    back.ws.close()
    third.stop()  # (its records on disk)
    games = read_records(server.data_dir, "short_game", "games")
    assert [g["reason"] for g in games if g["event"] == "ended" and g["game_id"] == old_game] == [
        "server_restart"
    ]
    episodes = [
        e for e in read_records(server.data_dir, "short_game", "episodes") if e["game_id"] == old_game
    ]
    assert [e["end_reason"] for e in episodes] == ["max_steps", "server_restart"]
    (new,) = [g for g in games if g["event"] == "started" and g["game_id"] == resumed["game_id"]]
    assert new["continues"] == {"game_id": old_game, "from_episode": 2}
