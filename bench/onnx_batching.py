"""What one ONNX bot costs per server tick, evaluated one by one (``act``) or in one batched call.

Run: ``uv run --frozen python bench/onnx_batching.py [--obs 16] [--hidden 64,64] [--actions 6]``.
Prints a table, then one JSON line with the figures for 100 bots.

Each "tick" asks every bot for an action on its own observation: unbatched, each policy's ``act``
(one onnxruntime call per bot, as a runtime without batching does); batched, one
``batcher.act_batch`` for all of them (what the server runtime does for bots sharing a model across
the games ticking at the same instant). Both include preprocessing and action selection. The model
is an MLP with random weights built with ``onnx.helper`` (``igym_onnx.testing``), one onnxruntime
thread; a recurrent model (state in → state out) is measured too. Times are medians of several
runs; nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium
import numpy as np
import onnxruntime

from igym_core.logging import configure_logging
from igym_onnx import OnnxPolicy
from igym_onnx.policy import OnnxActor, OnnxPolicyLoader
from igym_onnx.testing import mlp_model, recurrent_model, save_model

BOT_COUNTS = (1, 10, 100)
RUNS = 21


def median_us(run: Callable[[], object], *, runs: int = RUNS, min_time_s: float = 0.02) -> float:
    """Median over ``runs`` of the mean time of one call, each run repeating it for ``min_time_s``."""
    run()  # warm-up (first-call allocations)
    repeat = 1
    while True:
        start = time.perf_counter()
        for _ in range(repeat):
            run()
        if time.perf_counter() - start >= min_time_s / 4:
            break
        repeat *= 2
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(repeat):
            run()
        samples.append((time.perf_counter() - start) / repeat * 1e6)
    return statistics.median(samples)


def bots(path: Path, count: int, obs: int, actions: int) -> list[OnnxActor]:
    out = []
    for i in range(count):
        policy = OnnxPolicyLoader().load(
            OnnxPolicy(path=str(path)),
            agent=f"bot_{i}",
            action_space=gymnasium.spaces.Discrete(actions),
            observation_space=gymnasium.spaces.Box(-1, 1, shape=(obs,), dtype=np.float32),
            base_dir=None,
        )
        assert isinstance(policy, OnnxActor)
        policy.reset(seed=i)
        out.append(policy)
    return out


def measure(path: Path, count: int, obs: int, actions: int) -> tuple[float, float]:
    """(unbatched, batched) µs per bot per tick."""
    policies = bots(path, count, obs, actions)
    batcher = policies[0].batcher
    assert batcher is not None and all(p.batcher is batcher for p in policies)
    rng = np.random.default_rng(count)
    observations = [rng.uniform(-1, 1, size=obs).astype(np.float32) for _ in range(count)]
    pairs = list(zip(policies, observations, strict=True))

    def unbatched() -> None:
        for policy, observation in pairs:
            policy.act(observation)

    def batched() -> None:
        batcher.act_batch(policies, observations)

    return median_us(unbatched) / count, median_us(batched) / count


def main() -> None:
    configure_logging("console", "warning")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--obs", type=int, default=16, help="observation size (default 16)")
    parser.add_argument("--hidden", default="64,64", help="hidden layer sizes (default 64,64)")
    parser.add_argument("--actions", type=int, default=6, help="number of actions (default 6)")
    args = parser.parse_args()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        mlp = save_model(mlp_model(args.obs, args.actions, hidden=hidden, seed=0), Path(tmp) / "mlp.onnx")
        rnn = save_model(recurrent_model(args.obs, hidden[0], args.actions, seed=0), Path(tmp) / "rnn.onnx")
        rows = []
        figures: dict[str, object] = {}
        for name, path in (("mlp", mlp), ("recurrent", rnn)):
            for count in BOT_COUNTS:
                unbatched, batched = measure(path, count, args.obs, args.actions)
                rows.append((name, count, unbatched, batched))
                if count == 100:
                    figures[name] = (unbatched, batched)

    layers = "-".join(str(n) for n in (args.obs, *hidden, args.actions))
    print(
        f"onnxruntime {onnxruntime.__version__}, one thread; MLP {layers}, recurrent {args.obs}-{hidden[0]}"
        f"(state)-{args.actions}; µs per bot per tick (median of {RUNS} runs)"
    )
    print(f"{'model':10} {'bots':>5} {'unbatched':>10} {'batched':>10} {'speed-up':>9}")
    for name, count, unbatched, batched in rows:
        print(f"{name:10} {count:5d} {unbatched:10.2f} {batched:10.2f} {unbatched / batched:8.1f}x")
    mlp_unbatched, mlp_batched = figures["mlp"]  # type: ignore[misc]
    rnn_unbatched, rnn_batched = figures["recurrent"]  # type: ignore[misc]
    print(
        json.dumps(
            {
                "bots": 100,
                "model": f"mlp {layers}",
                "unbatched_us_per_bot": round(mlp_unbatched, 2),
                "batched_us_per_bot": round(mlp_batched, 2),
                "recurrent_unbatched_us_per_bot": round(rnn_unbatched, 2),
                "recurrent_batched_us_per_bot": round(rnn_batched, 2),
                "onnxruntime": onnxruntime.__version__,
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
