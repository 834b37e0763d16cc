"""A Unity episode's score computed on the server from its recorded bridge events.

A ``UnityScene`` with ``score_episode`` never trusts what the game claims: when the game reports an
episode ended, the server calls ``score_episode(episode: EpisodeEvents)`` with the server's own copies
of the episode's bridge events (the ones written to ``unity_events``, with server timestamps) and
records what it returns::

    def score_maze(episode: EpisodeEvents) -> dict:
        coins = sum(1 for e in episode.events if e.event == "log" and e.value == {"coin": 1})
        return {"score": coins, "bonus": 0.05 * coins, "coins": coins}

The value is a mapping: ``score`` (a finite number, 0 when left out), ``bonus`` (a finite number,
0 when left out), and any other string keys with JSON values, recorded as they are. None counts as
``{}``. A callback that raises, or returns anything else, scores the episode 0; the error is recorded
in the episode's row and logged, and the game goes on.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from igym_core.runtime.interface import GameInfo

__all__ = ["BridgeEvent", "EpisodeEvents", "EpisodeScore", "check_score_callback", "episode_score_from"]

#: An error text in a record is cut to this many characters.
MAX_ERROR_CHARS = 500


@attrs.frozen(kw_only=True)
class BridgeEvent:
    """One recorded bridge call of an episode, as the server received (or sent) it."""

    event: str
    """``episode_started``, ``episode_ended``, ``log``, ``send_message`` (the server's ``SendMessage``)."""
    payload: str
    """The JSON text as the game passed it (or the server sent it)."""
    value: Any
    """``payload`` parsed (None for an empty payload)."""
    server_time_ms: float
    """When the server received it (Unix time, ms): the time to trust."""
    client_time_ms: float | None
    """The page's own clock at the call (None for ``send_message``): claimed, not trusted."""


@attrs.frozen(kw_only=True)
class EpisodeEvents:
    """What ``score_episode`` is given: one ended episode and every bridge event recorded in it."""

    game: GameInfo
    episode: int
    participant_id: str
    events: tuple[BridgeEvent, ...]
    """In the order the server recorded them, from ``episode_started`` to ``episode_ended``."""
    duration_ms: int
    """From the server's receipt of ``episode_started`` to that of ``episode_ended``."""


@attrs.frozen(kw_only=True)
class EpisodeScore:
    """What the server records of a ``score_episode`` call."""

    score: float = 0.0
    bonus: float = 0.0
    fields: Mapping[str, Any] = attrs.field(factory=dict)
    """The value's other keys."""
    error: str | None = None
    """Why the callback's value could not be used (it raised, or returned a wrong type); None if it could."""


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"its {name!r} must be a finite number; got {value!r}")
    return float(value)


def episode_score_from(value: Any) -> EpisodeScore:
    """The callback's value as an :class:`EpisodeScore`; ``ValueError`` says what is wrong with it."""
    if value is None:
        return EpisodeScore()
    if not isinstance(value, Mapping):
        raise ValueError(
            f"expected a dict such as {{'score': 3, 'bonus': 0.25}} (or None); got {type(value).__name__} "
            f"{str(value)[:80]!r}"
        )
    bad_keys = [k for k in value if not isinstance(k, str)]
    if bad_keys:
        raise ValueError(f"its keys must be strings; got {bad_keys[:3]!r}")
    score = _finite("score", value["score"]) if "score" in value else 0.0
    bonus = _finite("bonus", value["bonus"]) if "bonus" in value else 0.0
    fields = {k: v for k, v in value.items() if k not in ("score", "bonus")}
    try:
        fields = json.loads(json.dumps(fields, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"its other values must be JSON (strings, numbers, lists, dicts): {exc}") from None
    return EpisodeScore(score=score, bonus=bonus, fields=fields)


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def check_score_callback(callback: Callable[..., Any]) -> str | None:
    """What ``igym check`` can tell without calling it: None if ``callback(episode)`` binds."""
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return None
    try:
        signature.bind(object())
    except TypeError as exc:
        return (
            f"score_episode is called with one argument (the episode's EpisodeEvents), but "
            f"{getattr(callback, '__qualname__', callback)!r}{signature} cannot take it ({exc}); "
            "define it as 'def score(episode): ...'."
        )
    return None
