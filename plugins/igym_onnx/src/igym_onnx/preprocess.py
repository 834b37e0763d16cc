"""Apply a :class:`~igym_onnx.config.Preprocess` declaration to observations with numpy.

The browser module (``static/igym_onnx.js``, ``preprocess(decl, observation)``) implements the same
steps in the same order; float32 steps there round after every operation (``Math.fround``), which
gives bit for bit what numpy's float32 arithmetic gives. Change one, change the other, and the
browser parity test (``tests/test_browser_parity.py``) tells whether they still agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from igym_onnx.config import OnnxConfigError, Preprocess

__all__ = ["describe_preprocess", "input_keys", "observation_mask", "preprocess"]

_NUMPY_DTYPES = {
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
    "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
}


def input_keys(decl: Preprocess, observation: Mapping[str, Any], mask_key: str) -> tuple[str, ...]:
    """The keys of a dict observation that make the model input, in order.

    ``decl.keys`` if given; otherwise the only key besides ``mask_key``.
    """
    if decl.keys is not None:
        return decl.keys
    others = [str(k) for k in observation if k != mask_key]
    if len(others) != 1:
        raise OnnxConfigError(
            f"The observation is a dict with keys {others!r} (besides the mask {mask_key!r}); say which "
            f"make the model's input, in order: Preprocess(keys={tuple(others)!r}) or "
            f'"preprocess": {{"keys": {others!r}}}.'
        )
    return (others[0],)


def _flatten(decl: Preprocess, observation: Any, mask_key: str) -> np.ndarray:
    if isinstance(observation, Mapping):
        keys = input_keys(decl, observation, mask_key)
        parts = []
        for key in keys:
            if key not in observation:
                raise OnnxConfigError(
                    f"The observation has no key {key!r} (it has {sorted(map(str, observation))}); fix "
                    "preprocess.keys."
                )
            parts.append(np.asarray(observation[key]).reshape(-1))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    if decl.keys is not None:
        raise OnnxConfigError(
            f"preprocess.keys is {list(decl.keys)!r}, but the observation is a {type(observation).__name__}, "
            "not a dict; remove keys."
        )
    return np.asarray(observation).reshape(-1)


def preprocess(decl: Preprocess, observation: Any, *, mask_key: str = "action_mask") -> np.ndarray:
    """The model input row for one observation: a 1-D array of ``decl.dtype``.

    Raises:
        OnnxConfigError: the observation does not fit the declaration (keys, element counts).
    """
    dtype = _NUMPY_DTYPES[decl.dtype]
    x = _flatten(decl, observation, mask_key).astype(dtype, copy=False)
    if not decl.normalises:
        return x
    n = x.shape[0]
    mean = np.asarray(decl.mean, dtype=dtype)
    std = np.asarray(decl.std, dtype=dtype)
    for name, values in (("mean", mean), ("std", std)):
        if values.ndim and values.shape[0] != n:
            raise OnnxConfigError(
                f"preprocess.{name} has {values.shape[0]} numbers, but the flattened observation has {n}; "
                f"give one number, or one per element."
            )
    x = (x - mean) / std
    if decl.clip is not None:
        low, high = (dtype.type(v) for v in decl.clip)
        x = np.clip(x, low, high)
    return x


def observation_mask(observation: Any, mask_key: str) -> np.ndarray | None:
    """The boolean action mask in a dict observation (non-zero: allowed), or ``None`` without one."""
    if not isinstance(observation, Mapping):
        return None
    mask = observation.get(mask_key)
    if mask is None:
        return None
    return np.asarray(mask).reshape(-1) != 0


def describe_preprocess(decl: Preprocess, observation: Any, *, mask_key: str) -> list[str]:
    """Numbered lines saying what :func:`preprocess` does to ``observation`` (for ``igym onnx check``)."""
    lines = []
    if isinstance(observation, Mapping):
        keys = input_keys(decl, observation, mask_key)
        sizes = [int(np.asarray(observation[k]).size) for k in keys if k in observation]
        how = "as declared" if decl.keys is not None else f"the only key besides {mask_key!r}"
        lines.append(
            f"take key(s) {', '.join(repr(k) for k in keys)} of the dict observation ({how}), each "
            f"flattened in C order, concatenated: {' + '.join(map(str, sizes))} = {sum(sizes)} numbers"
        )
    else:
        size = int(np.asarray(observation).size)
        lines.append(f"flatten the observation in C order: {size} numbers")
    lines.append(f"cast to {decl.dtype}")
    if decl.mean != 0.0 or decl.std != 1.0:
        lines.append(
            f"subtract mean {_short(decl.mean)}, then divide by std {_short(decl.std)} ({decl.dtype} math)"
        )
    if decl.clip is not None:
        lines.append(f"clip to [{decl.clip[0]:g}, {decl.clip[1]:g}]")
    return [f"{i}. {line}" for i, line in enumerate(lines, 1)]


def _short(value: float | tuple[float, ...]) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    shown = ", ".join(f"{v:g}" for v in value[:6])
    return f"[{shown}{', …' if len(value) > 6 else ''}] ({len(value)} numbers)"
