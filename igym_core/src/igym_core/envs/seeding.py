"""Seeds derived from the experiment's seed, stable across processes, machines and Python versions.

Every seed is the first four bytes of a SHA-256 digest of a canonical JSON list (a purpose tag and
the parts), masked to 31 bits so that any library accepts it (``numpy``, ``random``, Gymnasium
spaces, ONNX runtimes, JavaScript). ``hash()`` is never used: it is salted per process for strings.

Changing the canonical form changes every recorded seed, so the tags carry a version (``v1``).
"""

from __future__ import annotations

import hashlib
import json
import numbers

__all__ = ["MAX_SEED", "agent_seed", "derive_seed", "episode_seed", "game_seed"]

#: The largest seed these functions return (seeds are in ``[0, MAX_SEED]``).
MAX_SEED = 2**31 - 1


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {type(value).__name__} {value!r}.")
    return int(value)


def derive_seed(purpose: str, *parts: int | str) -> int:
    """A seed in ``[0, MAX_SEED]`` determined by ``purpose`` and ``parts`` (ints and strings only).

    Different purposes give unrelated seeds for the same parts, so that, say, the bot in a seat and
    the environment never share a random stream by accident.
    """
    canonical: list[int | str] = [f"igym/{purpose}/v1"]
    for index, part in enumerate(parts):
        if isinstance(part, str):
            canonical.append(part)
        else:
            canonical.append(_check_int(f"part {index} of the {purpose} seed", part))
    text = json.dumps(canonical, ensure_ascii=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("ascii")).digest()
    return int.from_bytes(digest[:4], "big") & MAX_SEED


def game_seed(experiment_seed: int, game_key: str) -> int:
    """The seed of one game (one group of seats playing one game scene), before any episode."""
    if not isinstance(game_key, str):
        raise TypeError(f"game_key must be a string; got {type(game_key).__name__} {game_key!r}.")
    return derive_seed("game", _check_int("experiment_seed", experiment_seed), game_key)


def episode_seed(experiment_seed: int, game_key: str, episode: int) -> int:
    """The seed passed to ``env.reset(seed=...)`` for episode ``episode`` (0-based) of one game.

    ``game_key`` names the game stably (for example ``"<scene_id>/<match_id>"``); the same experiment
    seed, key and episode always give the same seed, on any machine.
    """
    if not isinstance(game_key, str):
        raise TypeError(f"game_key must be a string; got {type(game_key).__name__} {game_key!r}.")
    episode = _check_int("episode", episode)
    if episode < 0:
        raise ValueError(f"episode must be 0 or more; got {episode}.")
    return derive_seed("episode", _check_int("experiment_seed", experiment_seed), game_key, episode)


def agent_seed(episode_seed: int, agent: str) -> int:
    """The seed of the bot in seat ``agent`` for one episode (passed to ``policy.reset(seed=...)``)."""
    if not isinstance(agent, str):
        raise TypeError(f"agent must be a string; got {type(agent).__name__} {agent!r}.")
    return derive_seed("agent", _check_int("episode_seed", episode_seed), agent)
