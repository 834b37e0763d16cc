"""The declaration and the policy config: validation, JSON form, structuring from tables."""

from __future__ import annotations

import json
import re

import pytest

from igym_core.config.converter import make_converter
from igym_core.errors import ConfigError
from igym_core.plugins.manager import create_plugin_manager
from igym_core.policies.spec import policy_config_from
from igym_onnx import OnnxPolicy, Preprocess


def test_preprocess_json_round_trip() -> None:
    decl = Preprocess(keys=["b", "a"], dtype="float32", mean=[0, 1.5], std=2, clip=(-3, 3))
    data = decl.to_json()
    assert data == {
        "keys": ["b", "a"],
        "dtype": "float32",
        "mean": [0.0, 1.5],
        "std": 2.0,
        "clip": [-3.0, 3.0],
    }
    assert json.loads(json.dumps(data)) == data
    assert Preprocess.from_json(data) == decl
    assert Preprocess().to_json() == {"keys": None, "dtype": "float32", "mean": 0.0, "std": 1.0, "clip": None}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"std": 0}, "non-zero"),
        ({"std": [1, 0]}, "non-zero"),
        ({"mean": "x"}, "number"),
        ({"mean": float("nan")}, "finite"),
        ({"clip": (2, 1)}, "low < high"),
        ({"clip": (1,)}, "[low, high]"),
        ({"keys": []}, "non-empty"),
        ({"keys": ["a", "a"]}, "once"),
        ({"keys": "ab"}, "list of observation keys"),
        ({"dtype": "float16"}, "one of"),
        ({"dtype": "int64", "mean": 1}, "float dtype"),
    ],
)
def test_preprocess_rejects_bad_declarations(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Preprocess(**kwargs)


def test_policy_config_validation() -> None:
    with pytest.raises(ValueError, match="together"):
        OnnxPolicy(path="m.onnx", state_inputs=["h_in"])
    with pytest.raises(ValueError, match="one output per state input"):
        OnnxPolicy(path="m.onnx", state_inputs=["a", "b"], state_outputs=["c"])
    with pytest.raises(ValueError, match="not part of the input"):
        OnnxPolicy(path="m.onnx", mask_key="m", preprocess=Preprocess(keys=["m"]))
    with pytest.raises(ValueError, match="greater than 0"):
        OnnxPolicy(path="m.onnx", action="sample", temperature=0)
    config = OnnxPolicy(path="m.onnx", state_inputs="h0", state_outputs="hn")
    assert config.state_inputs == ("h0",) and config.effective_mask_key == "action_mask"


def _registry():
    from igym_onnx import plugin

    return create_plugin_manager(autoload=False, extra=[plugin], strict=True).registry


def test_a_table_becomes_an_onnx_policy_and_unstructures_to_the_same_json() -> None:
    registry = _registry()
    converter = make_converter(registry)
    table = {
        "kind": "onnx",
        "path": "bots/bot.onnx",
        "preprocess": {"keys": ["position", "velocity"], "mean": [0, 0, 0], "std": 0.5},
        "action": "sample",
        "temperature": 0.7,
        "state_inputs": ["h_in"],
        "state_outputs": ["h_out"],
    }
    config = policy_config_from(table, registry, converter=converter)
    assert isinstance(config, OnnxPolicy)
    assert config.preprocess == Preprocess(keys=("position", "velocity"), mean=(0, 0, 0), std=0.5)
    unstructured = converter.unstructure(config, unstructure_as=OnnxPolicy)
    assert unstructured["preprocess"] == config.preprocess.to_json()
    assert config.to_json()["preprocess"] == unstructured["preprocess"]
    # Without the app's converter (policy_config_from's fallback), the same config.
    assert policy_config_from(table, registry) == config


def test_table_errors_name_the_path() -> None:
    registry = _registry()
    converter = make_converter(registry)
    with pytest.raises(ConfigError) as info:
        policy_config_from(
            {"kind": "onnx", "path": "b.onnx", "preprocess": {"keys": ["a"], "std": 0}},
            registry,
            converter=converter,
        )
    assert "std" in str(info.value) and "non-zero" in str(info.value)
    with pytest.raises(ConfigError) as info:
        policy_config_from(
            {"kind": "onnx", "path": "b.onnx", "preprocess": {"kees": ["a"]}}, registry, converter=converter
        )
    assert "kees" in str(info.value)
