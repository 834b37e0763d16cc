"""Server CPU per Unity bridge event, end to end: a real ``igym run`` serving a Unity scene (igym's
fake build) and pages simulated over real WebSockets, each playing episodes as fast as the scene's
rate limit allows (episode_started, a log, episode_ended; SendMessage of a callback's value at each
start).

    uv run --frozen python bench/unity_bridge.py --pages 50 --seconds 10

Prints the events sent and stored, and the server's CPU time per event (``/stats``'s
``process_cpu_s`` before and after), then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import msgpack
import websockets

from igym_core.testing import LiveServer, read_records
from igym_unity.testing import write_fake_build

STUDY = """
from igym_core import EndScene, Experiment, StaticScene
from igym_unity import UnityScene

def condition_for(game, episode):
    return {{"episode": episode}}

experiment = Experiment(
    experiment_id="unity_bench",
    scenes=(
        StaticScene(scene_id="intro", body="Next: a game."),
        UnityScene(scene_id="game", build_dir={build!r}, num_episodes=10000, max_events_per_s=1000,
                   max_events=10_000_000, send_message_object="GameManager",
                   send_message_method="Configure", on_episode_start=condition_for),
        EndScene(scene_id="end"),
    ),
)
"""


async def _page(url: str, n: int, until: float, sent: list[int]) -> None:
    async with websockets.connect(url, max_size=None) as ws:

        async def send(message: dict[str, Any]) -> None:
            await ws.send(msgpack.packb(message))

        async def receive(kind: str) -> dict[str, Any]:
            while True:
                message = msgpack.unpackb(await ws.recv())
                if message.get("type") == kind:
                    return message

        await send({"type": "hello", "protocol": 1, "token": None, "params": {"PAGE": str(n)}})
        scene = await receive("scene")
        await send({"type": "submit", "seq": 1, "position": scene["position"], "answers": {}})
        status = await receive("game_status")
        game_id = status["game_id"]
        await send({"type": "unity_loaded", "game_id": game_id, "ms": 100})
        payload = json.dumps({"note": 'a "quoted" \\ text 🦄', "score": 1})
        count = 0
        while time.monotonic() < until:
            for event in ("episode_started", "log", "episode_ended"):
                await send(
                    {
                        "type": "unity_event",
                        "game_id": game_id,
                        "event": event,
                        "payload": payload,
                        "t": time.time() * 1000,
                    }
                )
                count += 1
            await asyncio.sleep(0.05)  # 60 events a second per page
        sent.append(count)


async def _run(url: str, pages: int, seconds: float) -> int:
    sent: list[int] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(_page(url, n, until, sent) for n in range(pages)))
    return sum(sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="igym-unity-bench-") as tmp:
        root = Path(tmp)
        write_fake_build(root / "build")
        study = root / "study.py"
        study.write_text(textwrap.dedent(STUDY.format(build=str(root / "build"))), encoding="utf-8")
        # Every simulated page comes from 127.0.0.1: no limit on new participants per address.
        env = {"IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN": "0"}
        with LiveServer(f"{study}:experiment", root / "data", env=env) as server:
            before = server.stats()["process_cpu_s"]
            sent = asyncio.run(_run(server.url.replace("http", "ws") + "/ws", args.pages, args.seconds))
            time.sleep(1.5)  # the last events reach the sink
            cpu = server.stats()["process_cpu_s"] - before
            stored = len(read_records(root / "data", "unity_bench", "unity_events"))
    bridge_rows = stored - stored // 4  # a quarter are the server's send_message rows
    result = {
        "pages": args.pages,
        "seconds": args.seconds,
        "events_sent": sent,
        "unity_events_rows": stored,
        "server_cpu_s": round(cpu, 3),
        "server_cpu_us_per_event": round(cpu / max(sent, 1) * 1e6, 1),
    }
    print(
        f"{args.pages} pages, {args.seconds:g} s: {sent} bridge events sent, {bridge_rows} stored "
        f"(+{stored - bridge_rows} SendMessage rows); server CPU {cpu:.2f} s = "
        f"{result['server_cpu_us_per_event']} µs per event (including connection set-up)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
