"""Server → client messages: typed, with one encoder.

Each message the server sends is an attrs class here with a ``type`` and a :meth:`wire` method that
gives the map the client reads, keys in a fixed order and optional parts left out when absent (the
bytes on the wire are what the client in ``frontend/`` and docs/protocol.md, docs/game-protocol.md
describe). :func:`encode` turns any of them (or a map that already has ``type``) into one msgpack
frame.

Frames are the one fast path: a game sends one per player per tick, so they are not built as
objects. :func:`frame_head` gives the fields every frame starts with and :func:`pack` (msgspec)
encodes them, byte for byte as :func:`encode` would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs
import msgpack
import msgspec

__all__ = [
    "Ack",
    "ErrorMessage",
    "GameStatus",
    "Pong",
    "Rejected",
    "RttProbe",
    "Saving",
    "SceneMessage",
    "ServerMessage",
    "Superseded",
    "WaitingRoom",
    "Welcome",
    "encode",
    "frame_head",
    "pack",
]

# Frames are msgpack maps of str, int, float, bool, bytes, lists and maps; msgspec writes them byte
# for byte as msgpack.packb(use_bin_type=True) does, at a third of the cost.
pack = msgspec.msgpack.Encoder().encode


class ServerMessage:
    """Base of the typed server → client messages."""

    __slots__ = ()
    type: ClassVar[str]

    def wire(self) -> dict[str, Any]:
        """The map sent to the client."""
        raise NotImplementedError


@attrs.frozen(kw_only=True)
class WaitingRoom:
    """The waiting room part of a ``matching`` game status."""

    count: int | None
    """Others waiting (None: the scene does not show the count)."""
    group_size: int
    waited_ms: int
    timeout_ms: int

    def wire(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "group_size": self.group_size,
            "waited_ms": self.waited_ms,
            "timeout_ms": self.timeout_ms,
        }


@attrs.frozen(kw_only=True)
class GameStatus(ServerMessage):
    """Where a participant's game is (docs/game-protocol.md, ``game_status``).

    The optional parts are sent only when set: ``pause_reason`` (phase ``paused``), ``players`` and
    ``notice`` (multiplayer games), ``waiting`` (phase ``matching``), ``final``/``outcome``/
    ``redirect_url`` (the study ended in this game scene).
    """

    type: ClassVar[str] = "game_status"
    game_id: str | None
    phase: str
    episode: int
    num_episodes: int
    seat: str | None
    message: str
    countdown_ms: int = 0
    pause_reason: str | None = None
    players: Sequence[Mapping[str, Any]] | None = None
    notice: str | None = None
    waiting: WaitingRoom | None = None
    final: bool = False
    outcome: str | None = None
    redirect_url: str | None = None
    way_back: Mapping[str, Any] | None = None
    """The recruitment platform's way back (``igym_core.recruitment.WayBack.wire()``), when final."""

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "game_status",
            "game_id": self.game_id,
            "phase": self.phase,
            "episode": self.episode,
            "num_episodes": self.num_episodes,
            "seat": self.seat,
            "message": self.message,
            "countdown_ms": self.countdown_ms,
        }
        if self.pause_reason is not None:
            out["pause_reason"] = self.pause_reason
        if self.players is not None:
            out["players"] = [dict(p) for p in self.players]
        if self.notice is not None:
            out["notice"] = self.notice
        if self.waiting is not None:
            out["waiting"] = self.waiting.wire()
        if self.final:
            out["final"] = True
        if self.outcome is not None:
            out["outcome"] = self.outcome
        if self.redirect_url is not None:
            out["redirect_url"] = self.redirect_url
        if self.way_back is not None:
            out["way_back"] = dict(self.way_back)
        return out


@attrs.frozen(kw_only=True)
class ErrorMessage(ServerMessage):
    """A message the server refused (``error``): ``code`` for programs, ``message`` for people,
    ``seq`` of the refused message (None if it had none or could not be read), and for a submission
    that came too early, when to try again."""

    type: ClassVar[str] = "error"
    code: str
    message: str
    seq: int | None = None
    retry_after_ms: int | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message, "seq": self.seq}
        if self.retry_after_ms is not None:
            out["retry_after_ms"] = self.retry_after_ms
        return out


@attrs.frozen(kw_only=True)
class RttProbe(ServerMessage):
    """Round-trip probe ``n`` of a game, sent at server time ``t`` (epoch ms); the page answers
    with ``rtt_echo``."""

    type: ClassVar[str] = "rtt_probe"
    game_id: str
    n: int
    t: float

    def wire(self) -> dict[str, Any]:
        return {"type": "rtt_probe", "game_id": self.game_id, "n": self.n, "t": self.t}


@attrs.frozen(kw_only=True)
class Pong(ServerMessage):
    """The answer to ``ping``: its ``seq`` and ``t``, and the server's clock (epoch ms)."""

    type: ClassVar[str] = "pong"
    seq: int
    t: float
    server_time: float

    def wire(self) -> dict[str, Any]:
        return {"type": "pong", "seq": self.seq, "t": self.t, "server_time": self.server_time}


@attrs.frozen(kw_only=True)
class Ack(ServerMessage):
    """Message ``seq`` (a draft or a submission) is stored."""

    type: ClassVar[str] = "ack"
    seq: int

    def wire(self) -> dict[str, Any]:
        return {"type": "ack", "seq": self.seq}


@attrs.frozen(kw_only=True)
class Welcome(ServerMessage):
    """The answer to ``hello``: the protocol version, the participant's token (kept by the page for
    a reload), their id, and whether they resumed an earlier session."""

    type: ClassVar[str] = "welcome"
    protocol: int
    token: str | None
    participant_id: str
    resumed: bool

    def wire(self) -> dict[str, Any]:
        return {
            "type": "welcome",
            "protocol": self.protocol,
            "token": self.token,
            "participant_id": self.participant_id,
            "resumed": self.resumed,
        }


@attrs.frozen(kw_only=True)
class Superseded(ServerMessage):
    """The study moved to another tab or window; this page stops (its socket closes with 4001)."""

    type: ClassVar[str] = "superseded"
    message: str

    def wire(self) -> dict[str, Any]:
        return {"type": "superseded", "message": self.message}


@attrs.frozen(kw_only=True)
class SceneMessage(ServerMessage):
    """The scene to show at ``position`` of ``total``: its client view, the participant's saved
    draft answers, and the scene's context for this participant."""

    type: ClassVar[str] = "scene"
    position: int
    total: int
    instance: int
    scene: Mapping[str, Any]
    draft: Mapping[str, Any]
    context: Any

    def wire(self) -> dict[str, Any]:
        return {
            "type": "scene",
            "position": self.position,
            "total": self.total,
            "instance": self.instance,
            "scene": self.scene,
            "draft": self.draft,
            "context": self.context,
        }


@attrs.frozen(kw_only=True)
class Rejected(ServerMessage):
    """A submission whose answers were refused: ``errors`` by question id, and a message. ``code``
    and ``unknown_count`` when it answered questions the step does not ask; ``error_count`` when
    ``errors`` shows only some of the errors."""

    type: ClassVar[str] = "rejected"
    seq: int
    position: int
    errors: Mapping[str, Any]
    message: str
    code: str | None = None
    unknown_count: int | None = None
    error_count: int | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "rejected"}
        if self.code is not None:
            out["code"] = self.code
        out["seq"] = self.seq
        out["position"] = self.position
        out["errors"] = self.errors
        if self.unknown_count is not None:
            out["unknown_count"] = self.unknown_count
        out["message"] = self.message
        if self.error_count is not None:
            out["error_count"] = self.error_count
        return out


@attrs.frozen(kw_only=True)
class Saving(ServerMessage):
    """The participant's records are being saved; the page waits at ``position``."""

    type: ClassVar[str] = "saving"
    position: int
    message: str

    def wire(self) -> dict[str, Any]:
        return {"type": "saving", "position": self.position, "message": self.message}


def frame_head(*, game_id: str, tick: int, episode: int, step: int, t: float) -> dict[str, Any]:
    """The fields every ``frame`` starts with (docs/game-protocol.md); the game adds ``key``,
    ``hud``, ``add`` (keyframes) or the delta fields, and ``image``, then :func:`pack`s it."""
    return {"type": "frame", "game_id": game_id, "tick": tick, "episode": episode, "step": step, "t": t}


def encode(message: ServerMessage | Mapping[str, Any]) -> bytes:
    """Encode one server → client message (a typed message, or a map with ``type``)."""
    if isinstance(message, ServerMessage):
        message = message.wire()
    return msgpack.packb(message, use_bin_type=True, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot encode {type(value).__name__}")
