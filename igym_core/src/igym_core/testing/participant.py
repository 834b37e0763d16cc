"""A participant scripted over the WebSocket, for tests of the server and of plugins."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

import msgpack

__all__ = ["ScriptedParticipant"]


class ScriptedParticipant:
    """Speaks the participant protocol through Litestar's test client.

    >>> with ScriptedParticipant(client, params={"PROLIFIC_PID": "abc"}) as p:   # doctest: +SKIP
    ...     p.submit({"agree": True})
    ...     assert p.scene["scene"]["kind"] == "static"
    """

    def __init__(
        self,
        client: Any,
        *,
        params: Mapping[str, str] | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.timeout_s = timeout_s
        self.client = client
        self.params = dict(params or {})
        self.token = token
        self.participant_id: str | None = None
        self.scene: dict[str, Any] = {}
        self.saving: dict[str, Any] | None = None
        """The ``saving`` message while the server waits to store this participant's records."""
        self.welcome: dict[str, Any] = {}
        self._ws: Any = None
        self._cm: Any = None
        self._seq = 0
        self.answer_rtt_probes = True
        self.rtt_probes_answered = 0
        #: Wait out a scene's ``min_duration_ms`` before submitting it, as the page does (the
        #: server refuses an earlier submit with ``too_early``). False: submit at once.
        self.wait_min_duration = True
        self._scene_seen_at = time.monotonic()

    # --- connection ---------------------------------------------------------------------------
    def connect(self) -> ScriptedParticipant:
        self._cm = self.client.websocket_connect("/ws")
        self._ws = self._cm.__enter__()
        self.send({"type": "hello", "protocol": 1, "token": self.token, "params": self.params})
        self.welcome = self.receive_type("welcome")
        self.token = self.welcome["token"]
        self.participant_id = self.welcome["participant_id"]
        self.receive_type("scene", "saving")
        return self

    def _scene_or_saving(self, message: dict[str, Any]) -> dict[str, Any]:
        if message["type"] == "saving":
            self.saving = message
        else:
            self.scene, self.saving = message, None
        return message

    def close(self) -> None:
        if self._cm is not None:
            with contextlib.suppress(Exception):  # already closed by the server
                self._cm.__exit__(None, None, None)
            self._cm = self._ws = None

    def __enter__(self) -> ScriptedParticipant:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- frames -------------------------------------------------------------------------------
    def send(self, message: Mapping[str, Any]) -> None:
        self._ws.send_bytes(msgpack.packb(dict(message), use_bin_type=True))

    def send_raw(self, frame: bytes | str) -> None:
        if isinstance(frame, str):
            self._ws.send_text(frame)
        else:
            self._ws.send_bytes(frame)

    def receive(self) -> dict[str, Any]:
        """The next message. Round-trip probes of a game are answered at once, as a page does,
        and not returned (``answer_rtt_probes=False`` leaves them to the test). Every ``scene``
        (or ``saving``) message, however it is read, updates :attr:`scene` (or :attr:`saving`)."""
        while True:
            # A timeout turns "the server never answered" into a failure instead of a hung test.
            message = msgpack.unpackb(self._ws.receive_bytes(timeout=self.timeout_s), raw=False)
            if message.get("type") == "scene":
                self._scene_seen_at = time.monotonic()
            if message.get("type") in ("scene", "saving"):
                self._scene_or_saving(message)
            if message.get("type") != "rtt_probe" or not self.answer_rtt_probes:
                return message
            self.send({"type": "rtt_echo", "game_id": message["game_id"], "n": message["n"]})
            self.rtt_probes_answered += 1

    def receive_type(self, *types: str) -> dict[str, Any]:
        """The next message, which must be of one of ``types`` (an ``error`` raises AssertionError)."""
        message = self.receive()
        if message.get("type") not in types:
            raise AssertionError(f"expected a message of type {types}, got {message!r}")
        return message

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # --- actions ------------------------------------------------------------------------------
    @property
    def position(self) -> int:
        return int(self.scene["position"])

    @property
    def kind(self) -> str:
        return str(self.scene["scene"]["kind"])

    def submit(self, answers: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Submit answers for the current scene. Returns the next ``scene`` (or ``saving``, when the
        server cannot store the records yet), or the ``rejected`` reply.

        Like the page, it first waits until the scene's ``min_duration_ms`` has passed since the
        scene arrived (unless ``wait_min_duration`` is off).
        """
        min_ms = self.scene.get("scene", {}).get("min_duration_ms") or 0
        if self.wait_min_duration and min_ms > 0:
            time.sleep(max(0.0, self._scene_seen_at + min_ms / 1000 - time.monotonic()))
        seq = self.next_seq()
        self.send({"type": "submit", "seq": seq, "position": self.position, "answers": dict(answers or {})})
        reply = self.receive_type("ack", "rejected", "error")
        if reply["type"] == "error" and reply.get("code") == "stale_position":
            self.receive_type("scene", "saving")  # the server resends the scene
            return reply
        if reply["type"] != "ack":
            return reply
        return self.receive_type("scene", "saving")

    def draft(self, answers: Mapping[str, Any]) -> dict[str, Any]:
        seq = self.next_seq()
        self.send({"type": "draft", "seq": seq, "position": self.position, "answers": dict(answers)})
        return self.receive_type("ack", "error")

    # --- games --------------------------------------------------------------------------------
    def game_ready(self, game_id: str) -> None:
        """Say the page has loaded the game scene (the game starts when every player has)."""
        self.send({"type": "game_ready", "game_id": game_id})

    def hold(self, game_id: str, *keys: str) -> None:
        """Send the keys held now (held mode); no keys releases everything."""
        self.send({"type": "input", "game_id": game_id, "seq": self.next_seq(), "keys": list(keys)})

    def press(self, game_id: str, *keys: str) -> None:
        """Send key presses (press mode)."""
        self.send({"type": "input", "game_id": game_id, "seq": self.next_seq(), "press": list(keys)})

    def receive_until(
        self, predicate: Any, *, limit: int = 10_000
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Read messages until ``predicate(message)``; return it and everything read before it.

        A ``scene`` message read on the way updates :attr:`scene` (as every read does).
        """
        seen: list[dict[str, Any]] = []
        for _ in range(limit):
            message = self.receive()
            if predicate(message):
                return message, seen
            seen.append(message)
        raise AssertionError(f"no matching message in {limit} messages")

    def ping(self) -> dict[str, Any]:
        seq = self.next_seq()
        self.send({"type": "ping", "seq": seq, "t": 1.0})
        return self.receive_type("pong")
