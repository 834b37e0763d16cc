"""What this plugin's browser tests share (beside :class:`igym_core.testing.LiveServer` and
:func:`igym_core.testing.support.in_chromium`): while igym-pyodide-p2p's package service is not in
this tree, a stand-in for it.

The stand-in serves what the service would (its manifest at /plugins/pyodide_p2p/manifest.json,
Pyodide's files from npm, one archive of the browser's Python) through Playwright routes. The
archive holds the igym_core modules the browser code declares (``CORE_MODULES``, package
``__init__`` files empty, as in the lean build), igym_pyodide_p2p.browser, the slime env and attrs.
When the server's own manifest has the test's scenes, :class:`Standin` lets every request through
(unless told to stand in ``always``: a test that shapes the manifest or the bundle itself).
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from igym_pyodide_p2p.browser import CORE_MODULES

PLUGIN = Path(__file__).resolve().parents[1]
PYODIDE = PLUGIN / "frontend" / "node_modules" / "pyodide"
PYODIDE_URL = "/test-pyodide/"
BUNDLE_URL = "/test-packages/browser-bundle.zip"
MANIFEST_URL = "/plugins/pyodide_p2p/manifest.json"
_TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
}


def browser_bundle(extra: dict[str, Path] | None = None) -> bytes:
    """A zip, laid out as site-packages, of what the browser imports (see the module docstring),
    plus ``extra`` modules (module file name → source file)."""
    import attr
    import attrs

    import igym_core
    import igym_pyodide_p2p
    import igym_slime

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        core = Path(igym_core.__file__).parent
        packages = {"igym_core/__init__.py"}
        for name in CORE_MODULES:
            parts = name.split(".")
            for depth in range(2, len(parts)):
                packages.add("/".join(parts[:depth]) + "/__init__.py")
            bundle.write(core / Path(*parts[1:]).with_suffix(".py"), "/".join(parts) + ".py")
        for init in sorted(packages):
            bundle.writestr(init, "")
        for package in (igym_pyodide_p2p, igym_slime, attr, attrs):
            root = Path(package.__file__).parent
            for path in root.rglob("*"):
                if path.suffix not in (".py", ".typed") or "__pycache__" in path.parts:
                    continue
                if package is igym_pyodide_p2p and path.parts[len(root.parts)] not in (
                    "__init__.py",
                    "browser",
                ):
                    continue
                bundle.write(path, f"{root.name}/{path.relative_to(root).as_posix()}")
        for name, path in (extra or {}).items():
            bundle.write(path, name)
    return out.getvalue()


class Standin:
    """igym-pyodide-p2p's package service as Playwright routes (for ``scene_ids``), unless the
    server has the real one; every other request goes through if it is loopback, else is refused."""

    def __init__(
        self,
        server_url: str,
        scene_ids: tuple[str, ...],
        extra: dict[str, Path] | None = None,
        *,
        always: bool = False,
    ) -> None:
        """``always``: stand in even when the server has the service (a test that shapes the
        manifest or the bundle itself)."""
        if not (PYODIDE / "pyodide.asm.wasm").is_file():
            pytest.fail(f"Pyodide is not installed at {PYODIDE}; run `npm install` in {PYODIDE.parents[1]}.")
        self.server_url = server_url
        self.real = not always and _serves(server_url + MANIFEST_URL, scene_ids)
        self.blocked: list[str] = []
        self.bundle = browser_bundle(extra)
        self.files = {f"{PYODIDE_URL}{p.name}": p for p in PYODIDE.iterdir() if p.is_file()}
        wheel = {"project": "bundle", "filename": "bundle.zip", "url": BUNDLE_URL, "bytes": len(self.bundle)}
        self.manifest = {
            "pyodide": {
                "index_url": PYODIDE_URL,
                "bytes": sum(p.stat().st_size for p in self.files.values()),
            },
            "micropip": None,
            "index_url": "/plugins/pyodide_p2p/simple",
            "extra_index_url": None,
            "scenes": {scene_id: {"wheels": [wheel], "extra": []} for scene_id in scene_ids},
        }

    def route(self, route: Any) -> None:
        url = route.request.url
        path = url.removeprefix(self.server_url).split("?")[0]
        if not self.real and path in self.files:
            body = self.files[path].read_bytes()
            content_type = _TYPES.get(self.files[path].suffix, "application/octet-stream")
            route.fulfill(status=200, body=body, content_type=content_type)
        elif not self.real and path == MANIFEST_URL:
            route.fulfill(status=200, body=json.dumps(self.manifest), content_type="application/json")
        elif not self.real and path == BUNDLE_URL:
            route.fulfill(status=200, body=self.bundle, content_type="application/zip")
        elif url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


def _serves(url: str, scene_ids: tuple[str, ...]) -> bool:
    """Whether the server's manifest (at ``url``) has packages for every one of ``scene_ids``."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            manifest = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return isinstance(manifest, dict) and all(s in (manifest.get("scenes") or {}) for s in scene_ids)
