"""The messages between a ``pyodide`` game's page and the server (Contract 4 of issue 18).

Decoded by the core like its own messages (``Runtime.messages``); each ``decode`` checks what the
core needs to route the message (its ``game_id``) and its own fields. A ``step_batch`` is checked in
full by the game (``ingest.py``), so that a refused batch is recorded as rejected and answered with
``bad_batch`` instead of being dropped by the decoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import msgpack

from igym_core.errors import ProtocolError
from igym_core.protocol.server_messages import ServerMessage
from igym_core.runtime.interface import RuntimeMessage
from igym_pyodide_p2p.ingest import BatchWire

__all__ = [
    "BatchAck",
    "EpisodeDone",
    "PyodideEpisode",
    "RuntimeLoadFailed",
    "RuntimeLoaded",
    "StepBatchMessage",
    "count_field",
    "game_id_field",
]

_MAX_GAME_ID = 64
_MAX_TEXT = 500
STAGES = ("runtime", "packages", "env", "model")
END_REASONS = ("terminated", "truncated", "max_steps")


def game_id_field(data: Mapping[str, Any]) -> str:
    """A message's ``game_id`` (both runtimes' page messages carry one); else a ``bad_message`` error."""
    value = data.get("game_id")
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_GAME_ID:
        raise ProtocolError("bad_message", f"'game_id' must be a string of 1 to {_MAX_GAME_ID} characters")
    return value


def count_field(data: Mapping[str, Any], key: str) -> int:
    """A whole number from 0 at ``key`` of a page message; else a ``bad_message`` error."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**53:
        raise ProtocolError("bad_message", f"'{key}' must be a whole number from 0, got {value!r:.40}")
    return value


def _ms(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 86_400_000:
        raise ProtocolError("bad_message", f"'{key}' must be milliseconds (0 to a day), got {value!r:.40}")
    return float(value)


def _text(data: Mapping[str, Any], key: str, limit: int = _MAX_TEXT) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ProtocolError("bad_message", f"'{key}' must be a string")
    return value[:limit]


@attrs.frozen
class RuntimeLoaded(RuntimeMessage):
    """The page has loaded Pyodide, the packages, the env and the bots: it can play."""

    type: ClassVar[str] = "runtime_loaded"
    game_id: str
    ms: float
    stages: dict[str, float]

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> RuntimeLoaded:
        stages = data.get("stages", {})
        if not isinstance(stages, dict):
            raise ProtocolError("bad_message", "'stages' must be a map of stage_ms names to milliseconds")
        known = {f"{stage}_ms" for stage in STAGES}
        checked = {}
        for name, value in stages.items():
            if name not in known:
                raise ProtocolError("bad_message", f"'stages' has {name!r:.40}; stages are {sorted(known)}")
            checked[name] = _ms(value, f"stages.{name}")
        return cls(game_id=game_id_field(data), ms=_ms(data.get("ms"), "ms"), stages=checked)


@attrs.frozen
class RuntimeLoadFailed(RuntimeMessage):
    """The page could not load the game (``stage``: runtime, packages, env or model)."""

    type: ClassVar[str] = "runtime_load_failed"
    game_id: str
    stage: str
    message: str

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> RuntimeLoadFailed:
        stage = _text(data, "stage", 32)
        if stage not in STAGES:
            raise ProtocolError("bad_message", f"'stage' must be one of {list(STAGES)}, got {stage!r}")
        return cls(game_id=game_id_field(data), stage=stage, message=_text(data, "message"))


@attrs.frozen
class StepBatchMessage(RuntimeMessage):
    """Step records, checked by the game (see ``ingest.py``). A frame of the right shape arrives
    decoded (``batch``: its :class:`~igym_pyodide_p2p.ingest.BatchWire`, ``frame`` its bytes); any
    other comes as the map the page sent (``raw``). ``data`` is the whole message as a map either way."""

    type: ClassVar[str] = "step_batch"
    wire: ClassVar[type[Any] | None] = BatchWire
    game_id: str
    raw: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    batch: BatchWire | None = attrs.field(default=None, repr=False)
    frame: bytes | None = attrs.field(default=None, repr=False)

    @property
    def data(self) -> Mapping[str, Any]:
        """The message as the page sent it (unpacked from ``frame`` when it came decoded)."""
        if self.raw is not None:
            return self.raw
        return msgpack.unpackb(self.frame or b"\x80", raw=False, strict_map_key=False)

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> StepBatchMessage:
        return cls(game_id=game_id_field(data), raw=data)

    @classmethod
    def from_wire(cls, wire: BatchWire, frame: bytes) -> StepBatchMessage:
        return cls(game_id=wire.game_id, batch=wire, frame=frame)


@attrs.frozen
class EpisodeDone(RuntimeMessage):
    """The page's episode is over after ``steps`` steps; its last batch went before this."""

    type: ClassVar[str] = "episode_done"
    game_id: str
    episode: int
    steps: int
    end_reason: str

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> EpisodeDone:
        reason = _text(data, "end_reason", 32)
        if reason not in END_REASONS:
            raise ProtocolError(
                "bad_message", f"'end_reason' must be one of {list(END_REASONS)}, got {reason!r}"
            )
        return cls(
            game_id=game_id_field(data),
            episode=count_field(data, "episode"),
            steps=count_field(data, "steps"),
            end_reason=reason,
        )


# --- server → page ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PyodideEpisode(ServerMessage):
    """Play ``episode`` with ``seed``: its first frame shows now, stepping starts ``start_in_ms``
    later (the scene's countdown; 0: at once). ``next_batch`` is the batch number the server
    expects next (a reloaded page numbers its batches on from it)."""

    type: ClassVar[str] = "pyodide_episode"
    game_id: str
    episode: int
    seed: int
    num_episodes: int
    max_steps: int | None
    fps: int
    next_batch: int
    start_in_ms: int = 0

    def wire(self) -> dict[str, Any]:
        out = {
            "type": self.type,
            "game_id": self.game_id,
            "episode": self.episode,
            "seed": self.seed,
            "num_episodes": self.num_episodes,
            "max_steps": self.max_steps,
            "fps": self.fps,
            "next_batch": self.next_batch,
        }
        if self.start_in_ms:
            out["start_in_ms"] = self.start_in_ms
        return out


@attrs.frozen(kw_only=True)
class BatchAck(ServerMessage):
    """Every step batch of the game up to number ``batch`` is stored (one acknowledgement may cover
    several batches; see ``PyodideOptions.ack_interval_ms``)."""

    type: ClassVar[str] = "batch_ack"
    game_id: str
    batch: int

    def wire(self) -> dict[str, Any]:
        return {"type": self.type, "game_id": self.game_id, "batch": self.batch}
