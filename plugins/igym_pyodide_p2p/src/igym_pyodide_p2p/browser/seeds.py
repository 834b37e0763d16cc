"""``igym_core.envs.agent_seed`` for the browser.

``igym_core.envs`` cannot be imported in the browser (its package ``__init__`` pulls in Gymnasium and
the config converter), so the one derivation the browser needs is here: the seed of the bot in
seat ``agent`` for an episode, as the server runtime passes it to ``policy.reset(seed=...)``. The
tests compare it with ``igym_core.envs.agent_seed`` on many inputs.
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["agent_seed"]

_MAX_SEED = 2**31 - 1


def agent_seed(episode_seed: int, agent: str) -> int:
    """The seed of the bot in seat ``agent`` for the episode whose env seed is ``episode_seed``."""
    if isinstance(episode_seed, bool) or not isinstance(episode_seed, int):
        raise TypeError(f"episode_seed must be an integer; got {episode_seed!r}.")
    if not isinstance(agent, str):
        raise TypeError(f"agent must be a string; got {agent!r}.")
    text = json.dumps(["igym/agent/v1", episode_seed, agent], ensure_ascii=True, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode("ascii")).digest()[:4], "big") & _MAX_SEED
