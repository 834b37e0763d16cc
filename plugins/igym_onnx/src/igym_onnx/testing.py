"""Small ONNX models built with ``onnx.helper`` (opset 17, dynamic batch), for tests and benchmarks.

Random weights from a seed; no downloaded weights. Needs the ``onnx`` package
(``pip install igym-onnx[test]``), which the plugin itself does not.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from igym_core.errors import MissingDependencyError

__all__ = ["gru_model", "mlp_model", "recurrent_model", "save_model"]

OPSET = 17


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise MissingDependencyError("pip install onnx") from exc
    return onnx


def _weights(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return (rng.normal(size=shape) / np.sqrt(shape[0])).astype(np.float32)


def _finish(graph: Any) -> bytes:
    onnx = _onnx()
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)], producer_name="igym_onnx.testing"
    )
    model.ir_version = 8  # readable by onnxruntime 1.14 and later, onnxruntime-web included
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def mlp_model(
    n_in: int,
    n_out: int,
    *,
    hidden: Sequence[int] = (16,),
    seed: int = 0,
    input_name: str = "obs",
    output_name: str = "logits",
    batch: str | int = "batch",
    extra_outputs: Sequence[str] = (),
    input_dtype: str = "float32",
) -> bytes:
    """An MLP ``[batch, n_in] -> tanh hidden layers -> [batch, n_out]`` logits.

    ``batch=1`` fixes the batch size (a model that cannot be batched); ``extra_outputs`` adds
    outputs (e.g. ``"value"``, one number per row) that a policy ignores; ``input_dtype="int64"``
    casts an integer input to float first.
    """
    onnx = _onnx()
    helper, numpy_helper, tp = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    current = input_name
    if input_dtype != "float32":
        nodes.append(helper.make_node("Cast", [input_name], ["x_float"], to=tp.FLOAT))
        current = "x_float"
    sizes = [n_in, *hidden]
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        inits += [
            numpy_helper.from_array(_weights(rng, a, b), f"W{i}"),
            numpy_helper.from_array(_weights(rng, b).reshape(b), f"b{i}"),
        ]
        nodes += [
            helper.make_node("MatMul", [current, f"W{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
            helper.make_node("Tanh", [f"a{i}"], [f"h{i}"]),
        ]
        current = f"h{i}"
    inits += [
        numpy_helper.from_array(_weights(rng, sizes[-1], n_out), "Wout"),
        numpy_helper.from_array(_weights(rng, n_out), "bout"),
    ]
    nodes += [
        helper.make_node("MatMul", [current, "Wout"], ["mout"]),
        helper.make_node("Add", ["mout", "bout"], [output_name]),
    ]
    outputs = [helper.make_tensor_value_info(output_name, tp.FLOAT, [batch, n_out])]
    for name in extra_outputs:
        inits.append(numpy_helper.from_array(_weights(rng, sizes[-1], 1), f"W_{name}"))
        nodes.append(helper.make_node("MatMul", [current, f"W_{name}"], [name]))
        outputs.append(helper.make_tensor_value_info(name, tp.FLOAT, [batch, 1]))
    elem = {"float32": tp.FLOAT, "float64": tp.DOUBLE, "int64": tp.INT64, "int32": tp.INT32}[input_dtype]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info(input_name, elem, [batch, n_in])], outputs, inits
    )
    return _finish(graph)


def recurrent_model(
    n_in: int,
    n_state: int,
    n_out: int,
    *,
    seed: int = 0,
    names: tuple[str, str, str, str] = ("obs", "state_in", "logits", "state_out"),
) -> bytes:
    """A one-layer recurrent net: ``h' = tanh(obs W + h U + b)``, ``logits = h' V + c``.

    ``names``: (observation input, state input, logits output, state output).
    """
    onnx = _onnx()
    helper, numpy_helper, tp = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    rng = np.random.default_rng(seed)
    obs, state_in, logits, state_out = names
    inits = [
        numpy_helper.from_array(_weights(rng, n_in, n_state), "W"),
        numpy_helper.from_array(_weights(rng, n_state, n_state) * 1.5, "U"),
        numpy_helper.from_array(_weights(rng, n_state), "b"),
        numpy_helper.from_array(_weights(rng, n_state, n_out), "V"),
        numpy_helper.from_array(_weights(rng, n_out), "c"),
    ]
    nodes = [
        helper.make_node("MatMul", [obs, "W"], ["xw"]),
        helper.make_node("MatMul", [state_in, "U"], ["hu"]),
        helper.make_node("Add", ["xw", "hu"], ["s1"]),
        helper.make_node("Add", ["s1", "b"], ["s2"]),
        helper.make_node("Tanh", ["s2"], [state_out]),
        helper.make_node("MatMul", [state_out, "V"], ["hv"]),
        helper.make_node("Add", ["hv", "c"], [logits]),
    ]
    graph = helper.make_graph(
        nodes,
        "recurrent",
        [
            helper.make_tensor_value_info(obs, tp.FLOAT, ["batch", n_in]),
            helper.make_tensor_value_info(state_in, tp.FLOAT, ["batch", n_state]),
        ],
        [
            helper.make_tensor_value_info(logits, tp.FLOAT, ["batch", n_out]),
            helper.make_tensor_value_info(state_out, tp.FLOAT, ["batch", n_state]),
        ],
        inits,
    )
    return _finish(graph)


def gru_model(n_in: int, n_hidden: int, n_out: int, *, seed: int = 0) -> bytes:
    """ONNX's ``GRU`` operator for one step: state ``h0``/``hn`` shaped ``[1, batch, hidden]``."""
    onnx = _onnx()
    helper, numpy_helper, tp = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(_weights(rng, 3 * n_hidden, n_in).reshape(1, 3 * n_hidden, n_in), "Wg"),
        numpy_helper.from_array(
            _weights(rng, 3 * n_hidden, n_hidden).reshape(1, 3 * n_hidden, n_hidden), "Rg"
        ),
        numpy_helper.from_array(_weights(rng, 6 * n_hidden).reshape(1, 6 * n_hidden), "Bg"),
        numpy_helper.from_array(_weights(rng, n_hidden, n_out), "V"),
        numpy_helper.from_array(_weights(rng, n_out), "c"),
    ]
    nodes = [
        helper.make_node("Unsqueeze", ["obs", "axis0"], ["seq"]),  # [1, batch, n_in]: one time step
        helper.make_node("GRU", ["seq", "Wg", "Rg", "Bg", "", "h0"], ["y", "hn"], hidden_size=n_hidden),
        helper.make_node("Squeeze", ["hn", "axis0"], ["h"]),
        helper.make_node("MatMul", ["h", "V"], ["hv"]),
        helper.make_node("Add", ["hv", "c"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "gru",
        [
            helper.make_tensor_value_info("obs", tp.FLOAT, ["batch", n_in]),
            helper.make_tensor_value_info("h0", tp.FLOAT, [1, "batch", n_hidden]),
        ],
        [
            helper.make_tensor_value_info("logits", tp.FLOAT, ["batch", n_out]),
            helper.make_tensor_value_info("hn", tp.FLOAT, [1, "batch", n_hidden]),
        ],
        inits,
    )
    return _finish(graph)


def save_model(data: bytes, path: str | Path) -> Path:
    """Write model bytes to ``path`` (parents created); return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target
