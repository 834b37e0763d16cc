"""Hatch build hook: a wheel or sdist of igym-onnx always carries onnxruntime-web's files.

``src/igym_onnx/static/ort/`` is a build output of ``frontend/`` (npm's onnxruntime-web, three files
copied by ``frontend/build.mjs``), gitignored and shipped through hatch ``artifacts``. Without it the
wheel installs, server-side bots work, and every browser-side use of a model fails. So the hook
copies the files (``npm ci`` if ``frontend/node_modules`` is missing, then ``npm run build``) when
they are missing or older than ``frontend/``'s package files, and fails with the command to run
when npm is not there. Editable installs (``uv sync``) are left alone: ``make build`` makes the files.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

OUTPUT = Path("src/igym_onnx/static/ort/ort-wasm-simd-threaded.wasm")
INPUTS = ("package.json", "package-lock.json", "build.mjs")


class OrtFilesError(RuntimeError):
    """onnxruntime-web's files are missing and cannot be copied here."""


class OrtFilesHook(BuildHookInterface):
    PLUGIN_NAME = "igym-onnx-ort"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        root = Path(self.root)
        output, frontend = root / OUTPUT, root / "frontend"
        if output.is_file() and not any(
            (frontend / name).is_file() and (frontend / name).stat().st_mtime > output.stat().st_mtime
            for name in INPUTS
        ):
            return
        npm = shutil.which("npm")
        if npm is None or not (frontend / "package.json").is_file():
            raise OrtFilesError(
                f"igym-onnx: onnxruntime-web's files ({OUTPUT}) are missing or older than {frontend}, "
                "and npm is not on PATH to copy them. Install node/npm and build again, or copy them "
                f"first: `cd {frontend} && npm ci && npm run build` (or `make build` at the igym "
                "repository's root)."
            )
        steps = [[npm, "run", "build"]]
        if not (frontend / "node_modules").is_dir():
            steps.insert(0, [npm, "ci", "--no-audit", "--no-fund"])
        for command in steps:
            result = subprocess.run(command, cwd=frontend, check=False)
            if result.returncode != 0:
                raise OrtFilesError(
                    f"igym-onnx: `{' '.join(command[1:])}` in {frontend} exited with {result.returncode} "
                    "(its output is above). Fix that, then build again."
                )
        if not output.is_file():
            raise OrtFilesError(f"igym-onnx: `npm run build` in {frontend} did not write {output}.")
