"""Which model input takes observations, which output holds logits, which pairs are recurrent state.

Discovery, when the config names nothing (the browser module applies the same rules):

1. **State pairs.** An input and an output are a state pair when their names match after removing
   an in/out marker (``state_in``/``state_out``, ``h_in``/``h_out``, ``hidden_input``/
   ``hidden_output``, ``h0``/``hn``, ``prev_state``/``next_state``, ``stateIn``/``stateOut``)
   and they have the same rank and the same fixed sizes.
2. **Observation input.** The one input left; with several, the one named ``obs``,
   ``observation``, ``observations``, ``input`` or ``x``.
3. **Logits output.** The one output left; with several, the first whose name contains
   ``logits``, then ``action``, then ``policy``; otherwise the first output left.

Batch axes: the observation's is axis 0; a state's is its first dimension of unknown size (ONNX's
GRU/LSTM keep state as ``[layers, batch, hidden]``). A model whose observation input has a fixed
batch size of 1 is evaluated one observation at a time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from igym_onnx.config import OnnxConfigError

__all__ = ["ModelSignature", "TensorInfo", "discover_signature", "name_stems"]

Dim = int | str | None


@attrs.frozen
class TensorInfo:
    """One input or output of a model."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str
    """numpy's name: ``float32``, ``int64``, ..."""

    @property
    def shown_shape(self) -> str:
        return (
            "["
            + ", ".join("?" if d is None else repr(d) if isinstance(d, str) else str(d) for d in self.shape)
            + "]"
        )

    def describe(self) -> str:
        return f"{self.name!r} {self.dtype} {self.shown_shape}"


def dynamic(dim: Dim) -> bool:
    """Whether a dimension's size is left open (a symbolic name, or unknown)."""
    return not isinstance(dim, int) or dim < 0


@attrs.frozen
class StatePair:
    input: TensorInfo
    output: TensorInfo
    batch_axis: int


@attrs.frozen
class ModelSignature:
    """The roles of a model's inputs and outputs, and why each was chosen."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    observation: TensorInfo
    logits: TensorInfo
    states: tuple[StatePair, ...]
    batchable: bool
    """Whether many observations can go in one call (the batch dimensions are open)."""
    reasons: dict[str, str]
    """Input/output name → why it has its role."""
    ignored_outputs: tuple[str, ...]

    @property
    def row_shape(self) -> tuple[int, ...] | None:
        """The observation input's fixed shape after the batch axis, or ``None`` if some size is open."""
        rest = self.observation.shape[1:]
        if any(dynamic(d) for d in rest):
            return None
        return tuple(int(d) for d in rest)  # type: ignore[arg-type]


_IN_SUFFIXES = ("_input", "input", "_in", ".in", "-in", "in", "_prev", "_previous", "_old", "0")
_OUT_SUFFIXES = ("_output", "output", "_out", ".out", "-out", "out", "_next", "_new", "n")
_IN_PREFIXES = ("input_", "in_", "prev_", "previous_", "old_")
_OUT_PREFIXES = ("output_", "out_", "next_", "new_")
_OBSERVATION_NAMES = ("obs", "observation", "observations", "input", "x")
_LOGITS_HINTS = ("logits", "action", "policy")


def name_stems(name: str, *, side: str) -> set[str]:
    """The names left after removing one in-marker (``side="in"``) or out-marker (``side="out"``)."""
    lowered = name.lower()
    suffixes, prefixes = (_IN_SUFFIXES, _IN_PREFIXES) if side == "in" else (_OUT_SUFFIXES, _OUT_PREFIXES)
    stems = set()
    for suffix in suffixes:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            stems.add(lowered[: -len(suffix)].rstrip("_.-:/"))
    for prefix in prefixes:
        if lowered.startswith(prefix) and len(lowered) > len(prefix):
            stems.add(lowered[len(prefix) :])
    return {s for s in stems if s and re.search(r"[a-z0-9]", s)}


def _same_fixed_shape(a: TensorInfo, b: TensorInfo) -> bool:
    if len(a.shape) != len(b.shape):
        return False
    return all(dynamic(x) or dynamic(y) or x == y for x, y in zip(a.shape, b.shape, strict=True))


def _state_batch_axis(pair_input: TensorInfo, pair_output: TensorInfo) -> int | None:
    for axis, dim in enumerate(pair_input.shape):
        if dynamic(dim):
            return axis
    return None


def discover_signature(
    inputs: Sequence[TensorInfo],
    outputs: Sequence[TensorInfo],
    *,
    observation_input: str | None = None,
    logits_output: str | None = None,
    state_inputs: Sequence[str] | None = None,
    state_outputs: Sequence[str] | None = None,
) -> ModelSignature:
    """Give each input and output its role (see the module docstring).

    Raises:
        OnnxConfigError: a named input/output does not exist, or a role is ambiguous; the message
            lists the model's inputs and outputs and the config field to set.
    """
    by_input = {t.name: t for t in inputs}
    by_output = {t.name: t for t in outputs}
    listing = (
        f"The model's inputs: {', '.join(t.describe() for t in inputs) or 'none'}; outputs: "
        f"{', '.join(t.describe() for t in outputs) or 'none'}."
    )

    def need(name: str, table: dict[str, TensorInfo], what: str, field: str) -> TensorInfo:
        if name not in table:
            raise OnnxConfigError(
                f"{field} names the {what} {name!r}, which the model does not have. {listing}"
            )
        return table[name]

    reasons: dict[str, str] = {}
    pairs: list[tuple[TensorInfo, TensorInfo]] = []
    if state_inputs is not None and state_outputs is not None:
        for in_name, out_name in zip(state_inputs, state_outputs, strict=True):
            pairs.append(
                (
                    need(in_name, by_input, "input", "state_inputs"),
                    need(out_name, by_output, "output", "state_outputs"),
                )
            )
            reasons[in_name] = reasons[out_name] = "state pair named in the config"
    else:
        taken_outputs: set[str] = set()
        for candidate in inputs:
            if candidate.name == observation_input or len(inputs) == 1:
                continue
            stems = name_stems(candidate.name, side="in")
            for output in outputs:
                if output.name in taken_outputs or output.name == logits_output:
                    continue
                if stems & name_stems(output.name, side="out") and _same_fixed_shape(candidate, output):
                    pairs.append((candidate, output))
                    taken_outputs.add(output.name)
                    why = (
                        f"state pair {candidate.name!r} → {output.name!r}: the same name apart from an "
                        "in/out marker, and the same shape"
                    )
                    reasons[candidate.name] = reasons[output.name] = why
                    break
    state_in_names = {i.name for i, _ in pairs}
    state_out_names = {o.name for _, o in pairs}

    if observation_input is not None:
        observation = need(observation_input, by_input, "input", "observation_input")
        reasons[observation.name] = "observation input named in the config"
    else:
        left = [t for t in inputs if t.name not in state_in_names]
        if len(left) == 1:
            observation = left[0]
            reasons[observation.name] = "observation: the only input that is not recurrent state"
        else:
            named = [t for t in left if t.name.lower() in _OBSERVATION_NAMES]
            if len(named) != 1:
                raise OnnxConfigError(
                    f"Cannot tell which input takes observations among {[t.name for t in left]}; set "
                    f"observation_input (and state_inputs/state_outputs for recurrent state). {listing}"
                )
            observation = named[0]
            reasons[observation.name] = f"observation: named {observation.name!r}"
    if observation.name in state_in_names:
        raise OnnxConfigError(
            f"Input {observation.name!r} cannot be both the observation and a state input. {listing}"
        )
    unused = [t.name for t in inputs if t.name != observation.name and t.name not in state_in_names]
    if unused:
        raise OnnxConfigError(
            f"The model's input(s) {unused} are neither the observation nor recurrent state, and igym would "
            f"not know what to feed them. Name state pairs with state_inputs/state_outputs. {listing}"
        )

    if logits_output is not None:
        logits = need(logits_output, by_output, "output", "logits_output")
        reasons[logits.name] = "logits output named in the config"
    else:
        left_out = [t for t in outputs if t.name not in state_out_names]
        if not left_out:
            raise OnnxConfigError(
                f"Every output of the model is recurrent state; none holds logits. {listing}"
            )
        logits = left_out[0]
        reasons[logits.name] = "logits: the only output that is not recurrent state"
        if len(left_out) > 1:
            reasons[logits.name] = "logits: the first output that is not recurrent state"
            for hint in _LOGITS_HINTS:
                hinted = [t for t in left_out if hint in t.name.lower()]
                if hinted:
                    logits = hinted[0]
                    reasons[logits.name] = f"logits: its name contains {hint!r}"
                    break
    if logits.name in state_out_names:
        raise OnnxConfigError(
            f"Output {logits.name!r} cannot be both the logits and a state output. {listing}"
        )
    if not logits.dtype.startswith("float"):
        raise OnnxConfigError(
            f"The logits output {logits.name!r} is {logits.dtype}; igym needs float logits (one number per "
            f"action) to choose actions and respect masks. Export the logits, or set logits_output. {listing}"
        )

    states = []
    batchable = bool(observation.shape) and dynamic(observation.shape[0])
    for pair_input, pair_output in pairs:
        axis = _state_batch_axis(pair_input, pair_output)
        if axis is None:
            batchable = False
            axis = next((i for i, d in enumerate(pair_input.shape) if d == 1), 0)
        elif any(dynamic(d) for i, d in enumerate(pair_input.shape) if i != axis):
            raise OnnxConfigError(
                f"State input {pair_input.describe()} has more than one dimension of unknown size; igym "
                "needs fixed state sizes apart from the batch axis to start each episode from zeros. "
                "Export the model with fixed state sizes."
            )
        states.append(StatePair(pair_input, pair_output, axis))
    if observation.shape and not dynamic(observation.shape[0]) and observation.shape[0] != 1:
        raise OnnxConfigError(
            f"The observation input {observation.describe()} has a fixed batch size of "
            f"{observation.shape[0]}; igym feeds one observation per bot. Export the model with a "
            "dynamic (or 1) batch dimension."
        )
    if not observation.shape:
        raise OnnxConfigError(
            f"The observation input {observation.describe()} is a scalar; igym needs [batch, ...]. {listing}"
        )
    ignored = tuple(t.name for t in outputs if t.name != logits.name and t.name not in state_out_names)
    return ModelSignature(
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        observation=observation,
        logits=logits,
        states=tuple(states),
        batchable=batchable,
        reasons=reasons,
        ignored_outputs=ignored,
    )
