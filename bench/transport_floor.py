"""The floor under ``bench/server_tick.py``: what one game-tick costs with no game at all.

    uv run --frozen python bench/transport_floor.py --games 100 --seconds 10

A stand-in server on the same stack as ``igym run`` (uvicorn, uvloop, igym's WebSocket protocol
with its direct path for game traffic) that does only the transport part of a game: it answers
``hello`` with a ``game_status``, decodes every message a participant sends, and at 30 fps writes
each participant a fixed, frame-sized msgpack message from 8 phase-shifted tickers, as the
server runtime does. No env, no rendering, no delta encoding, no records, no study. The load
generator is the one of ``bench/server_tick.py`` (browser-like input every 50 ms, a ping a second).

The CPU per game-tick it prints is what the machine charges for sockets, WebSocket framing and the
event loop alone, under the same load; the framework's own work comes on top. The last line is
one JSON object with ``games``, ``fps_median``, ``floor_us_per_tick`` (median of ``--runs`` runs)
and the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import msgpack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from server_tick import WARMUP_S, _load_main, free_port, get_stats, stop_server, wait_healthy  # noqa: E402

FPS = 30
GROUPS = 8


def serve(port: int) -> None:
    """The stand-in server (run in its own process)."""
    import uvicorn

    from igym_core.server.ws_protocol import DIRECT_EXTENSION, IgymWebSocketProtocol

    frame = msgpack.packb(
        {
            "type": "frame",
            "game_id": "g-0123456789",
            "tick": 12345,
            "episode": 1,
            "step": 1234,
            "t": 1763900000000.5,
            "key": False,
            "upd": [
                {"id": "car", "x": 301.25, "y": 210.5, "angle": -12.34},
                {"id": "wheel0", "x": 290.12, "y": 221.04},
                {"id": "wheel1", "x": 312.77, "y": 216.31},
            ],
            "hud": "Time left 12.3 s",
        }
    )
    groups: list[list] = [[] for _ in range(GROUPS)]
    counts = {"ticks": 0, "messages": 0}
    state = {"next": 0}

    def tick(index: int, due: float) -> None:
        loop = asyncio.get_running_loop()
        for channel in tuple(groups[index]):
            try:
                channel.write_binary(frame)
            except ConnectionError:
                groups[index].remove(channel)
            counts["ticks"] += 1
        loop.call_at(due + 1 / FPS, tick, index, due + 1 / FPS)

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    loop = asyncio.get_running_loop()
                    start = loop.time() + 0.1
                    for index in range(GROUPS):
                        due = start + index / (FPS * GROUPS)
                        loop.call_at(due, tick, index, due)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http":
            body = json.dumps(
                {"process_cpu_s": time.process_time(), "runtimes": {"server": {"ticks": counts["ticks"]}}}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        channel = scope["extensions"][DIRECT_EXTENSION]

        def receiver(data: bytes) -> bool:
            msgpack.unpackb(data)  # as the real server decodes every message
            counts["messages"] += 1
            return True

        event = await receive()  # hello, through ASGI
        msgpack.unpackb(event["bytes"])
        await send(
            {"type": "websocket.send", "bytes": msgpack.packb({"type": "game_status", "game_id": "g-1"})}
        )
        channel.receiver = receiver
        groups[state["next"] % GROUPS].append(channel)
        state["next"] += 1
        while (await receive())["type"] != "websocket.disconnect":
            pass

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws=IgymWebSocketProtocol,
        ws_per_message_deflate=False,
    )


def run(games: int, seconds: float) -> dict:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)],
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(HERE)},
    )
    try:
        # The stand-in has no /health; any 200 from it will do.
        wait_healthy_any(port, server)
        start_at = time.time() + 2.0 + games * 0.01
        window = (start_at + WARMUP_S, start_at + WARMUP_S + seconds)
        parent, child = mp.Pipe(duplex=False)
        loader = mp.Process(
            target=_load_main, args=(f"ws://127.0.0.1:{port}/ws", games, 1, start_at, window, child)
        )
        loader.start()
        time.sleep(max(0.0, window[0] - time.time()))
        before = get_stats(port)
        time.sleep(max(0.0, window[1] - time.time()))
        after = get_stats(port)
        results = parent.recv()
        loader.join(timeout=30)
    finally:
        stop_server(server)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError(f"{len(errors)} participants failed, e.g. {errors[0]}")
    ticks = after["runtimes"]["server"]["ticks"] - before["runtimes"]["server"]["ticks"]
    cpu = after["process_cpu_s"] - before["process_cpu_s"]
    fps = sorted(r["frames"] / seconds for r in results)
    return {"fps_median": statistics.median(fps), "us_per_tick": cpu / ticks * 1e6 if ticks else None}


def wait_healthy_any(port: int, proc: subprocess.Popen) -> None:
    wait_healthy(port, proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    runs = []
    for index in range(args.runs):
        point = run(args.games, args.seconds)
        runs.append(point)
        print(
            f"run {index + 1}: {args.games} games, fps median {point['fps_median']:.1f}, "
            f"{point['us_per_tick']:.1f} us of server CPU per game-tick (transport only)",
            flush=True,
        )
    floor = statistics.median(r["us_per_tick"] for r in runs)
    print(
        json.dumps(
            {
                "games": args.games,
                "fps_median": statistics.median(r["fps_median"] for r in runs),
                "floor_us_per_tick": round(floor, 1),
                "runs": [round(r["us_per_tick"], 1) for r in runs],
            }
        )
    )


if __name__ == "__main__":
    main()
