"""A server killed with SIGKILL and started again: nothing acknowledged is lost, participants resume."""

from __future__ import annotations

import signal
from typing import Any

import msgpack
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
