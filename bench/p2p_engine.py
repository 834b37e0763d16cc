"""The ``pyodide_p2p`` rollback engine in CPython: two real ``P2PBrowserGame`` peers (Slime Volleyball)
over the seeded simulated link (``igym_pyodide_p2p.netsim``), in simulated time, with both players
changing keys like people do (a new held-key state every 80–400 ms, per peer).

For each network condition (one-way delay, jitter, loss; RTT = 2 × delay) it plays ``--seconds`` of
game per run with ``input_delay="auto"`` (from handshake pings; a last row forces 1) and prints per
peer-second: rollbacks, rollback depth p50/p99/max, resimulated frames, frames the peer waited
(window / partner), the input delay chosen, the measured RTT, desyncs, refused packets.

Then the cost of one resimulated slime frame in CPython: load a saved state and step + save + draw
nothing (what a rollback pays per frame), and the same with a state hash, as medians of many repeats.
(W measures the same in Pyodide.) Figures only: nothing here passes or fails.

Run: ``uv run python bench/p2p_engine.py`` (defaults: 60 s of game per condition, 3 runs).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from igym_pyodide_p2p.browser.p2p_game import P2PBrowserGame
from igym_pyodide_p2p.browser.spec import GameSpec
from igym_pyodide_p2p.netsim import FaultyLink, PeerPair

MAPPING = {"ArrowLeft": 1, "ArrowRight": 2, "ArrowUp": 3, "ArrowUp+ArrowLeft": 4, "ArrowUp+ArrowRight": 5}
KEYS: list[tuple[str, ...]] = [
    (),
    ("ArrowLeft",),
    ("ArrowRight",),
    ("ArrowUp",),
    ("ArrowUp", "ArrowLeft"),
    ("ArrowUp", "ArrowRight"),
]
#: (label, one-way delay ms, jitter ms, loss, input delay)
CONDITIONS: list[tuple[str, float, float, float, int | str]] = [
    ("60 ms RTT, 10 ms jitter, 2 % loss", 30.0, 10.0, 0.02, "auto"),
    ("150 ms RTT, 10 ms jitter, 2 % loss", 75.0, 10.0, 0.02, "auto"),
    ("150 ms RTT, 10 ms jitter, 2 % loss, input delay forced to 1", 75.0, 10.0, 0.02, 1),
]


def _spec(seat: str) -> GameSpec:
    return GameSpec.from_json(
        {
            "scene_id": "bench",
            "env_factory": "igym_slime.env:make_env",
            "env_kwargs": {"lives": 1000, "max_steps": 100_000},
            "render_fn": "igym_slime.render:draw",
            "hud": None,
            "agents": ["left", "right"],
            "human_seat": seat,
            "action_mapping": MAPPING,
            "default_action": 0,
            "fps": 30,
            "num_episodes": 1,
            "max_steps": 100_000,
            "bots": {},
            "action_spaces": {"left": [6, 0], "right": [6, 0]},
        }
    )


def _run(
    delay_ms: float, jitter_ms: float, loss: float, input_delay: int | str, seconds: float, seed: int
) -> dict[str, Any]:
    games = {
        "a": P2PBrowserGame(
            _spec("left"),
            game_id="bench",
            seat="left",
            partner_seat="right",
            authority=True,
            input_delay=input_delay,
        ),
        "b": P2PBrowserGame(
            _spec("right"),
            game_id="bench",
            seat="right",
            partner_seat="left",
            authority=False,
            input_delay=input_delay,
        ),
    }
    links = {
        name: FaultyLink(seed=seed * 2 + i, delay_ms=delay_ms, jitter_ms=jitter_ms, loss=loss)
        for i, name in enumerate(games)
    }
    targets = {"a": games["b"], "b": games["a"]}
    # Handshake: 10 pings each, 100 ms apart, before the episode.
    for t in range(0, 1000):
        if t % 100 == 0:
            for name, game in games.items():
                for data in game.handshake(float(t)):
                    links[name].send(data, float(t))
        for name, link in links.items():
            for data in link.deliver(float(t)):
                targets[name].receive(data, float(t))
    for game in games.values():
        game.start_episode(1, seed, max_steps=100_000, fps=30)
    rng = random.Random(seed)
    next_change = {"a": 0.0, "b": 0.0}

    def on_tick(name: str, game: Any, out: dict[str, Any], now_ms: float) -> None:
        if now_ms >= next_change[name]:
            game.set_held(rng.choice(KEYS))
            next_change[name] = now_ms + rng.uniform(80, 400)
        game.take_batch()

    pair = PeerPair(
        games["a"],
        games["b"],
        a_to_b=links["a"],
        b_to_a=links["b"],
        on_tick=on_tick,
    )
    pair.now = 1000.0
    pair.next_tick = {"a": 1000.0, "b": 1000.0 + rng.uniform(0, 30)}
    pair.run(until_ms=1000.0 + seconds * 1000.0)
    depths: list[int] = []
    for game in games.values():
        for depth, count in game.stats["depth_histogram"].items():
            depths.extend([depth] * count)
    depths.sort()

    def pct(p: float) -> float:
        return depths[min(len(depths) - 1, int(p * len(depths)))] if depths else 0

    both = [g.stats for g in games.values()]
    peer_seconds = 2 * seconds
    return {
        "rollbacks/s": sum(s["rollbacks"] for s in both) / peer_seconds,
        "depth p50": pct(0.5),
        "depth p99": pct(0.99),
        "depth max": max(s["max_depth"] for s in both),
        "resim frames/s": sum(s["resimulated_frames"] for s in both) / peer_seconds,
        "waits/s": sum(s["waits"] for s in both) / peer_seconds,
        "window waits/s": sum(s["waits_window"] for s in both) / peer_seconds,
        "input delay": sorted({g.input_delay for g in games.values()}),
        "rtt ms": round(statistics.median(g.rtt_ms or 0.0 for g in games.values()), 1),
        "desyncs": sum(s["desyncs_detected"] for s in both),
        "refused": sum(s["packets_refused"] for s in both),
        "frames": min(g.engine.confirmed for g in games.values()),
    }


def _resim_cost(repeats: int) -> dict[str, float]:
    game = P2PBrowserGame(_spec("left"), game_id="cost", seat="left", partner_seat="right", authority=True)
    game.start_episode(1, 3, fps=30)
    inputs = {"left": [2, 1, ["ArrowRight"]], "right": [4, 1, ["ArrowUp", "ArrowLeft"]]}
    for frame in range(1, 60):
        game.advance(frame, inputs, None)
    saved = game.save()
    per_frame: list[float] = []
    with_hash: list[float] = []
    frames = 8
    for _ in range(repeats):
        started = time.perf_counter()
        game.load(saved)
        for frame in range(60, 60 + frames):
            game.advance(frame, inputs, None)
            game.save()
        per_frame.append((time.perf_counter() - started) / frames * 1e6)
        started = time.perf_counter()
        game.load(saved)
        for frame in range(60, 60 + frames):
            game.advance(frame, inputs, None)
            game.save()
            game.state_hash()
        with_hash.append((time.perf_counter() - started) / frames * 1e6)
    return {
        "load+advance+save us/frame": statistics.median(per_frame),
        "with a state hash us/frame": statistics.median(with_hash),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="game seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2000, help="repeats of the resimulation timing")
    args = parser.parse_args(argv)
    python = sys.version.split()[0]
    print(f"# p2p_engine: {args.runs} runs x {args.seconds:g} s of slime per condition (medians)")
    print(f"# python {python}")
    for label, delay, jitter, loss, input_delay in CONDITIONS:
        runs = [
            _run(delay, jitter, loss, input_delay, args.seconds, seed) for seed in range(1, args.runs + 1)
        ]
        summary: dict[str, Any] = {}
        for key in runs[0]:
            values = [r[key] for r in runs]
            summary[key] = values[0] if isinstance(values[0], list) else round(statistics.median(values), 2)
        print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    cost = _resim_cost(args.repeats)
    print("resimulated slime frame (CPython): " + ", ".join(f"{k} {v:.1f}" for k, v in cost.items()))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    raise SystemExit(main())
