"""What an honest page of a ``pyodide`` game reports, made under CPython (for the server's tests).

It plays the scene's env as the browser would (seeded by the server's seed, random keys for the
participant, a random bot), and produces the ``step_batch`` steps and state hashes of Contract 4.
"""

from __future__ import annotations

import random
import time
from typing import Any

from igym_slime.env import make_env

KEYS = {
    0: [],
    1: ["ArrowLeft"],
    2: ["ArrowRight"],
    3: ["ArrowUp"],
    4: ["ArrowUp", "ArrowLeft"],
    5: ["ArrowUp", "ArrowRight"],
}


def play_episode(
    seed: int,
    *,
    max_steps: int = 90,
    hash_every: int = 30,
    rng_seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """The steps and ``[step, hash]`` pairs of one honest episode of the test study's slime game."""
    env = make_env(**(env_kwargs or {"lives": 2, "max_steps": 90}))
    rng = random.Random(rng_seed)
    env.reset(seed=seed)
    hashes: list[list[Any]] = [[0, str(env.state_hash())]]
    steps: list[dict[str, Any]] = []
    for n in range(1, max_steps + 1):
        human = rng.randrange(6)
        bot = rng.randrange(6)
        _obs, rewards, terminated, truncated, _infos = env.step({"left": human, "right": bot})
        steps.append(
            {
                "step": n,
                "t_ms": round(time.time() * 1000, 1),
                "actions": {"left": human, "right": bot},
                "sources": {"left": "human" if human else "default", "right": "bot"},
                "keys": {"left": KEYS[human]},
                "rewards": {a: float(rewards[a]) for a in ("left", "right")},
                "terminated": {a: bool(terminated[a]) for a in ("left", "right")},
                "truncated": {a: bool(truncated[a]) for a in ("left", "right")},
                "infos": None,
            }
        )
        done = all(terminated[a] or truncated[a] for a in ("left", "right"))
        if done or n == max_steps or n % hash_every == 0:
            hashes.append([n, str(env.state_hash())])
        if done:
            break
    return steps, hashes


def batches(
    game_id: str,
    episode: int,
    steps: list[dict[str, Any]],
    hashes: list[list[Any]],
    *,
    first_batch: int,
    size: int = 15,
) -> list[dict[str, Any]]:
    """``step_batch`` messages of ``size`` steps, numbered from ``first_batch``."""
    out = []
    for index in range(0, len(steps), size):
        chunk = steps[index : index + size]
        low, high = (0 if index == 0 else chunk[0]["step"]), chunk[-1]["step"]
        out.append(
            {
                "type": "step_batch",
                "game_id": game_id,
                "batch": first_batch + len(out),
                "episode": episode,
                "first_step": chunk[0]["step"],
                "steps": chunk,
                "hashes": [h for h in hashes if low <= h[0] <= high],
            }
        )
    return out
