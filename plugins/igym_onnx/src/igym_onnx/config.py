"""What an experiment writes for an ONNX bot: the model file, the observation preprocessing, names.

The preprocessing declaration (:class:`Preprocess`) is data, not code: Python applies it with numpy
(:mod:`igym_onnx.preprocess`) and the browser module (``/plugins/onnx/igym_onnx.js``) applies the
identical JSON form (:meth:`Preprocess.to_json`) in JavaScript, so the two cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import attrs
from cattrs import Converter

from igym_core.config.validators import FieldError
from igym_core.errors import ConfigError
from igym_core.policies.interface import PolicyConfig

__all__ = ["DEFAULT_MASK_KEY", "DTYPES", "OnnxConfigError", "OnnxPolicy", "Preprocess"]

#: The model input dtypes a declaration may ask for.
DTYPES = ("float32", "float64", "int32", "int64")

#: The observation key holding the action mask when ``mask_key`` is not given (PettingZoo's convention).
DEFAULT_MASK_KEY = "action_mask"


class OnnxConfigError(ConfigError):
    """An ONNX bot cannot work as configured: a missing model file, names or sizes that do not fit."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="")


def _floats(name: str, value: Any) -> float | tuple[float, ...]:
    """A number, or a list of numbers (one per element of the flattened observation)."""
    if isinstance(value, bool):
        raise FieldError(name, f"expected a number or a list of numbers; got {value!r}.")
    if isinstance(value, int | float):
        return float(value)
    if (isinstance(value, Sequence) and not isinstance(value, str)) or _is_array(value):
        items = list(value)
        if not items:
            raise FieldError(name, "expected a number or a non-empty list of numbers; got an empty list.")
        out = []
        for item in items:
            if isinstance(item, bool) or (not isinstance(item, int | float) and not _is_number(item)):
                raise FieldError(name, f"expected numbers; got {item!r} in {value!r}.")
            out.append(float(item))
        return tuple(out)
    raise FieldError(name, f"expected a number or a list of numbers; got {value!r}.")


def _is_array(value: Any) -> bool:
    return hasattr(value, "tolist") and hasattr(value, "shape")


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str)


def _keys(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise FieldError(
            "keys", f"expected a list of observation keys, e.g. ['position', 'velocity']; got {value!r}."
        )
    keys = tuple(value)
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise FieldError("keys", f"expected a non-empty list of non-empty strings; got {value!r}.")
    if len(set(keys)) != len(keys):
        raise FieldError("keys", f"each key may appear once; got {list(keys)!r}.")
    return keys


def _clip(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise FieldError("clip", f"expected [low, high]; got {value!r}.")
    low, high = (_floats("clip", v) for v in value)
    if not isinstance(low, float) or not isinstance(high, float) or not low < high:
        raise FieldError("clip", f"expected two numbers low < high; got {value!r}.")
    return (low, high)


def _finite(name: str, value: float | tuple[float, ...], *, nonzero: bool = False) -> None:
    for item in value if isinstance(value, tuple) else (value,):
        if not math.isfinite(item) or (nonzero and item == 0):
            wanted = "finite, non-zero numbers" if nonzero else "finite numbers"
            raise FieldError(name, f"expected {wanted}; got {item!r}.")


@attrs.frozen(kw_only=True)
class Preprocess:
    """How an observation becomes the model's input row, in this order (Python and browser alike):

    1. **Flatten.** A dict observation: the values of ``keys``, in that order, each flattened in C
       order and concatenated. Without ``keys``, a dict observation must have exactly one key
       besides the action mask, and that one is used. Any other observation is flattened as it is.
    2. **Cast** to ``dtype`` (booleans become 0 and 1; casting a float to an integer type truncates).
    3. **Normalise** (float dtypes only): subtract ``mean``, divide by ``std``, in ``dtype``
       arithmetic (float32 math for ``float32``). Each is a number or one number per element.
    4. **Clip** to ``clip = (low, high)``, if given.
    5. **Shape** the row as the model's observation input wants it (its dimensions after the batch one).
    """

    keys: tuple[str, ...] | None = attrs.field(default=None, converter=_keys)
    dtype: Literal["float32", "float64", "int32", "int64"] = "float32"
    mean: float | tuple[float, ...] = attrs.field(default=0.0, converter=lambda v: _floats("mean", v))
    std: float | tuple[float, ...] = attrs.field(default=1.0, converter=lambda v: _floats("std", v))
    clip: tuple[float, float] | None = attrs.field(default=None, converter=_clip)

    def __attrs_post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise FieldError("dtype", f"expected one of {', '.join(DTYPES)}; got {self.dtype!r}.")
        _finite("mean", self.mean)
        _finite("std", self.std, nonzero=True)
        if self.dtype.startswith("int") and self.normalises:
            raise FieldError(
                "dtype",
                f"mean, std and clip need a float dtype; got dtype {self.dtype!r}. Use dtype='float32', "
                "or drop the normalisation.",
            )

    @property
    def normalises(self) -> bool:
        """Whether steps 3–4 change anything (a mean of 0 and a std of 1 are exact no-ops)."""
        return self.mean != 0.0 or self.std != 1.0 or self.clip is not None

    def to_json(self) -> dict[str, Any]:
        """The JSON-compatible form the browser module takes (and :meth:`from_json` reads)."""
        return {
            "keys": list(self.keys) if self.keys is not None else None,
            "dtype": self.dtype,
            "mean": list(self.mean) if isinstance(self.mean, tuple) else self.mean,
            "std": list(self.std) if isinstance(self.std, tuple) else self.std,
            "clip": list(self.clip) if self.clip is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | Preprocess) -> Preprocess:
        """Build a declaration from its JSON form (TOML tables and JSON objects alike)."""
        if isinstance(data, Preprocess):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a table with keys, dtype, mean, std or clip; got {data!r}")
        fields = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise FieldError(
                unknown[0],
                f"unknown preprocessing field(s) {', '.join(unknown)}; fields: {', '.join(sorted(fields))}.",
            )
        return cls(**dict(data))


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise FieldError(attribute.name, f"must be a finite number greater than 0; got {value!r}.")


def _names(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@attrs.frozen(kw_only=True)
class OnnxPolicy(PolicyConfig):
    """A bot whose actions come from an ONNX model (``{"kind": "onnx", "path": "bot.onnx"}``).

    The model takes a batch of preprocessed observations and returns action logits (one row of
    ``Discrete(n).n`` numbers per observation). Names are discovered when not given: the inputs and
    outputs paired by name apart from in/out markers (``state_in``/``state_out``, ``h0``/``hn``)
    are recurrent state, carried from step to step and set to zeros at every episode start; the
    remaining input is the observation and the remaining output (one named like ``logits``
    first) the logits. ``igym onnx check`` shows what it finds and why.

    Actions: ``argmax`` of the logits, or ``sample`` from ``softmax(logits / temperature)`` with
    the policy's seeded uniform stream (see :mod:`igym_onnx.actions`). Actions that the
    observation's action mask forbids are never chosen.

    Every seat's policy is re-seeded at every episode start with
    ``igym_core.envs.agent_seed(episode_seed, agent)`` (the episode seed is in ``episodes.jsonl``);
    ``seed`` is used only before the first reset (e.g. by ``igym onnx check``).
    """

    kind: ClassVar[str] = "onnx"

    path: str = attrs.field(validator=attrs.validators.min_len(1))
    """The ``.onnx`` file, relative to the experiment file's directory (or absolute)."""
    preprocess: Preprocess = attrs.field(factory=Preprocess)
    observation_input: str | None = None
    """The model input that takes observations; discovered when ``None``."""
    logits_output: str | None = None
    """The model output holding action logits; discovered when ``None``."""
    state_inputs: tuple[str, ...] | None = attrs.field(default=None, converter=_names)
    """Recurrent state inputs, paired in order with ``state_outputs``; discovered when ``None``."""
    state_outputs: tuple[str, ...] | None = attrs.field(default=None, converter=_names)
    action: Literal["argmax", "sample"] = attrs.field(
        default="argmax", validator=attrs.validators.in_(("argmax", "sample"))
    )
    temperature: float = attrs.field(default=1.0, validator=_positive)
    """Sampling temperature: logits are divided by it before the softmax (``action="sample"``)."""
    mask_key: str | None = None
    """The observation key of the action mask; ``None``: ``"action_mask"`` when a dict observation has it."""
    seed: int = 0
    """The sampling seed before the first episode starts (every episode start re-seeds the policy)."""
    threads: int = attrs.field(default=1, validator=[attrs.validators.ge(1), attrs.validators.le(64)])
    """onnxruntime intra-op threads. One suits the server, which evaluates models on its event loop."""

    def __attrs_post_init__(self) -> None:
        if (self.state_inputs is None) != (self.state_outputs is None):
            raise FieldError(
                "state_inputs" if self.state_inputs is None else "state_outputs",
                "give state_inputs and state_outputs together (paired in order), or neither to discover "
                "them.",
            )
        inputs, outputs = self.state_inputs, self.state_outputs
        if inputs is not None and outputs is not None and len(inputs) != len(outputs):
            raise FieldError(
                "state_outputs",
                f"needs one output per state input, in the same order; got inputs {list(inputs)} "
                f"and outputs {list(outputs)}.",
            )
        keys = self.preprocess.keys or ()
        if self.mask_key is not None and self.mask_key in keys:
            raise FieldError(
                "mask_key",
                f"{self.mask_key!r} is also in preprocess.keys; the mask is not part of the input.",
            )

    @property
    def effective_mask_key(self) -> str:
        """The observation key read as the action mask."""
        return self.mask_key or DEFAULT_MASK_KEY

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``kind`` included): what the browser module's ``createPolicy`` takes."""
        return {
            "kind": self.kind,
            "path": self.path,
            "preprocess": self.preprocess.to_json(),
            "observation_input": self.observation_input,
            "logits_output": self.logits_output,
            "state_inputs": list(self.state_inputs) if self.state_inputs is not None else None,
            "state_outputs": list(self.state_outputs) if self.state_outputs is not None else None,
            "action": self.action,
            "temperature": self.temperature,
            "mask_key": self.mask_key,
            "seed": self.seed,
            "threads": self.threads,
        }


def configure_converter(converter: Converter) -> None:
    """Preprocess declarations are (un)structured through their JSON form."""
    converter.register_structure_hook(Preprocess, lambda value, _type: Preprocess.from_json(value))
    converter.register_unstructure_hook(Preprocess, Preprocess.to_json)
