"""A real `igym run` process and a real socket: messages are handled in the order they were sent,
also when a game message (normally handled as soon as it is read, on the direct path) arrives
while an earlier message is still being handled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import msgpack
import websockets

from tests.conftest import LiveServer
from tests.studies.slow_sink import DURABLE_FLUSH_S
from tests.test_game_server import run_async

STUDY = "tests/studies/slow_submit.py:experiment"


async def _submit_then_input(url: str, gap_s: float) -> list[tuple[float, dict[str, Any]]]:
    """Consent (a submit whose durable flush is slow), then, ``gap_s`` later, an input for a game
    the participant is not in. Returns (seconds after the submit, message) for what came back."""
    async with websockets.connect(url, compression=None) as ws:
        await ws.send(msgpack.packb({"type": "hello", "protocol": 1, "token": None, "params": {}}))
        while True:
            message = msgpack.unpackb(await ws.recv())
            if message["type"] == "scene":
                break
        assert message["scene"]["kind"] == "start"
        position = message["position"]
        sent = time.monotonic()
        submit = {"type": "submit", "seq": 1, "position": position, "answers": {"agree": True}}
        await ws.send(msgpack.packb(submit))
        await asyncio.sleep(gap_s)
        await ws.send(msgpack.packb({"type": "input", "game_id": "g-none", "seq": 2, "keys": ["ArrowUp"]}))
        replies: list[tuple[float, dict[str, Any]]] = []
        while not {"scene", "error"} <= {m.get("type") for _, m in replies}:
            message = msgpack.unpackb(await asyncio.wait_for(ws.recv(), timeout=10))
            replies.append((time.monotonic() - sent, message))
        return replies


def test_a_game_message_sent_during_a_slow_submit_is_handled_after_it(live_server: Callable[..., LiveServer]):
    server = live_server(STUDY, args=["--plugin", "tests.studies.slow_sink"])
    replies = run_async(_submit_then_input, f"ws://127.0.0.1:{server.port}/ws", 0.1)
    kinds = [m["type"] for _, m in replies]
    # The submit's answer (the end scene) first, then the input's (an error: no such game).
    scene_at = kinds.index("scene")
    error_at = kinds.index("error")
    assert scene_at < error_at, kinds
    assert replies[scene_at][1]["scene"]["kind"] == "end"
    assert replies[error_at][1]["code"] == "not_in_game" and replies[error_at][1]["seq"] == 2
    # The submit really was slow, so the input arrived while it was being handled.
    assert replies[scene_at][0] >= DURABLE_FLUSH_S * 0.9
    assert "message_failed" not in server.log()
