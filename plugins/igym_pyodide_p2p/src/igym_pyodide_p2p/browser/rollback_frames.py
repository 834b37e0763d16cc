"""What the ``pyodide_p2p`` rollback engine (:mod:`igym_pyodide_p2p.browser.rollback`) drives and
reports: the :class:`Simulation` it steps, the :class:`ConfirmedFrame` it reports, and the automatic
input delay (:func:`auto_input_delay`). Pure Python, standard library only."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["ConfirmedFrame", "Simulation", "auto_input_delay"]


class Simulation(Protocol):
    """What the engine drives: one seat's copy of the game."""

    def save(self) -> Any:
        """The full game state now (a copy the engine may keep)."""

    def load(self, state: Any) -> None:
        """Restore a state :meth:`save` returned."""

    def advance(self, frame: int, inputs: Mapping[str, Any], now_ms: float | None) -> str | None:
        """Simulate ``frame`` with each seat's input (``None``: the seat's bot chooses). Returns the
        reason the episode ends at this frame (``terminated``/``truncated``/``max_steps``) or None."""

    def state_hash(self) -> str:
        """A hash of the full env state now."""

    def export_state(self, state: Any) -> Any:
        """A saved state as a JSON-able value (to send to the partner)."""

    def import_state(self, data: Any) -> Any:
        """A state :meth:`export_state` produced, back into a saved state (raises ``ValueError``)."""

    def check_input(self, value: Any) -> bool:
        """Whether a partner's input (decoded JSON) is one this seat can play."""


class ConfirmedFrame:
    """A confirmed frame, as :meth:`RollbackEngine.take_confirmed` reports it."""

    __slots__ = ("end_reason", "frame", "hash", "inputs", "predicted", "resimulated")

    def __init__(
        self,
        frame: int,
        inputs: dict[str, Any],
        predicted: Any,
        resimulated: int,
        end_reason: str | None,
        state_hash: str | None,
    ) -> None:
        self.frame = frame
        self.inputs = inputs
        """Seat → the input played (``None`` for a seat its bot played)."""
        self.predicted = predicted
        """What this peer first predicted for the partner's input (None if the real one came first)."""
        self.resimulated = resimulated
        """How many times this frame was simulated again after a rollback."""
        self.end_reason = end_reason
        self.hash = state_hash
        """The state hash at this frame, where one was taken (every ``hash_every`` and the last)."""

    def __repr__(self) -> str:
        return (
            f"ConfirmedFrame(frame={self.frame}, inputs={self.inputs}, predicted={self.predicted!r}, "
            f"resimulated={self.resimulated}, end_reason={self.end_reason!r}, hash={self.hash!r})"
        )


def auto_input_delay(rtt_ms: float | None, fps: int) -> int:
    """``clamp(ceil(rtt / 2 / frame_ms), 1, 4)``; 2 when no round trip was measured."""
    if rtt_ms is None:
        return 2
    frame_ms = 1000.0 / fps
    return max(1, min(4, math.ceil(rtt_ms / 2.0 / frame_ms)))
