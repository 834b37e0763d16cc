"""Discovery of the observation input, logits output and recurrent state pairs (no model needed)."""

from __future__ import annotations

import pytest

from igym_onnx.config import OnnxConfigError
from igym_onnx.signature import TensorInfo, discover_signature, name_stems


def t(name: str, *shape: int | str, dtype: str = "float32") -> TensorInfo:
    return TensorInfo(name, tuple(shape), dtype)


@pytest.mark.parametrize(
    ("state_in", "state_out"),
    [
        ("state_in", "state_out"),
        ("h_in", "h_out"),
        ("hidden_input", "hidden_output"),
        ("h0", "hn"),
        ("prev_state", "next_state"),
        ("stateIn", "stateOut"),
        ("memory.in", "memory.out"),
        ("in_memory", "out_memory"),
    ],
)
def test_state_pairs_are_found_by_name(state_in: str, state_out: str) -> None:
    sig = discover_signature(
        [t("obs", "batch", 4), t(state_in, "batch", 8)],
        [t("logits", "batch", 3), t(state_out, "batch", 8)],
    )
    assert sig.observation.name == "obs" and sig.logits.name == "logits"
    assert [(p.input.name, p.output.name, p.batch_axis) for p in sig.states] == [(state_in, state_out, 0)]
    assert sig.batchable
    assert "in/out marker" in sig.reasons[state_in]


def test_lstm_style_pairs_with_the_batch_axis_second() -> None:
    sig = discover_signature(
        [t("input", "batch", 4), t("h0", 1, "batch", 8), t("c0", 1, "batch", 8)],
        [
            t("action_logits", "batch", 3),
            t("hn", 1, "batch", 8),
            t("cn", 1, "batch", 8),
            t("value", "batch", 1),
        ],
    )
    assert [(p.input.name, p.output.name, p.batch_axis) for p in sig.states] == [
        ("h0", "hn", 1),
        ("c0", "cn", 1),
    ]
    assert sig.observation.name == "input"
    assert sig.logits.name == "action_logits" and "'logits'" in sig.reasons["action_logits"]
    assert sig.ignored_outputs == ("value",)


def test_shapes_must_match_for_a_pair() -> None:
    with pytest.raises(OnnxConfigError, match="neither the observation nor recurrent state"):
        discover_signature(
            [t("obs", "batch", 4), t("h_in", "batch", 8)], [t("logits", "batch", 3), t("h_out", "batch", 9)]
        )


def test_configured_names_win() -> None:
    sig = discover_signature(
        [t("a", "batch", 4), t("b", "batch", 8)],
        [t("c", "batch", 8), t("d", "batch", 3)],
        observation_input="a",
        logits_output="d",
        state_inputs=["b"],
        state_outputs=["c"],
    )
    assert (sig.observation.name, sig.logits.name, sig.states[0].input.name) == ("a", "d", "b")
    assert sig.reasons["a"] == "observation input named in the config"
    with pytest.raises(OnnxConfigError, match="'zz', which the model does not have"):
        discover_signature([t("a", "batch", 4)], [t("d", "batch", 3)], logits_output="zz")


def test_ambiguity_and_unusable_models_say_what_to_set() -> None:
    with pytest.raises(OnnxConfigError, match="set observation_input"):
        discover_signature([t("a", "batch", 4), t("b", "batch", 4)], [t("logits", "batch", 3)])
    with pytest.raises(OnnxConfigError, match="float logits"):
        discover_signature([t("obs", "batch", 4)], [t("action", "batch", dtype="int64")])
    with pytest.raises(OnnxConfigError, match="fixed batch size of 8"):
        discover_signature([t("obs", 8, 4)], [t("logits", 8, 3)])
    with pytest.raises(OnnxConfigError, match="more than one dimension of unknown size"):
        discover_signature(
            [t("obs", "batch", 4), t("h_in", "batch", "n")],
            [t("logits", "batch", 3), t("h_out", "batch", "n")],
        )


def test_a_fixed_batch_of_one_is_not_batchable() -> None:
    sig = discover_signature([t("obs", 1, 4), t("h_in", 1, 8)], [t("logits", 1, 3), t("h_out", 1, 8)])
    assert not sig.batchable and sig.states[0].batch_axis == 0
    assert sig.row_shape == (4,)


def test_stems() -> None:
    assert name_stems("state_in", side="in") >= {"state"}
    assert name_stems("h0", side="in") == {"h"}
    assert "h" in name_stems("hn", side="out")
    assert name_stems("logits", side="out") == set()
    assert name_stems("in", side="in") == set()
