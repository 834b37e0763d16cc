"""The plugin as installed: its entry point, what it registers, the files it serves, its wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from litestar.testing import TestClient

from igym_core import EndScene, Experiment
from igym_core.plugins.manager import create_plugin_manager
from igym_core.testing import make_test_app
from igym_onnx import plugin

ROOT = Path(__file__).resolve().parents[3]


def test_the_entry_point_names_the_plugin_module() -> None:
    (entry,) = [e for e in entry_points(group="igym") if e.name == "onnx"]
    assert entry.value == "igym_onnx.plugin" and entry.load() is plugin


def test_registers_the_policy_kind_the_command_and_the_browser_files() -> None:
    plugins = create_plugin_manager(autoload=False, extra=[plugin], strict=True)
    assert "onnx" in plugins.registry.policy_loaders
    assert "onnx" in plugins.registry.commands
    (assets,) = [a for a in plugins.client_assets() if a.plugin == "onnx"]
    assert assets.entry is None  # participant pages do not load ONNX code unless a runtime imports it


def test_the_browser_module_and_onnxruntime_web_are_served(tmp_path: Path) -> None:
    app = make_test_app(
        Experiment(experiment_id="x", scenes=(EndScene(scene_id="end"),)), tmp_path, extra_plugins=[plugin]
    )
    with TestClient(app) as client:
        module = client.get("/plugins/onnx/igym_onnx.js")
        assert module.status_code == 200 and "javascript" in module.headers["content-type"]
        assert "export async function createPolicy" in module.text
        wasm = client.get("/plugins/onnx/ort/ort-wasm-simd-threaded.wasm")
        assert wasm.status_code == 200, "onnxruntime-web is not built: run `make build`"
        assert wasm.headers["content-type"] == "application/wasm"
        assert (
            client.get("/plugins/onnx/ort/ort.wasm.min.mjs")
            .headers["content-type"]
            .startswith("text/javascript")
        )


def test_the_wheel_ships_the_browser_files(tmp_path: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH; `make test` installs it")
    subprocess.run(
        [uv, "build", "--package", "igym-onnx", "--wheel", "-o", str(tmp_path), "-q"],
        cwd=ROOT,
        check=True,
        timeout=180,
    )
    (wheel,) = tmp_path.glob("igym_onnx-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "igym_onnx/plugin.py",
        "igym_onnx/py.typed",
        "igym_onnx/static/igym_onnx.js",
        "igym_onnx/static/ort/ort.wasm.min.mjs",
        "igym_onnx/static/ort/ort-wasm-simd-threaded.wasm",
    ):
        assert required in names, f"{required} is missing from {wheel.name}"
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Dist: onnxruntime" in metadata
    assert "Requires-Dist: onnx>=1.17; extra == 'test'" in metadata  # onnx only for tests
