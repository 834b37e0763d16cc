"""GGPO's / GGRS's SyncTest for a rollback :class:`~igym_pyodide_p2p.browser.rollback.Simulation`:
:func:`sync_test`. Pure Python, standard library only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from igym_pyodide_p2p.browser.rollback_packets import EngineError, is_int

if TYPE_CHECKING:
    from igym_pyodide_p2p.browser.rollback_frames import Simulation

__all__ = ["sync_test"]


def sync_test(
    simulation: Simulation, inputs: list[dict[str, Any]], *, depth: int
) -> list[tuple[int, str, str]]:
    """GGPO's / GGRS's SyncTest: play ``inputs`` (frame ``f`` gets ``inputs[f - 1]``), and at every
    frame load the state ``depth`` frames back and simulate those frames again with the same inputs;
    every frame's hash must equal its first run's. Returns the mismatches ``(frame, first hash,
    hash after the rollback)`` (empty: the simulation is deterministic under rollback). An env that
    keeps part of its state outside ``get_state`` (a global random generator, a module counter)
    fails it. The simulation must be at frame 0 (just reset)."""
    if not is_int(depth) or depth < 1:
        raise EngineError(f"depth must be a whole number of at least 1; got {depth!r}.")
    states = {0: simulation.save()}
    first: dict[int, str] = {}
    mismatches: list[tuple[int, str, str]] = []
    for frame in range(1, len(inputs) + 1):
        end = simulation.advance(frame, inputs[frame - 1], None)
        states[frame] = simulation.save()
        first[frame] = simulation.state_hash()
        if frame > depth:
            simulation.load(states[frame - depth])
            for again in range(frame - depth + 1, frame + 1):
                simulation.advance(again, inputs[again - 1], None)
                states[again] = simulation.save()
                rehash = simulation.state_hash()
                if rehash != first[again]:
                    mismatches.append((again, first[again], rehash))
        states.pop(frame - depth - 1, None)
        if end is not None:
            break
    return mismatches
