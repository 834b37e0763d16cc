"""A participant's page of a ``pyodide`` game, over a real socket, without a browser (for the tests).

It speaks the page's side of the protocol (hello, submit, ``runtime_loaded``, ``step_batch``,
``episode_done``) with the steps an honest page would make (``honest_page.play_episode``).
"""

from __future__ import annotations

import time
from typing import Any

import msgpack
from websockets.sync.client import connect


class Page:
    """One page: connects, says hello, and keeps every message it was sent in ``received``."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.ws = connect(url.replace("http://", "ws://") + "/ws", max_size=None).__enter__()
        self.seq = 0
        self.received: list[dict[str, Any]] = []
        #: Messages that arrived while the page waited for another kind (``next`` looks here first).
        self.unclaimed: list[dict[str, Any]] = []
        #: When this page was told to play its current episode (monotonic).
        self.episode_started = 0.0
        self.send({"type": "hello", "protocol": 1, "token": token, "params": {}})
        self.welcome = self.next("welcome")
        self.scene = self.next("scene")

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(msgpack.packb(message))

    def recv(self, timeout: float = 30) -> dict[str, Any]:
        message = msgpack.unpackb(self.ws.recv(timeout=timeout), raw=False)
        self.received.append(message)
        return message

    def next(self, kind: str, timeout: float = 30, **fields: Any) -> dict[str, Any]:
        """The next message of type ``kind`` (with these field values) not returned before, also one
        that arrived while the page waited for something else."""

        def wanted(message: dict[str, Any]) -> bool:
            return message.get("type") == kind and all(message.get(k) == v for k, v in fields.items())

        found = next((m for m in self.unclaimed if wanted(m)), None)
        deadline = time.monotonic() + timeout
        while found is None:
            message = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            if wanted(message):
                found = message
            else:
                self.unclaimed.append(message)
        if found in self.unclaimed:
            self.unclaimed.remove(found)
        if kind == "pyodide_episode":  # a page steps from the end of the episode's countdown on
            self.episode_started = time.monotonic() + found.get("start_in_ms", 0) / 1000
        return found

    def submit(self, answers: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        self.send({"type": "submit", "seq": self.seq, "position": self.scene["position"], "answers": answers})
        self.scene = self.next("scene")
        return self.scene

    def to_game(self) -> str:
        """From the welcome scene to the game: its id, once the game is loading."""
        self.submit({"agree": True})
        status = self.next("game_status")
        assert status["phase"] == "loading", status
        return status["game_id"]

    def loaded(self, game_id: str) -> None:
        self.send(
            {
                "type": "runtime_loaded",
                "game_id": game_id,
                "ms": 1234.5,
                "stages": {"runtime_ms": 800.0, "packages_ms": 300.0, "env_ms": 100.0, "model_ms": 34.5},
            }
        )

    def send_batch(self, batch: dict[str, Any], *, fps: int = 30, paced: bool = True) -> dict[str, Any]:
        """Send a batch no sooner than a page playing at ``fps`` could have made its steps (within
        the server's 2 s tolerance; ``paced=False``: at once); the server's answer to it
        (``batch_ack`` or ``error``)."""
        if paced and batch.get("steps") and isinstance(batch["steps"], list) and self.episode_started:
            last = batch["steps"][-1].get("step")
            if isinstance(last, int):
                time.sleep(max(0.0, self.episode_started + last / fps - 1.5 - time.monotonic()))
        self.send(batch)
        while True:
            message = self.recv()
            if message.get("type") == "batch_ack" or message.get("type") == "error":
                return message
            self.unclaimed.append(message)

    def close(self) -> None:
        self.ws.close()
