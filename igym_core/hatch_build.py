"""Hatch build hook: a wheel or sdist of igym-core always carries the browser client.

The client (``src/igym_core/client/``) is a build output of ``frontend/`` in the igym repository,
gitignored and shipped through hatch ``artifacts``. Without it a wheel installs fine but cannot serve
a single page, so:

- in a checkout (``../frontend`` exists), the hook builds the client when it is missing or older
  than the frontend's sources (``npm ci`` if ``node_modules`` is missing, then ``npm run build``);
  without node/npm it fails with the command to run;
- in an unpacked sdist (no ``frontend/``), the client must already be there: the sdist carries it,
  because it is built from a checkout by this same hook;
- editable installs (``uv sync``) are left alone: the repository's Makefile builds the client, and
  the server says so when it is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

CLIENT_ENTRY = Path("src/igym_core/client/igym.js")
#: What the frontend build reads; the client is stale when any of it is newer than igym.js.
FRONTEND_INPUTS = ("src", "build.mjs", "package.json", "package-lock.json", "tsconfig.json")


class ClientBuildError(RuntimeError):
    """The browser client is missing and cannot be built here."""


class ClientBuildHook(BuildHookInterface):
    PLUGIN_NAME = "igym-client"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        root = Path(self.root)
        client = root / CLIENT_ENTRY
        frontend = root.parent / "frontend"
        if (frontend / "package.json").is_file():
            if _stale(client, frontend):
                _build_client(frontend, client)
        elif not client.is_file():
            raise ClientBuildError(
                f"igym-core: the browser client ({CLIENT_ENTRY}) is missing from this source tree, and "
                f"there is no frontend/ next to it ({frontend}) to build it from. A wheel without it "
                "cannot serve a page. Build igym-core from an igym checkout with node/npm installed "
                "(`uv build --package igym-core` at the repository root builds the client first), or "
                "install a wheel or sdist built that way."
            )


def _stale(client: Path, frontend: Path) -> bool:
    if not client.is_file():
        return True
    built = client.stat().st_mtime
    for name in FRONTEND_INPUTS:
        path = frontend / name
        files = path.rglob("*") if path.is_dir() else [path]
        if any(f.is_file() and f.stat().st_mtime > built for f in files):
            return True
    return False


def _build_client(frontend: Path, client: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise ClientBuildError(
            f"igym-core: the browser client ({client}) is missing or older than {frontend}, and npm is "
            "not on PATH to build it. Install node/npm and build again, or build the client first: "
            f"`cd {frontend} && npm ci && npm run build` (or `make build` at the repository root)."
        )
    steps = [[npm, "run", "build"]]
    if not (frontend / "node_modules").is_dir():
        steps.insert(0, [npm, "ci", "--no-audit", "--no-fund"])
    for command in steps:
        result = subprocess.run(command, cwd=frontend, check=False)
        if result.returncode != 0:
            raise ClientBuildError(
                f"igym-core: building the browser client failed: `{' '.join(command[1:])}` in {frontend} "
                f"exited with {result.returncode} (its output is above). Fix that, then build again."
            )
    if not client.is_file():
        raise ClientBuildError(
            f"igym-core: `npm run build` in {frontend} succeeded but {client} is still missing: "
            "frontend/build.mjs must write the client into igym_core/src/igym_core/client/."
        )
