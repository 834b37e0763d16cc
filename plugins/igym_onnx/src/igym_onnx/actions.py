"""From one row of logits to an action: argmax, or sampling with a temperature; masks respected.

Sampling draws from a *seeded uniform stream* that Python and the browser module compute alike,
so a bot with the same seed makes the same draws wherever it runs:

    u_t = fmix32(fmix32(seed) + (t + 1) * 0x9E3779B9 mod 2**32) / 2**32,   t = 0, 1, 2, ...

``fmix32`` is MurmurHash3's 32-bit finaliser. ``t`` counts the draws since the last reset: one
per sampled action (``argmax`` draws nothing).

Selection, the same in ``static/igym_onnx.js``:

- Allowed actions: those whose mask entry is non-zero (all without a mask; all, with a warning,
  if the mask allows none). NaN logits count as ``-inf``.
- ``argmax``: the first allowed index with the largest logit (the first allowed one if all are ``-inf``).
- ``sample``: ``p_i ∝ exp((l_i - max) / T)`` over allowed actions, in float64; the action is the
  first index whose running sum exceeds ``u * total``.
"""

from __future__ import annotations

import math

import numpy as np
import structlog

__all__ = ["fmix32", "select_action", "uniform"]

log = structlog.get_logger(__name__)

_MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


def fmix32(value: int) -> int:
    """MurmurHash3's 32-bit finaliser (a bijection on 32-bit integers that mixes every bit)."""
    h = value & _MASK32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK32
    h ^= h >> 16
    return h


def uniform(seed: int, t: int) -> float:
    """Draw ``t`` (0-based) of the stream seeded with ``seed``: a float in ``[0, 1)``."""
    return fmix32(fmix32(seed) + (t + 1) * _GOLDEN) / 4294967296.0


def select_action(
    logits: np.ndarray,
    mask: np.ndarray | None,
    *,
    mode: str,
    temperature: float = 1.0,
    u: float | None = None,
) -> int:
    """The index of the chosen action in ``logits`` (a 1-D float array).

    Args:
        logits: one row of the model's logits.
        mask: booleans (``True``: allowed), as long as ``logits``, or ``None``.
        mode: ``"argmax"`` or ``"sample"``.
        temperature: divides the logits before the softmax (``sample`` only).
        u: the uniform draw in ``[0, 1)`` (``sample`` only).
    """
    if mode == "argmax" and mask is None:
        best = int(logits.argmax())  # the first maximum, or the first NaN if there is one
        if not math.isnan(logits[best]):
            return best
    values = logits.astype(np.float64)
    if mask is None:
        allowed = ~np.isnan(values)
        first_allowed = 0
    else:
        if not mask.any():
            log.warning("onnx_action_mask_empty", advice="the observation's action mask allows no action")
            mask = np.ones_like(mask)
        first_allowed = int(np.argmax(mask))
        allowed = mask & ~np.isnan(values)
    values = np.where(allowed, values, -np.inf)
    best = int(np.argmax(values))
    top = values[best]
    if top == -math.inf:
        return first_allowed
    if mode == "argmax":
        return best
    if u is None:
        raise ValueError("sampling needs a uniform draw u")
    weights = np.exp((values - top) / temperature)
    running = np.cumsum(weights)
    index = int(np.searchsorted(running, u * running[-1], side="right"))
    if index >= len(running) or weights[index] == 0.0:
        # u * total rounded up to the total: the last action with weight (never a masked one).
        index = int(np.flatnonzero(weights)[-1])
    return index
