"""A Unity scene across a real server restart (``igym run`` killed with SIGKILL and started again on
the same data): the resumed game goes on from the score and bonus totals its predecessor recorded."""

from __future__ import annotations

import json
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
from websockets.sync.client import connect

from igym_core.testing import LiveServer, read_records
from igym_unity.testing import write_fake_build

STUDY = """
from igym_core import EndScene, Experiment, StaticScene
from igym_unity import UnityScene

def coins(episode):
    points = sum(1 for e in episode.events if e.event == "log" and e.value == {"coin": 1})
    return {"score": points, "bonus": 0.5 * points}

experiment = Experiment(
    experiment_id="unity_restart",
    scenes=(
        StaticScene(scene_id="intro"),
        UnityScene(scene_id="game", build_dir="build", num_episodes=3, score_episode=coins),
        EndScene(scene_id="end"),
    ),
)
"""


class Page:
    """A Unity scene's page over a real socket (the protocol, without a browser)."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.ws = connect(url.replace("http://", "ws://") + "/ws").__enter__()
        self.send({"type": "hello", "protocol": 1, "token": token, "params": {}})
        self.welcome = self.until(lambda m: m["type"] == "welcome")
        self.scene = self.until(lambda m: m["type"] == "scene")

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(msgpack.packb(message))

    def until(self, wanted: Callable[[dict[str, Any]], bool], timeout_s: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = msgpack.unpackb(self.ws.recv(timeout=timeout_s))
            if wanted(message):
                return message
        raise AssertionError("the expected message did not come")

    def status(self) -> dict[str, Any]:
        return self.until(lambda m: m["type"] == "game_status")

    def play(self, game_id: str, coins: int) -> dict[str, Any]:
        """One episode with ``coins`` coin logs; returns the status after it."""
        t = time.time() * 1000

        def event(name: str, payload: str) -> None:
            self.send({"type": "unity_event", "game_id": game_id, "event": name, "payload": payload, "t": t})

        event("episode_started", "{}")
        self.status()
        for _ in range(coins):
            event("log", json.dumps({"coin": 1}))
        event("episode_ended", json.dumps({"score": 1000}))  # a claim the server ignores
        return self.status()


def test_a_resumed_game_goes_on_from_the_recorded_totals_after_a_sigkill(tmp_path: Path) -> None:
    write_fake_build(tmp_path / "build")
    (tmp_path / "study.py").write_text(textwrap.dedent(STUDY), encoding="utf-8")
    target, data = f"{tmp_path / 'study.py'}:experiment", tmp_path / "data"
    server = LiveServer(target, data, cwd=tmp_path)
    try:
        page = Page(server.url)
        page.send({"type": "submit", "seq": 1, "position": page.scene["position"], "answers": {}})
        game_id = page.status()["game_id"]
        page.send({"type": "unity_loaded", "game_id": game_id, "ms": 10})
        page.status()
        assert page.play(game_id, 2)["score"] == 2.0
        assert page.play(game_id, 1)["score"] == 3.0
        time.sleep(0.8)  # past the recorder's flush interval: the episode rows are on disk
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        page.ws.socket.close()
    finally:
        server.stop()

    again = LiveServer(target, data, cwd=tmp_path)
    try:
        back = Page(again.url, token=page.welcome["token"])
        status = back.status()
        new_game = status["game_id"]
        assert new_game != game_id
        assert (status["episode"], status["episodes_done"], status["score"]) == (3, 2, 3.0)
        back.send({"type": "unity_loaded", "game_id": new_game, "ms": 10})
        back.status()
        final = back.play(new_game, 4)
        assert (final["phase"], final["score"]) == ("ended", 7.0)
        assert back.until(lambda m: m["type"] == "scene")["scene"]["scene_id"] == "end"
        back.ws.close()
    finally:
        again.stop()
    rows = read_records(data, "unity_restart", "episodes")
    assert [(r["game_id"] == new_game, r["episode"], r["score_total"], r["bonus_total"]) for r in rows] == [
        (False, 1, 2.0, 1.0),
        (False, 2, 3.0, 1.5),
        (True, 3, 7.0, 3.5),
    ]
    added = [s for s in read_records(data, "unity_restart", "sessions") if s["event"] == "values_added"]
    assert [s["detail"]["values"] for s in added] == [{"game_score": 7.0, "game_bonus": 3.5}]
