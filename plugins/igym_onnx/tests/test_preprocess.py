"""Preprocessing in Python, and the browser module's preprocessing, selection and draws (run by node)
on the same hypothesis-generated inputs: bit for bit the same."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from igym_onnx import OnnxConfigError, Preprocess
from igym_onnx.actions import select_action, uniform
from igym_onnx.preprocess import describe_preprocess, observation_mask, preprocess

HERE = Path(__file__).resolve().parent
MODULE = HERE.parent / "src" / "igym_onnx" / "static" / "igym_onnx.js"


def test_steps_in_order() -> None:
    decl = Preprocess(keys=("b", "a"), mean=(1, 1, 1, 0), std=2.0, clip=(-1, 1))
    obs = {"a": np.array([[3.0]]), "b": [1.0, 2.0, 5.0], "action_mask": [1, 0]}
    row = preprocess(decl, obs)
    assert row.dtype == np.float32
    np.testing.assert_array_equal(row, np.array([0.0, 0.5, 1.0, 1.0], dtype=np.float32))  # (x-1)/2, clipped
    assert observation_mask(obs, "action_mask").tolist() == [True, False]
    assert observation_mask([1, 2], "action_mask") is None


def test_dict_with_one_key_besides_the_mask_needs_no_keys() -> None:
    row = preprocess(Preprocess(), {"observation": [[1, 2], [3, 4]], "action_mask": [1, 1]})
    assert row.tolist() == [1, 2, 3, 4]
    with pytest.raises(OnnxConfigError, match=r"Preprocess\(keys="):
        preprocess(Preprocess(), {"a": 1, "b": 2})
    with pytest.raises(OnnxConfigError, match="no key 'c'"):
        preprocess(Preprocess(keys=("c",)), {"a": 1, "b": 2})
    with pytest.raises(OnnxConfigError, match="not a dict"):
        preprocess(Preprocess(keys=("c",)), [1.0])
    with pytest.raises(OnnxConfigError, match="has 2 numbers, but the flattened observation has 3"):
        preprocess(Preprocess(mean=(1, 2)), [1.0, 2.0, 3.0])


def test_integer_dtypes_truncate_and_booleans_count() -> None:
    assert preprocess(Preprocess(dtype="int64"), [1.9, -1.9, True]).tolist() == [1, -1, 1]
    assert preprocess(Preprocess(dtype="int32"), np.array([2, 3])).dtype == np.int32


def test_describe() -> None:
    lines = describe_preprocess(
        Preprocess(keys=("a", "b"), mean=0.5, clip=(-1, 1)), {"a": [1, 2], "b": 3}, mask_key="action_mask"
    )
    assert lines[0].startswith("1. take key(s) 'a', 'b'") and "2 + 1 = 3 numbers" in lines[0]
    assert (
        lines[1] == "2. cast to float32"
        and "subtract mean 0.5" in lines[2]
        and lines[3] == "4. clip to [-1, 1]"
    )


# --- the browser module, run by node, on the same inputs -----------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
scalars = st.one_of(finite, st.integers(-1000, 1000), st.booleans())


@st.composite
def values(draw: Any) -> Any:
    shape = draw(st.sampled_from([(), (1,), (3,), (2, 2), (2, 1, 3)]))
    if not shape:
        return draw(scalars)
    flat = draw(
        st.lists(
            finite | st.integers(-1000, 1000), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))
        )
    )
    return np.array(flat, dtype=np.float64).reshape(shape).tolist()


def _size(value: Any) -> int:
    return int(np.asarray(value).size)


@st.composite
def preprocess_cases(draw: Any) -> dict[str, Any]:
    as_dict = draw(st.booleans())
    if as_dict:
        names = draw(
            st.lists(st.sampled_from(["pos", "vel", "grid", "x"]), min_size=1, max_size=4, unique=True)
        )
        observation = {name: draw(values()) for name in names}
        if draw(st.booleans()):
            observation["action_mask"] = draw(st.lists(st.sampled_from([0, 1]), min_size=3, max_size=3))
        keys = draw(st.permutations(names)) if len(names) > 1 or draw(st.booleans()) else None
        size = sum(_size(observation[k]) for k in (keys or names))
    else:
        observation = draw(values())
        keys = None
        size = _size(observation)
    dtype = draw(st.sampled_from(["float32", "float32", "float64", "int32", "int64"]))
    decl: dict[str, Any] = {"keys": list(keys) if keys else None, "dtype": dtype}
    if dtype.startswith("float") and draw(st.booleans()):
        per_element = draw(st.booleans())
        spread = st.floats(0.01, 100) | st.floats(-100, -0.01)
        decl["mean"] = draw(st.lists(finite, min_size=size, max_size=size)) if per_element else draw(finite)
        decl["std"] = draw(st.lists(spread, min_size=size, max_size=size)) if per_element else draw(spread)
        if draw(st.booleans()):
            low = draw(st.floats(-1e3, 1e3))
            decl["clip"] = [low, low + draw(st.floats(0.001, 1e3))]
    return {"decl": decl, "observation": observation, "mask_key": "action_mask"}


@st.composite
def select_cases(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(1, 6))
    logits = draw(
        st.lists(st.floats(-30, 30, width=32) | st.sampled_from([0.0, 1.0]), min_size=n, max_size=n)
    )
    mask = draw(st.none() | st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n))
    action = draw(st.sampled_from(["argmax", "sample"]))
    return {
        "logits": logits,
        "mask": mask,
        "action": action,
        "temperature": draw(st.sampled_from([1.0, 0.5, 2.0, 0.1])),
        "u": draw(st.floats(0, 1, exclude_max=True)),
    }


def run_node(cases: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not on PATH; the browser module's parity tests need it (`make test` needs node too)"
        )
    done = subprocess.run(
        [node, str(HERE / "node_parity.mjs"), MODULE.as_uri()],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


_JS_TYPES = {
    "float32": "Float32Array",
    "float64": "Float64Array",
    "int32": "Int32Array",
    "int64": "BigInt64Array",
}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    st.lists(preprocess_cases(), min_size=1, max_size=20),
    st.lists(select_cases(), min_size=1, max_size=20),
    st.lists(st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 10_000)), min_size=1, max_size=5),
)
def test_browser_module_computes_the_same_bits(
    pre: list[dict[str, Any]], select: list[dict[str, Any]], draws: list[tuple[int, int]]
) -> None:
    results = run_node({"preprocess": pre, "select": select, "uniform": draws})
    for case, got in zip(pre, results["preprocess"], strict=True):
        decl = Preprocess.from_json(case["decl"])
        observation = case["observation"]
        try:
            expected = preprocess(decl, observation, mask_key="action_mask")
        except OnnxConfigError:
            assert not got["ok"], (case, got)
            continue
        assert got["ok"], (case, got)
        assert got["type"] == _JS_TYPES[decl.dtype]
        if decl.dtype == "int64":
            actual = np.array([int(v) for v in got["values"]], dtype=np.int64)
        else:
            actual = np.array(
                [float(v) if isinstance(v, str) else v for v in got["values"]], dtype=expected.dtype
            )
        # Bit for bit (NaN cannot occur: inputs are finite and std is non-zero), except the sign of
        # zero: the values come back from node as JSON, which writes -0 as 0 (and -0.0 and 0.0
        # give the same model output). Adding 0 turns -0.0 into 0.0 and changes nothing else.
        if decl.dtype != "int64":
            actual, expected = actual + 0, expected + 0
        assert actual.tobytes() == expected.tobytes(), (case, expected.tolist(), got["values"])
        mask = observation_mask(observation, "action_mask")
        assert (got["mask"] is None) == (mask is None)
        if mask is not None:
            assert [bool(v) for v in got["mask"]] == mask.tolist()
    for case, got in zip(select, results["select"], strict=True):
        mask = None if case["mask"] is None else np.array(case["mask"], dtype=bool)
        expected = select_action(
            np.array(case["logits"], dtype=np.float32),
            mask,
            mode=case["action"],
            temperature=case["temperature"],
            u=case["u"],
        )
        assert got == expected, case
        if mask is not None and mask.any():
            assert mask[got]
    assert results["uniform"] == [uniform(seed, t) for seed, t in draws]
