"""The messages between a Unity scene's page and the server.

Page → server (decoded by the core like its own messages, through ``UnityRuntime.messages``):

- ``unity_loaded`` ``{game_id, ms}``: ``createUnityInstance`` resolved;
- ``unity_load_failed`` ``{game_id, stage, message}``: the page could not load the build (recorded at
  once; the participant is shown the way out);
- ``unity_way_out`` ``{game_id}``: the participant chose the way out after a failed or timed-out load;
- ``unity_event`` ``{game_id, event, payload, t}``: a bridge call from the game (``Igym.EpisodeStarted``
  → ``episode_started``, ``Igym.EpisodeEnded`` → ``episode_ended``, ``Igym.Log`` → ``log``) with its
  JSON text exactly as the game passed it and the page's clock (``Date.now()``) when it was called.

Each ``decode`` checks types and hard bounds; the game checks the scene's own limits (payload size,
rate, JSON) so that a refusal is recorded.

Server → page: ``game_status`` (with ``episodes_done`` and ``score``) and ``unity_send``
``{game_id, object, method, value}``: call ``SendMessage(object, method, value)`` (``value`` a JSON text);
``unity_load_timeout`` ``{game_id}``: ``load_timeout_s`` passed before the build loaded: show the failure
message and the way out (and drop the build if it loads later).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from igym_core.errors import ProtocolError
from igym_core.runtime.interface import RuntimeMessage

__all__ = ["BRIDGE_EVENTS", "LOAD_STAGES", "UnityEvent", "UnityLoadFailed", "UnityLoaded", "UnityWayOut"]

_MAX_GAME_ID = 64
_MAX_TEXT = 500
#: A payload longer than this is refused by the decoder whatever the scene allows (the socket's
#: frame limit, ``IGYM_MAX_MESSAGE_BYTES``, is lower still by default).
HARD_MAX_PAYLOAD_CHARS = 1_000_000
#: The bridge calls a game can make (``Igym.jslib``), as the page names them.
BRIDGE_EVENTS = ("episode_started", "episode_ended", "log")
#: Where a page's load can fail.
LOAD_STAGES = ("screen", "webgl", "loader", "instance", "other")


def _game_id(data: Mapping[str, Any]) -> str:
    value = data.get("game_id")
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_GAME_ID:
        raise ProtocolError("bad_message", f"'game_id' must be a string of 1 to {_MAX_GAME_ID} characters")
    return value


def _ms(data: Mapping[str, Any], key: str, high: float) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        raise ProtocolError("bad_message", f"'{key}' must be a number from 0 to {high:g}, got {value!r:.40}")
    return float(value)


def _only(data: Mapping[str, Any], keys: set[str], type_: str) -> None:
    extra = sorted(str(k)[:40] for k in data if k not in keys)
    if extra:
        raise ProtocolError("bad_message", f"{type_!r} takes no {', '.join(extra[:3])!s}")


@attrs.frozen
class UnityLoaded(RuntimeMessage):
    """The page has created the Unity instance: the game is running."""

    type: ClassVar[str] = "unity_loaded"
    game_id: str
    ms: float

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> UnityLoaded:
        _only(data, {"type", "game_id", "ms"}, cls.type)
        return cls(game_id=_game_id(data), ms=_ms(data, "ms", 86_400_000))


@attrs.frozen
class UnityLoadFailed(RuntimeMessage):
    """The page could not load the build (``stage`` says where; ``message`` what the browser said)."""

    type: ClassVar[str] = "unity_load_failed"
    game_id: str
    stage: str
    message: str

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> UnityLoadFailed:
        _only(data, {"type", "game_id", "stage", "message"}, cls.type)
        stage = data.get("stage")
        if stage not in LOAD_STAGES:
            raise ProtocolError("bad_message", f"'stage' must be one of {', '.join(LOAD_STAGES)}")
        message = data.get("message")
        if not isinstance(message, str):
            raise ProtocolError("bad_message", "'message' must be a string")
        return cls(game_id=_game_id(data), stage=stage, message=message[:_MAX_TEXT])


@attrs.frozen
class UnityEvent(RuntimeMessage):
    """One bridge call of the game: ``event`` with its JSON ``payload`` text, at page time ``t`` (ms)."""

    type: ClassVar[str] = "unity_event"
    game_id: str
    event: str
    payload: str
    t: float

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> UnityEvent:
        _only(data, {"type", "game_id", "event", "payload", "t"}, cls.type)
        event = data.get("event")
        if event not in BRIDGE_EVENTS:
            raise ProtocolError("bad_message", f"'event' must be one of {', '.join(BRIDGE_EVENTS)}")
        payload = data.get("payload")
        if not isinstance(payload, str):
            raise ProtocolError("bad_message", "'payload' must be the JSON text the game passed, as a string")
        if len(payload) > HARD_MAX_PAYLOAD_CHARS:
            raise ProtocolError(
                "bad_message", f"'payload' is longer than {HARD_MAX_PAYLOAD_CHARS} characters"
            )
        return cls(game_id=_game_id(data), event=event, payload=payload, t=_ms(data, "t", 2**53))


@attrs.frozen
class UnityWayOut(RuntimeMessage):
    """The participant clicked the way out the page shows after a failed load."""

    type: ClassVar[str] = "unity_way_out"
    game_id: str

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> UnityWayOut:
        _only(data, {"type", "game_id"}, cls.type)
        return cls(game_id=_game_id(data))
