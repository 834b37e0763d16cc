"""Models built once per test session with onnx.helper (no downloaded weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

from igym_onnx.model import clear_model_cache
from igym_onnx.testing import gru_model, mlp_model, recurrent_model, save_model


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of small models: mlp (4 → 3, plus a 'value' output), rnn, gru, static (batch 1),
    dict_mlp (5 → 4), int_mlp (int64 input)."""
    directory = tmp_path_factory.mktemp("models")
    save_model(mlp_model(4, 3, hidden=(16,), seed=1, extra_outputs=("value",)), directory / "mlp.onnx")
    save_model(recurrent_model(4, 8, 3, seed=2), directory / "rnn.onnx")
    save_model(gru_model(4, 6, 3, seed=3), directory / "gru.onnx")
    save_model(mlp_model(4, 3, seed=4, batch=1), directory / "static.onnx")
    save_model(mlp_model(5, 4, hidden=(8, 8), seed=5), directory / "dict_mlp.onnx")
    save_model(mlp_model(3, 5, seed=6, input_dtype="int64"), directory / "int_mlp.onnx")
    return directory


@pytest.fixture(autouse=True)
def _fresh_model_cache() -> None:
    clear_model_cache()
