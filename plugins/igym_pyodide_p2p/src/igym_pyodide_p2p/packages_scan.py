"""What the browser's modules import: imported in a fresh Python process (:func:`scan_imports`), or,
when no such process can run, read from their source (:func:`static_scan`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from igym_pyodide_p2p.packages_lean import _module_level_imports
from igym_pyodide_p2p.packages_model import PackageError, ScanUnavailableError

_SCAN_TIMEOUT_S = 120.0

_SCAN_SCRIPT = r"""
import importlib, json, sys, traceback
request = json.loads(sys.argv[1])
baseline = set(sys.modules)
sys.path[:0] = request["path_first"]
sys.path.extend(request["path_last"])
errors = {}
for role, module in request["modules"].items():
    try:
        importlib.import_module(module)
    except BaseException as exc:
        errors[role] = {"type": type(exc).__name__, "message": str(exc), "name": getattr(exc, "name", None)}
loaded = {}
for name, module in list(sys.modules.items()):
    if name in baseline or module is None:
        continue
    loaded[name] = getattr(module, "__file__", None)
print("\n@@igym-scan@@" + json.dumps({"loaded": loaded, "errors": errors}))
"""


@attrs.frozen(kw_only=True)
class ImportScan:
    """What importing the browser's modules in a fresh process loaded (module → file or None)."""

    loaded: Mapping[str, str | None]
    errors: Mapping[str, Mapping[str, Any]]


def scan_imports(
    modules: Mapping[str, str], *, path_first: Sequence[Path] = (), path_last: Sequence[Path] = ()
) -> ImportScan:
    """Import ``modules`` (role → module name) in a fresh interpreter; report what got loaded.

    ``path_first`` go before ``sys.path`` (the lean builds), ``path_last`` after it (the
    experiment's folder, as igym run imports from it).
    """
    request = {
        "modules": dict(modules),
        "path_first": [str(p) for p in path_first],
        "path_last": [str(p) for p in path_last],
    }
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        result = subprocess.run(
            [sys.executable, "-I", "-c", _SCAN_SCRIPT, json.dumps(request)],
            capture_output=True,
            text=True,
            timeout=_SCAN_TIMEOUT_S,
            env=env,
            check=False,
        )
    except OSError as exc:
        raise ScanUnavailableError(f"{sys.executable!r} could not be started: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise PackageError(
            f"importing {', '.join(sorted(set(modules.values())))} to see what the browser needs took "
            f"over {_SCAN_TIMEOUT_S:.0f} s. Importing a module should not run the study: move slow "
            "work out of module level."
        ) from exc
    marker = result.stdout.rfind("@@igym-scan@@")
    if marker < 0:
        raise ScanUnavailableError(
            f"importing {', '.join(sorted(set(modules.values())))} in a fresh Python process to see "
            f"what the browser needs failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}"
        )
    data = json.loads(result.stdout[marker + len("@@igym-scan@@") :])
    return ImportScan(loaded=data["loaded"], errors=data["errors"])


def static_scan(modules: Mapping[str, str], lean: Mapping[str, Path]) -> ImportScan:
    """What importing ``modules`` (role → module) would load, read from the source: module-level
    imports, followed from module to module (the fallback of :func:`scan_imports`).

    ``lean``: the modules of the lean builds (module → file); any other module of their top-level
    packages is reported as missing, as the browser would. Less exact than importing (an import
    made by code that runs at import time, such as ``importlib.import_module``, is not seen).
    """
    import importlib.util

    lean_tops = {name.partition(".")[0] for name in lean}
    loaded: dict[str, str | None] = {}
    errors: dict[str, dict[str, Any]] = {}
    for role, root in modules.items():
        queue = [root]
        while queue:
            name = queue.pop()
            if not name or name in loaded:
                continue
            top = name.partition(".")[0]
            parent = name.rpartition(".")[0]
            if top in sys.stdlib_module_names:
                loaded[name] = None
                continue
            if top in lean_tops:
                if name not in lean:
                    if parent in lean and parent != top:
                        continue  # `from package.module import name`: an attribute
                    errors.setdefault(
                        role,
                        {"type": "ModuleNotFoundError", "message": f"No module named {name!r}", "name": name},
                    )
                    continue
                path: Path | None = lean[name]
            else:
                try:
                    spec = importlib.util.find_spec(name)
                except (ImportError, ValueError):
                    spec = None
                if spec is None:
                    # `from module import name` (an attribute), or an import under a condition or
                    # in a try block (optional, or for another Python version): only the module
                    # the browser imports by name must be found here.
                    if name == root:
                        errors.setdefault(
                            role,
                            {
                                "type": "ModuleNotFoundError",
                                "message": f"No module named {name!r}",
                                "name": name,
                            },
                        )
                    continue
                origin = spec.origin if spec.origin not in ("built-in", "frozen") else None
                path = Path(origin) if origin else None
            loaded[name] = str(path) if path else None
            if parent:
                queue.append(parent)
            if path is None or path.suffix != ".py" or (top in lean_tops and name == top):
                continue  # compiled, built in, a namespace package, or a lean build's empty __init__
            queue.extend(_module_level_imports(path, name, path.name == "__init__.py"))
    return ImportScan(loaded=loaded, errors=errors)
