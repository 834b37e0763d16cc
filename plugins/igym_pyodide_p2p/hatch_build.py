"""Hatch build hook: a wheel or sdist of igym-pyodide-p2p always carries Pyodide's files.

``src/igym_pyodide_p2p/static/pyodide/`` is a build output of ``frontend/`` (npm's Pyodide, six files
copied by ``frontend/build.mjs``, and micropip's wheel, which it downloads from PyPI with pip, pinned
and hash-checked in ``frontend/micropip.txt``), gitignored and shipped through hatch ``artifacts``.
Without it the wheel installs, and every game scene with ``runtime="pyodide"`` fails to load in the
browser. So the hook builds the files (``npm ci`` if ``frontend/node_modules`` is missing, then
``npm run build``) when they are missing or older than ``frontend/``'s inputs, and fails with the
command to run when npm is not there. Editable installs (``uv sync``) are left alone: ``make build``
makes the files.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

OUTPUT = Path("src/igym_pyodide_p2p/static/pyodide/VERSION")
INPUTS = ("package.json", "package-lock.json", "build.mjs", "micropip.txt")


class PyodideFilesError(RuntimeError):
    """Pyodide's files are missing and cannot be built here."""


class PyodideFilesHook(BuildHookInterface):
    PLUGIN_NAME = "igym-pyodide-files"

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
            raise PyodideFilesError(
                f"igym-pyodide-p2p: Pyodide's files ({OUTPUT.parent}) are missing or older than "
                f"{frontend}, and npm is not on PATH to build them. Install node/npm and build again, "
                f"or build them first: `cd {frontend} && npm ci && npm run build` (or `make build` at "
                "the igym repository's root)."
            )
        steps = [[npm, "run", "build"]]
        if not (frontend / "node_modules").is_dir():
            steps.insert(0, [npm, "ci", "--no-audit", "--no-fund"])
        for command in steps:
            result = subprocess.run(command, cwd=frontend, check=False)
            if result.returncode != 0:
                raise PyodideFilesError(
                    f"igym-pyodide-p2p: `{' '.join(command[1:])}` in {frontend} exited with "
                    f"{result.returncode} (its output is above). Fix that, then build again."
                )
        if not output.is_file():
            raise PyodideFilesError(
                f"igym-pyodide-p2p: `npm run build` in {frontend} did not write {output}."
            )
