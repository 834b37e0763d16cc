"""An ONNX model loaded once and shared by every bot that uses it: the batcher of batched inference.

:class:`OnnxModel` is the :class:`~igym_core.policies.interface.PolicyBatcher` of its policies. The
server runtime calls :meth:`OnnxModel.act_batch` once per tick with every seat that uses the model,
across all the games ticking at that instant; ``policy.act`` goes through the same code with a
batch of one, so batched and unbatched evaluation choose the same actions.

Models are cached per process by (resolved path, file modification time and size, evaluation
config): every seat of every game that names the same file with the same settings gets the same
object, and an edited file is loaded afresh. :func:`clear_model_cache` empties the cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import structlog

from igym_core.config.converter import exception_text, sentence
from igym_core.errors import MissingDependencyError, PluginError
from igym_onnx.actions import select_action, uniform
from igym_onnx.config import OnnxConfigError, OnnxPolicy
from igym_onnx.preprocess import observation_mask, preprocess
from igym_onnx.signature import ModelSignature, TensorInfo, discover_signature

if TYPE_CHECKING:
    from igym_onnx.policy import OnnxActor

__all__ = ["OnnxModel", "clear_model_cache", "load_model", "resolve_model_path"]

log = structlog.get_logger(__name__)

#: How many distinct (file, config) models a process keeps loaded.
CACHE_SIZE = 32

_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}

_cache: OrderedDict[tuple[Any, ...], OnnxModel] = OrderedDict()
_cache_lock = threading.Lock()


def onnxruntime() -> Any:
    """The ``onnxruntime`` module, or a :class:`MissingDependencyError` naming the install command."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependencyError("pip install onnxruntime") from exc
    return ort


def resolve_model_path(path: str | Path, base_dir: Path | None) -> Path:
    """The model file ``path`` names (relative paths start at ``base_dir``); it must exist."""
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = (base_dir or Path.cwd()) / candidate
    candidate = candidate.resolve()
    if not candidate.is_file():
        where = f"relative to {base_dir}" if base_dir is not None else "relative to the current directory"
        raise OnnxConfigError(
            f"ONNX model file {str(path)!r} not found (looked for {candidate}, {where}). Check the path; "
            "relative paths start at the experiment file's directory."
        )
    return candidate


def _evaluation_key(config: OnnxPolicy) -> OnnxPolicy:
    # The seed is per seat (each policy has its own draws); everything else changes what the model computes.
    return attrs.evolve(config, seed=0)


def load_model(config: OnnxPolicy, *, base_dir: Path | None) -> OnnxModel:
    """The shared model for ``config`` (loaded, or from the cache)."""
    path = resolve_model_path(config.path, base_dir)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, _evaluation_key(config))
    with _cache_lock:
        model = _cache.get(key)
        if model is not None:
            _cache.move_to_end(key)
            return model
    model = OnnxModel.from_file(path, config)
    with _cache_lock:
        model = _cache.setdefault(key, model)
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def clear_model_cache() -> None:
    """Forget every loaded model (policies already built keep theirs)."""
    with _cache_lock:
        _cache.clear()


def session_signature(session: Any) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """The inputs and outputs of an onnxruntime session."""

    def info(node: Any) -> TensorInfo:
        shape = tuple(d if isinstance(d, int | str) or d is None else None for d in (node.shape or ()))
        return TensorInfo(node.name, shape, _ORT_DTYPES.get(node.type, node.type))

    return [info(n) for n in session.get_inputs()], [info(n) for n in session.get_outputs()]


class OnnxModel:
    """One model file with one evaluation config; evaluates batches of policies' observations."""

    def __init__(self, path: Path, config: OnnxPolicy, session: Any, signature: ModelSignature) -> None:
        self.path = path
        self.config = config
        self.session = session
        self.signature = signature
        self.decl = config.preprocess
        self.mask_key = config.effective_mask_key
        self.sampling = config.action == "sample"
        self.temperature = config.temperature
        self._observation_name = signature.observation.name
        self._row_shape = signature.row_shape
        self._logits_name = signature.logits.name
        self._state_axes = [pair.batch_axis for pair in signature.states]
        self._state_inputs = [pair.input.name for pair in signature.states]
        self._output_names = [self._logits_name, *(pair.output.name for pair in signature.states)]
        self._initial_states = tuple(self._zeros(pair) for pair in signature.states)
        self._plain = self.decl.keys is None and not self.decl.normalises
        self._dtype = np.dtype(self.decl.dtype)

    @classmethod
    def from_file(cls, path: Path, config: OnnxPolicy) -> OnnxModel:
        ort = onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise OnnxConfigError(
                sentence(
                    f"onnxruntime {ort.__version__} cannot load {path}: {exception_text(exc)}",
                    "Check that the file is an ONNX model (export it again, with an opset this "
                    "onnxruntime supports).",
                )
            ) from exc
        inputs, outputs = session_signature(session)
        signature = discover_signature(
            inputs,
            outputs,
            observation_input=config.observation_input,
            logits_output=config.logits_output,
            state_inputs=config.state_inputs,
            state_outputs=config.state_outputs,
        )
        if signature.observation.dtype != config.preprocess.dtype:
            raise OnnxConfigError(
                f"The model's observation input {signature.observation.describe()} takes "
                f"{signature.observation.dtype}, but preprocess.dtype is {config.preprocess.dtype!r}; set "
                f"preprocess dtype={signature.observation.dtype!r}."
            )
        model = cls(path, config, session, signature)
        log.info(
            "onnx_model_loaded",
            path=str(path),
            observation=signature.observation.name,
            logits=signature.logits.name,
            states=[p.input.name for p in signature.states],
            batchable=signature.batchable,
        )
        return model

    # --- state --------------------------------------------------------------------------------
    def _zeros(self, pair: Any) -> np.ndarray:
        shape = [1 if i == pair.batch_axis else int(d) for i, d in enumerate(pair.input.shape)]
        dtype = np.dtype(pair.input.dtype)
        return np.zeros(shape, dtype=dtype)

    def initial_state(self) -> list[np.ndarray]:
        """Each state input's value at an episode start (zeros, batch size 1); arrays are never written to."""
        return list(self._initial_states)

    # --- evaluation ---------------------------------------------------------------------------
    def rows(self, observations: Sequence[Any]) -> np.ndarray:
        """The observation input for a batch: preprocessed rows shaped ``[batch, *input dims]``."""
        decl, mask_key = self.decl, self.mask_key
        first = observations[0]
        if (
            self._plain
            and type(first) is np.ndarray
            and all(type(o) is np.ndarray and o.shape == first.shape for o in observations)
        ):
            # The common case (arrays, no normalisation) in one numpy call: the same values as
            # preprocessing each row (flatten in C order, then cast).
            batch = np.stack(observations).reshape(len(observations), -1).astype(self._dtype, copy=False)
        else:
            batch = np.stack([preprocess(decl, obs, mask_key=mask_key) for obs in observations])
        n = batch.shape[1]
        shape = self._row_shape
        if shape is None:
            rest = self.signature.observation.shape[1:]
            if len(rest) == 1:
                return batch
            raise OnnxConfigError(
                f"The observation input {self.signature.observation.describe()} has open sizes besides the "
                "batch; igym feeds a flat row [batch, n]. Export the model with fixed input sizes."
            )
        if int(np.prod(shape)) != n:
            raise OnnxConfigError(
                f"The model's observation input {self.signature.observation.describe()} takes "
                f"{int(np.prod(shape))} numbers per observation, but the preprocessed observation has {n}. "
                "Fix preprocess.keys (which keys, in which order), or use the model trained for this env."
            )
        return batch.reshape((len(observations), *shape))

    def run(self, rows: np.ndarray, states: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One session call: logits ``[batch, n]`` and the new states (batched along their batch axes)."""
        feeds = {self._observation_name: rows}
        for name, value in zip(self._state_inputs, states, strict=True):
            feeds[name] = value
        outputs = self.session.run(self._output_names, feeds)
        logits = outputs[0].reshape(rows.shape[0], -1)
        return logits, outputs[1:]

    def evaluate(self, policies: Sequence[OnnxActor], observations: Sequence[Any]) -> np.ndarray:
        """Logits for each policy's observation, advancing each policy's recurrent state."""
        if len(policies) != len(observations):
            raise ValueError(f"{len(policies)} policies but {len(observations)} observations")
        for policy in policies:
            if policy.model is not self:
                raise PluginError(
                    f"act_batch of the model {self.path.name} got a policy of another model "
                    f"({policy.model.path.name}); group policies by their batcher."
                )
        rows = self.rows(observations)
        axes = self._state_axes
        if not axes:
            logits, _ = self.run(rows, ())
            return logits
        if len(policies) == 1:
            logits, new_states = self.run(rows, policies[0].state)
            policies[0].state = list(new_states)
            return logits
        states = [np.concatenate([p.state[i] for p in policies], axis=axis) for i, axis in enumerate(axes)]
        logits, new_states = self.run(rows, states)
        for row, policy in enumerate(policies):
            policy.state = [
                np.take(value, [row], axis=axis) for value, axis in zip(new_states, axes, strict=True)
            ]
        return logits

    def act_batch(self, policies: Sequence[Any], observations: Sequence[Any]) -> list[int]:
        """One action per policy for the observation at the same position (one model call)."""
        if not policies:
            return []
        logits = self.evaluate(policies, observations)
        return [
            policy.choose(row, observation)
            for policy, row, observation in zip(policies, logits, observations, strict=True)
        ]

    def check_actions(self, n: int, *, where: str) -> None:
        """Raise unless the logits output can have ``n`` entries per row (when its size is fixed)."""
        rest = self.signature.logits.shape[1:]
        if rest and all(isinstance(d, int) and d >= 0 for d in rest):
            size = int(np.prod([int(d) for d in rest]))  # type: ignore[arg-type]
            if size != n:
                raise OnnxConfigError(
                    f"{where}: the model's logits output {self.signature.logits.describe()} has {size} "
                    f"entries per observation, but the action space has {n} actions. Use the model trained "
                    "for this env, or set logits_output."
                )

    def draw(self, seed: int, t: int) -> float:
        return uniform(seed, t)

    def mask_of(self, observation: Any) -> np.ndarray | None:
        return observation_mask(observation, self.mask_key)

    def select(self, logits: np.ndarray, mask: np.ndarray | None, u: float | None) -> int:
        return select_action(logits, mask, mode=self.config.action, temperature=self.temperature, u=u)
