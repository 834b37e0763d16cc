"""The Python that runs in the participant's browser (under Pyodide) for the ``pyodide`` and
``pyodide_p2p`` runtimes.

It runs under CPython too (the parity tests step it next to the server runtime). It imports only
the standard library, ``attrs`` and the lean part of ``igym_core`` listed in :data:`CORE_MODULES`
(the browser build of ``igym_core`` ships exactly those, with empty package ``__init__`` files),
plus the researcher's env module and whatever that imports.

- :mod:`.spec`: what the server tells the browser about a game scene (:class:`GameSpec`).
- :mod:`.stepper`: one participant's game (:class:`BrowserGame`): episodes from the server's
  seeds, keys to actions as the server runtime maps them, bots, steps, frames, HUD, state
  hashes and the numbered step batches of the wire protocol.
- :mod:`.rollback`: the ``pyodide_p2p`` runtime's rollback engine (:class:`RollbackEngine`): input
  delay, prediction, rollback, the prediction window, time sync, the peer-to-peer packets, desync
  detection and repair, disconnect timers; env-agnostic, standard library only. Its parts:
  :mod:`.rollback_wire` (packets, the partner's inputs), :mod:`.rollback_clock` (round trip, time
  sync, disconnect timers), :mod:`.rollback_recovery` (desyncs, a partner who left, reloads),
  :mod:`.rollback_frames` (the :class:`Simulation` it drives, the frames it reports). Its packets'
  limits, encoding and state-free checks are :mod:`.rollback_packets`; GGPO's SyncTest is
  :mod:`.rollback_sync`.
- :mod:`.p2p_game`: one peer's P2P game (:class:`P2PBrowserGame`): :class:`BrowserGame`'s keys,
  frames and batches with the env stepped by the rollback engine (confirmed frames only).
- :mod:`.rng`: NumPy's seeded ``Discrete`` sampling in pure Python (the ``random`` bot).
- :mod:`.seeds`: the bots' seeds, as ``igym_core.envs.agent_seed`` derives them.
"""

from __future__ import annotations

__all__ = ["CORE_MODULES"]

#: The igym_core modules the browser code imports (directly or through each other). The browser
#: build of igym_core must contain these, and its package ``__init__`` files must import nothing
#: (``igym_core/__init__.py`` pulls in the server stack; ``igym_core.envs`` is therefore not used).
CORE_MODULES: tuple[str, ...] = (
    "igym_core.errors",
    "igym_core.config.validators",
    "igym_core.rendering.interface",
    "igym_core.rendering.objects",
    "igym_core.rendering.delta",
    "igym_core.builtin.gym_keys",
    "igym_core.builtin.seat_actions",
)
