"""A real `igym run` process and real sockets: a client that stops reading does not slow its game
(frames are dropped for it, and recorded), and a game scene's assets folder is served."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
import websockets

from igym_core.testing import read_records
from tests.conftest import LiveServer

STUDY = "tests/studies/noise_game.py:experiment"


def run_async(coroutine_function: Callable[..., Any], *args: Any) -> Any:
    """asyncio.run in a thread of its own: Playwright's sync API may hold this thread's event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coroutine_function(*args))).result(timeout=120)


async def _stalled_player(url: str, stall_s: float) -> dict[str, Any]:
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.send(msgpack.packb({"type": "hello", "protocol": 1, "token": None, "params": {}}))
        game_id = None
        while game_id is None:
            message = msgpack.unpackb(await ws.recv())
            if message["type"] == "game_status":
                game_id = message["game_id"]
        await ws.send(msgpack.packb({"type": "game_ready", "game_id": game_id}))
        # Read nothing for a while, as a browser on a congested network would.
        await asyncio.sleep(stall_s)
        keyframes_after_drop = 0
        frames = 0
        while True:
            message = msgpack.unpackb(await asyncio.wait_for(ws.recv(), timeout=20))
            if message["type"] == "frame":
                frames += 1
                keyframes_after_drop += bool(message["key"]) and frames > 1
            if message["type"] == "scene":
                return {"frames": frames, "keyframes": keyframes_after_drop, "next": message["scene"]["kind"]}


@pytest.mark.serial  # the tick lateness is checked: run alone (`make test`'s serial run)
def test_a_client_that_stops_reading_loses_frames_not_the_game(live_server: Callable[..., LiveServer]):
    server = live_server(STUDY)
    result = run_async(_stalled_player, f"ws://127.0.0.1:{server.port}/ws", 3.0)
    assert result["next"] == "end"  # the game ended on time and the player moved on
    episodes = read_records(server.data_dir, "noise_game", "episodes")
    assert len(episodes) == 1 and episodes[0]["steps"] == 150
    (dropped,) = episodes[0]["frames_dropped"].values()
    assert dropped > 0
    # Frames that reached the client plus those dropped for it: one per tick.
    assert result["frames"] + dropped >= 150
    # After the drops, the client was brought up to date with a keyframe.
    assert result["keyframes"] >= 1
    # The game loop never waited for the client: no tick started a whole period late.
    assert episodes[0]["tick_lateness_ms_max"] < 1000 / 30
    steps = read_records(server.data_dir, "noise_game", "steps")
    assert len(steps) == 150


def test_scene_assets_are_served_and_listed_for_preloading(live_server: Callable[..., LiveServer]):
    server = live_server(STUDY)
    with urllib.request.urlopen(f"{server.url}/scene-assets/noise/dot.svg", timeout=5) as response:
        assert response.status == 200
        assert b"<circle" in response.read()
    try:
        urllib.request.urlopen(f"{server.url}/scene-assets/noise/../noise_game.py", timeout=5)
        raise AssertionError("a file outside the assets folder was served")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404

    async def scene() -> dict[str, Any]:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            await ws.send(msgpack.packb({"type": "hello", "protocol": 1, "token": None, "params": {}}))
            while True:
                message = msgpack.unpackb(await ws.recv())
                if message["type"] == "scene":
                    return message["scene"]

    view = run_async(scene)
    assert view["assets"] == [{"type": "image", "key": "dot", "url": "/scene-assets/noise/dot.svg"}]
    assert view["renderer"] == "rgb_array"
    time.sleep(0.1)
