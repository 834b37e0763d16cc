"""Which Python packages a browser-run game scene needs, where each comes from, and their wheels.

A scene with ``runtime="pyodide"`` runs its env factory, render function, HUD function and Python bot
policies in the participant's browser. What they import is found by importing them in a fresh Python
process (:func:`scan_imports`), with igym-core replaced by its lean browser build
(:data:`LEAN_BUILDS`): every module that process loads is what the browser will load. Each loaded
module is then traced to where it comes from (:func:`plan_scene_packages`):

- the standard library: Pyodide has it;
- an installed distribution (``importlib.metadata.packages_distributions()``; an editable install by
  its source folder): a wheel built from the installed files (or the source tree), if it is pure
  Python; otherwise the extra index (``IGYM_PYODIDE_EXTRA_INDEX_URL``), if one is set, or a refusal;
- igym-core (and this plugin's browser code): a lean wheel of only the modules the browser needs;
- a plain file of the study (``env_factory="envs.py:make_env"``, or a module beside the experiment
  that is not installed): a wheel ``igym-study-<module>`` built from the file.

:func:`check_scene_packages` is the ``igym check`` answer (problems, notes) the runtime gives from
``Runtime.check_scene``; :func:`build_wheels` makes the wheels the package index serves
(``index.py``). Wheels are built reproducibly (fixed timestamps, sorted entries), so their content
hash, and so their URL, stays the same from one server start to the next while nothing changed.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import csv
import hashlib
import importlib.metadata as metadata
import io
import json
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import weakref
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import structlog

from igym_core.errors import IgymError

if TYPE_CHECKING:
    from igym_core.settings import Settings

__all__ = [
    "LEAN_BUILDS",
    "BrowserPackage",
    "PackageError",
    "ScenePackages",
    "Wheel",
    "browser_roots",
    "build_wheels",
    "check_scene_packages",
    "lean_builds",
    "lean_modules",
    "normalize",
    "plan_scene_packages",
    "scan_imports",
    "scene_packages",
    "static_scan",
]

log = structlog.get_logger(__name__)

#: The setting that lets the browser install packages that are not pure Python.
EXTRA_INDEX_VARIABLE = "IGYM_PYODIDE_EXTRA_INDEX_URL"

#: Distributions the browser gets as a lean build: only the modules reachable (by module-level
#: imports) from these roots, with a top-level ``__init__`` that imports nothing. ``import
#: igym_core`` would otherwise pull the whole server stack (Litestar, msgpack, structlog, ...).
LEAN_BUILDS: Mapping[str, tuple[str, ...]] = {
    "igym-core": (
        "igym_core.errors",
        "igym_core.config.validators",
        "igym_core.rendering.interface",
        "igym_core.rendering.objects",
        "igym_core.rendering.delta",
        "igym_core.builtin.gym_keys",
    ),
    # The runtime's own Python that runs in the browser (the stepping code), if this plugin has it.
    "igym-pyodide-p2p": ("igym_pyodide_p2p.browser",),
}

Source = Literal["installed", "source", "lean", "study", "extra-index"]

_SCAN_TIMEOUT_S = 120.0
#: Where every wheel's files claim to be dated (a zip cannot say 1970): reproducible wheels.
_ZIP_DATE = (2020, 2, 2, 0, 0, 0)
_EXTENSION_SUFFIXES = (".so", ".pyd", ".dylib", ".dll", ".wasm")


class PackageError(IgymError):
    """A browser-run scene's packages cannot be worked out or built."""


class ScanUnavailableError(PackageError):
    """No fresh Python process could import the scene's code (no usable interpreter, or it died):
    :func:`static_scan` reads the imports from the source instead."""


def normalize(name: str) -> str:
    """A project name as PEP 503 compares it (``Foo_Bar`` -> ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@attrs.frozen(kw_only=True)
class BrowserPackage:
    """One distribution the browser needs, and where it comes from."""

    project: str
    """The distribution's name as installed (``igym-slime``)."""
    version: str
    source: Source
    """``installed`` (a wheel of the installed files), ``source`` (an editable install's source tree),
    ``lean`` (igym's lean browser build), ``study`` (the study's own file), ``extra-index``."""
    top_level: tuple[str, ...]
    """The import names it provides that the browser loads."""
    location: str
    """Where its files are (a folder, or the study file)."""
    not_pure: str | None = None
    """Why it is not pure Python (a compiled file, or the wheel tag), or None."""

    def describe(self, *, paths: bool = True) -> str:
        """Where it comes from, for ``igym check``; ``paths=False`` leaves out where it is on this
        machine (for what participants' browsers receive: the manifest)."""
        folder = f" ({self.location})" if paths else ""
        study_file = self.location if paths else Path(self.location).name
        where = {
            "installed": f"igym's index: built from installed {self.project} {self.version}",
            "source": f"igym's index: built from the source tree of {self.project} {self.version}{folder}",
            "lean": f"igym's index: igym's lean browser build of {self.project} {self.version} "
            f"({', '.join(self.top_level)})",
            "study": f"igym's index: built from the study's source file {study_file}",
            "extra-index": "the extra index (IGYM_PYODIDE_EXTRA_INDEX_URL), not pure Python: "
            f"{self.not_pure if paths else 'it has compiled code'}; the server has {self.version}",
        }[self.source]
        return f"{self.project}: {where}"


@attrs.frozen(kw_only=True)
class ScenePackages:
    """What the browser needs for one game scene (see the module docstring)."""

    scene_id: str
    imports: Mapping[str, str]
    """What the browser imports, by role: ``env_factory``, ``render_fn``, ``hud``, ``policy:<agent>``
    → ``module:attribute`` (as the browser names it: a study file is imported by its stem)."""
    packages: tuple[BrowserPackage, ...]
    stdlib: tuple[str, ...]
    """Standard-library modules it loads (Pyodide has them)."""
    problems: tuple[str, ...] = ()
    fallback: str | None = None
    """Why the imports were read from the source instead of imported (see :func:`static_scan`)."""

    def notes(self) -> list[str]:
        """One line per package the browser installs, and one for the standard library (``igym
        check`` prints each under the scene's path)."""
        lines = [f"browser package {package.describe()}" for package in self.packages]
        if self.stdlib:
            shown = ", ".join(self.stdlib[:12]) + (", ..." if len(self.stdlib) > 12 else "")
            lines.append(f"browser standard library ({len(self.stdlib)} modules: {shown}): Pyodide's own")
        if self.fallback:
            lines.append(
                "browser packages found by reading the code's imports, not by importing it "
                f"({self.fallback}): an import made while the code runs may be missing"
            )
        return lines


@attrs.frozen(kw_only=True)
class Wheel:
    """A built wheel: its file name, bytes and SHA-256 (hex)."""

    project: str
    version: str
    filename: str
    data: bytes = attrs.field(repr=False)
    sha256: str


# --- what the browser imports --------------------------------------------------------------------


def browser_roots(scene: Any, prepared: Any) -> dict[str, Any]:
    """The Python objects of ``scene`` that run in the browser, by role (resolved callables)."""
    roots: dict[str, Any] = {"env_factory": prepared.env_factory}
    if prepared.render_fn is not None:
        roots["render_fn"] = prepared.render_fn
    if prepared.hud is not None:
        roots["hud"] = prepared.hud
    bots = dict(getattr(prepared, "bots", {}) or {})
    partner = getattr(prepared, "partner", None)
    if partner is not None:
        for seat in prepared.human_seats:
            bots[f"partner:{seat}"] = partner
    for agent, (config, _bot) in sorted(bots.items()):
        target = getattr(config, "target", None)
        if target is None or (isinstance(target, str) and ":" not in target):
            continue  # random, or a kind that runs in JS (onnx): no Python to ship
        if isinstance(target, str):
            from igym_core.envs import import_object

            target = import_object(target, what=f"policy for {agent!r}", base_dir=prepared.base_dir)
        name = agent if agent.startswith("partner:") else f"policy:{agent}"
        roots[name] = target
    return roots


def _module_of(value: Any, *, instance: bool = False) -> tuple[str, str]:
    """``(module name, qualified attribute)`` of a function or class (or, with ``instance``, of an
    object's class: a policy object)."""
    named = isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__"))
    target = value if named or not instance else type(value)
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    found: Any = sys.modules.get(module or "")
    for part in (qualname or "").split("."):
        found = getattr(found, part, None)
    if not module or not qualname or "<" in qualname or found is not target:
        raise PackageError(
            f"{value!r} cannot be imported in the browser: it is not reachable by its name (a lambda, "
            "a function defined inside another, a functools.partial or a bound method). Define a "
            "function or class at the top level of a module and name that."
        )
    return module, qualname


# --- the lean builds ----------------------------------------------------------------------------


def _module_file(name: str) -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return None
    return Path(spec.origin)


def _module_level_imports(path: Path, module: str, is_package: bool) -> set[str]:
    """Absolute names a module imports when it is imported (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: Iterable[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                test = node.test
                if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                    visit(node.orelse)
                    continue
                if isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
                    visit(node.orelse)
                    continue
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def lean_modules(roots: Sequence[str], packages: Sequence[str]) -> dict[str, Path]:
    """The modules of the top-level ``packages`` reachable from ``roots`` by module-level imports.

    Returns module name → source file, with every parent package's ``__init__`` (a package root
    in ``roots`` brings all its modules). Roots that do not exist are skipped.
    """
    tops = set(packages)
    seen: dict[str, Path] = {}
    queue: list[str] = []
    for root in roots:
        path = _module_file(root)
        if path is None:
            continue
        if path.name == "__init__.py":
            for file in sorted(path.parent.rglob("*.py")):
                relative = file.relative_to(path.parent).with_suffix("")
                parts = [p for p in relative.parts if p != "__init__"]
                queue.append(".".join([root, *parts]))
        else:
            queue.append(root)
    while queue:
        name = queue.pop()
        if name in seen or name.partition(".")[0] not in tops:
            continue
        path = _module_file(name)
        if path is None or path.suffix != ".py":
            continue  # `from package import name` where name is an attribute, not a module
        seen[name] = path
        parent = name.rpartition(".")[0]
        if parent:
            queue.append(parent)
        if name in tops:
            continue  # a top-level __init__ is replaced by one that imports nothing (lean_builds)
        queue.extend(_module_level_imports(path, name, path.name == "__init__.py"))
    return seen


def _lean_tops() -> set[str]:
    """Top-level packages of the installed lean builds."""
    tops: set[str] = set()
    for project, roots in LEAN_BUILDS.items():
        try:
            metadata.version(project)
        except metadata.PackageNotFoundError:
            continue
        tops.update(root.partition(".")[0] for root in roots)
    return tops


def lean_builds() -> dict[str, tuple[str, dict[str, bytes]]]:
    """Each installed lean build: project → (version, archive name → bytes).

    One closure over all of :data:`LEAN_BUILDS`' roots, so that igym-core's build also holds what the
    runtime's browser code imports from it. Each top-level ``__init__`` is replaced by one that
    imports nothing (``igym_core/__init__.py`` imports the server's configuration classes).
    """
    versions: dict[str, str] = {}
    tops: dict[str, str] = {}  # top-level name → project
    roots: list[str] = []
    for project, project_roots in LEAN_BUILDS.items():
        try:
            versions[project] = metadata.version(project)
        except metadata.PackageNotFoundError:
            continue
        roots.extend(project_roots)
        for root in project_roots:
            tops[root.partition(".")[0]] = project
    modules = lean_modules(roots, sorted(tops))
    builds: dict[str, tuple[str, dict[str, bytes]]] = {}
    for name, path in sorted(modules.items()):
        top = name.partition(".")[0]
        project = tops[top]
        files = builds.setdefault(project, (versions[project], {}))[1]
        arcname = "/".join(name.split(".")) + ("/__init__.py" if path.name == "__init__.py" else ".py")
        files[arcname] = path.read_bytes()
    for top, project in tops.items():
        if project not in builds:
            continue
        version, files = builds[project]
        if not any(name.startswith(f"{top}/") for name in files):
            continue
        files[f"{top}/__init__.py"] = (
            f'"""{project} {version}: igym\'s lean browser build (only the modules the browser '
            f'needs)."""\n\n__version__ = {version!r}\n'
        ).encode()
        origin = _module_file(top)
        if origin is not None and (origin.parent / "py.typed").is_file():
            files[f"{top}/py.typed"] = b""
    return builds


# --- the import scan ------------------------------------------------------------------------------

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


# --- from loaded modules to distributions -----------------------------------------------------------


def _stdlib_paths() -> tuple[str, ...]:
    paths = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib")}
    return tuple(str(Path(p).resolve()) + os.sep for p in paths if p)


def _editable_sources() -> dict[str, tuple[metadata.Distribution, Path]]:
    """Editable installs: import root (the folder their ``.pth`` file puts on ``sys.path``, such as
    ``src/``; else the project folder) → (distribution, root)."""
    out: dict[str, tuple[metadata.Distribution, Path]] = {}
    for dist in metadata.distributions():
        text = dist.read_text("direct_url.json")
        if not text:
            continue
        try:
            info = json.loads(text)
        except ValueError:
            continue
        if not info.get("dir_info", {}).get("editable") or not str(info.get("url", "")).startswith("file://"):
            continue
        roots: list[Path] = []
        for file in dist.files or ():
            if not file.name.endswith(".pth"):
                continue
            located = Path(str(dist.locate_file(file)))
            if not located.is_file():
                continue
            for line in located.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith(("#", "import ")) and Path(line).is_dir():
                    roots.append(Path(line).resolve())
        for root in roots or [Path(info["url"][len("file://") :]).resolve()]:
            out[str(root) + os.sep] = (dist, root)
    return out


def _not_pure(dist: metadata.Distribution, tops: Iterable[str], folders: Iterable[Path]) -> str | None:
    """Why a distribution is not pure Python (a compiled file, a platform wheel tag), or None."""
    wheel = dist.read_text("WHEEL") or ""
    tags = [line.partition(":")[2].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    for tag in tags:
        _python, _, rest = tag.partition("-")
        abi, _, platform = rest.partition("-")
        if abi != "none" or platform != "any":
            return f"its wheel is tagged {tag}, not py3-none-any"
    if re.search(r"^Root-Is-Purelib:\s*false", wheel, re.MULTILINE | re.IGNORECASE):
        return "its wheel is not pure Python (Root-Is-Purelib: false)"
    for file in dist.files or ():
        if file.name.endswith(_EXTENSION_SUFFIXES) or ".so." in file.name:
            return f"it has compiled code ({file})"
    for folder in folders:
        for top in tops:
            package = folder / top
            if package.is_dir():
                for path in package.rglob("*"):
                    if path.name.endswith(_EXTENSION_SUFFIXES):
                        return f"it has compiled code ({path})"
    return None


def plan_scene_packages(scene: Any, prepared: Any, settings: Settings | None = None) -> ScenePackages:
    """Work out what the browser needs for ``scene`` (see the module docstring). Problems are
    collected in the result, never raised, except when the scan itself cannot run."""
    extra_index = getattr(settings, "pyodide_extra_index_url", None) if settings is not None else None
    base_dir = Path(prepared.base_dir).resolve()
    problems: list[str] = []
    where = f"scene {scene.scene_id!r} (runtime 'pyodide')"

    imports: dict[str, str] = {}
    modules: dict[str, str] = {}
    study_files: dict[str, Path] = {}
    fallback: str | None = None
    file_prefixes = ("_igym_file_", "igym_experiment_")  # files igym imported by path
    for role, value in browser_roots(scene, prepared).items():
        try:
            module, qualname = _module_of(value, instance=role.startswith(("policy:", "partner:")))
        except PackageError as exc:
            problems.append(f"{where}: {role}: {exc}")
            continue
        loaded = sys.modules.get(module)
        path = Path(getattr(loaded, "__file__", "") or "")
        if module.startswith(file_prefixes) and path.is_file():
            # A study file igym imported by path: the browser imports it by its stem.
            module = path.stem
            study_files[module] = path.resolve()
        elif module == "__main__":
            problems.append(
                f"{where}: {role} {qualname} is defined in the script being run (__main__), which the "
                "browser cannot import. Move it into a module (or a file named with 'file.py:name')."
            )
            continue
        imports[role] = f"{module}:{qualname}"
        modules[role] = module

    # Every lean build, in a folder that goes first on the scan's path (and the browser's).
    lean_versions: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="igym-lean-") as lean_dir:
        for project, (version, files) in lean_builds().items():
            lean_versions[project] = version
            for arcname, data in files.items():
                target = Path(lean_dir) / arcname
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        if "igym-pyodide-p2p" in lean_versions and (Path(lean_dir) / "igym_pyodide_p2p" / "browser").is_dir():
            modules.setdefault("runtime", "igym_pyodide_p2p.browser")
        # The server's own import path (PYTHONPATH, the user's site-packages, what igym added for
        # the experiment), then where igym run looks for an experiment's modules.
        server_path = [Path(entry or ".").resolve() for entry in sys.path]
        path_last = [*server_path, base_dir, Path.cwd(), *{p.parent for p in study_files.values()}]
        try:
            scan = scan_imports(modules, path_first=[Path(lean_dir)], path_last=path_last)
        except ScanUnavailableError as exc:
            log.warning("pyodide_import_scan_unavailable", scene_id=scene.scene_id, error=str(exc))
            lean = lean_modules([r for roots in LEAN_BUILDS.values() for r in roots], sorted(_lean_tops()))
            scan = static_scan(modules, lean)
            fallback = str(exc)
        lean_tops = {p.name for p in Path(lean_dir).iterdir() if p.is_dir()}

    for role, error in scan.errors.items():
        missing = error.get("name") or ""
        if missing.partition(".")[0] in lean_tops:
            what = (
                f"imports {missing!r}, which is"
                if error["type"] == "ModuleNotFoundError"
                else f"imports from {missing!r} what is ({error['message']}):"
            )
            problems.append(
                f"{where}: {role} ({imports.get(role, modules.get(role))}) {what} not part of igym's "
                "browser build (only rendering objects and deltas, the key table and their errors "
                "are). Import only those in code that runs in the browser (a HUD or render function "
                "defined in the experiment file imports the experiment's igym_core classes: move it "
                "into a module of its own), or import the rest inside functions that run on the server."
            )
        else:
            problems.append(
                f"{where}: importing {role} ({imports.get(role, modules.get(role))}) failed"
                f"{' in a fresh Python process' if fallback is None else ''}: {error['type']}: "
                f"{error['message']}"
            )

    stdlib_prefixes = _stdlib_paths()
    editable = _editable_sources()
    by_top = metadata.packages_distributions()
    stdlib: set[str] = set()
    found: dict[str, dict[str, Any]] = {}  # project → {dist, tops, folders, source}
    study: dict[str, Path] = {}
    for name, file in scan.loaded.items():
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in ("_distutils_hack", "__editable___finder"):
            stdlib.add(top)
            continue
        resolved = str(Path(file).resolve()) if file else ""
        if resolved.startswith(stdlib_prefixes) and "site-packages" not in resolved:
            stdlib.add(top)
            continue
        if top in lean_tops:
            project = next(p for p, roots in LEAN_BUILDS.items() if roots[0].partition(".")[0] == top)
            entry = found.setdefault(project, {"source": "lean", "tops": set(), "folders": []})
            entry["tops"].add(top)
            continue
        dist_names = by_top.get(top) or []
        dist: metadata.Distribution | None = None
        if dist_names:
            dist = metadata.distribution(dist_names[0])
            entry = found.setdefault(
                dist.metadata["Name"], {"source": "installed", "tops": set(), "folders": []}
            )
            entry["dist"] = dist
            entry["tops"].add(top)
            entry["folders"] = [Path(str(dist.locate_file("")))]
            continue
        match = next((v for k, v in editable.items() if resolved.startswith(k)), None)
        if match is not None:
            dist, _folder = match
            entry = found.setdefault(
                dist.metadata["Name"], {"source": "source", "tops": set(), "folders": []}
            )
            entry["dist"] = dist
            entry["tops"].add(top)
            root = _top_folder(name, Path(resolved))
            if root not in entry["folders"]:
                entry["folders"].append(root)
            continue
        if file:
            study[top] = _top_folder(name, Path(resolved))
        # A module without a file that is not in the standard library: a namespace package
        # whose parts are listed by their own modules.

    packages: list[BrowserPackage] = []
    for project, entry in sorted(found.items(), key=lambda item: normalize(item[0])):
        tops = tuple(sorted(entry["tops"]))
        if entry["source"] == "lean":
            packages.append(
                BrowserPackage(
                    project=project,
                    version=lean_versions[project],
                    source="lean",
                    top_level=tops,
                    location="igym's lean build",
                )
            )
            continue
        dist = entry["dist"]
        folders = entry["folders"]
        not_pure = _not_pure(dist, tops, folders)
        source: Source = entry["source"]
        if not_pure is not None:
            if extra_index:
                source = "extra-index"
            else:
                problems.append(
                    f"{where}: the browser needs {project} {dist.version} (imported as "
                    f"{', '.join(tops)}), which is not pure Python: {not_pure}. igym serves only "
                    f"pure-Python wheels. Set {EXTRA_INDEX_VARIABLE} to a package index that has a "
                    f"Pyodide build of {project} (for example https://pypi.org/simple if it publishes "
                    "one), or make the code that runs in the browser import only pure-Python packages."
                )
                continue
        packages.append(
            BrowserPackage(
                project=project,
                version=dist.version,
                source=source,
                top_level=tops,
                location=str(folders[0]) if folders else "",
                not_pure=not_pure,
            )
        )
    for top, path in sorted(study.items()):
        for suffix_file in [path] if path.is_file() else path.rglob("*"):
            if suffix_file.name.endswith(_EXTENSION_SUFFIXES):
                problems.append(
                    f"{where}: the study's module {top!r} has compiled code ({suffix_file}); igym serves "
                    "only pure Python. Make the code that runs in the browser pure Python."
                )
                break
        else:
            packages.append(
                BrowserPackage(
                    project=f"igym-study-{normalize(top)}",
                    version=f"0+{_tree_hash(path)[:12]}",
                    source="study",
                    top_level=(top,),
                    location=str(path),
                )
            )
    return ScenePackages(
        scene_id=scene.scene_id,
        imports=imports,
        packages=tuple(packages),
        stdlib=tuple(sorted(stdlib)),
        problems=tuple(problems),
        fallback=fallback,
    )


def _top_folder(module: str, file: Path) -> Path:
    """The folder (package) or file (module) of ``module``'s top-level name, from one of its files."""
    depth = module.count(".") + (1 if file.name == "__init__.py" else 0)
    path = file
    for _ in range(depth):
        path = path.parent
    return path


def _tree_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for file in [path] if path.is_file() else sorted(_tree_files(path)):
        digest.update(str(file.relative_to(path.parent)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _tree_files(folder: Path) -> Iterable[Path]:
    """The files of a package folder that go into its wheel: not bytecode, not hidden files or
    folders (``.env``, ``.git``): whatever is in a browser wheel, every participant can download."""
    for file in folder.rglob("*"):
        parts = file.relative_to(folder).parts
        if (
            file.is_file()
            and "__pycache__" not in parts
            and not any(part.startswith(".") for part in parts)
            and not file.name.endswith((".pyc", ".pyo"))
        ):
            yield file


#: What :func:`scene_packages` worked out, by prepared scene (weakly: it goes with the scene) and
#: extra index: ``igym run`` checks each browser-run scene at start (``Runtime.check_scene``), and
#: the package index serves what that check built instead of importing everything a second time.
_BUILT: weakref.WeakKeyDictionary[Any, dict[str | None, tuple[ScenePackages, list[Wheel]]]] = (
    weakref.WeakKeyDictionary()
)


def scene_packages(scene: Any, prepared: Any, settings: Settings | None) -> tuple[ScenePackages, list[Wheel]]:
    """The plan of ``scene`` and, when it has no problems, its wheels (built once per prepared scene).

    Raises :class:`PackageError` when the scan cannot run or a wheel cannot be built.
    """
    extra = getattr(settings, "pyodide_extra_index_url", None) if settings is not None else None
    try:
        cached = _BUILT.get(prepared, {}).get(extra)
    except TypeError:  # a prepared scene that cannot be weakly referenced: no cache
        cached = None
    if cached is not None:
        return cached
    plan = plan_scene_packages(scene, prepared, settings)
    wheels = [] if plan.problems else build_wheels(plan)
    with contextlib.suppress(TypeError):
        _BUILT.setdefault(prepared, {})[extra] = (plan, wheels)
    return plan, wheels


def check_scene_packages(scene: Any, prepared: Any, settings: Settings | None) -> tuple[list[str], list[str]]:
    """``igym check``'s answer for a ``runtime="pyodide"`` game scene: ``(problems, notes)``.

    Notes list each package the browser would need and where it would come from; problems name every
    package that cannot come from anywhere (not pure Python, with no extra index set), or code the
    browser cannot import. Any problem refuses the scene. The wheels are built here too (so that
    ``igym run`` serves them from the start, and a wheel that cannot be built refuses the scene).
    """
    from igym_pyodide_p2p.assets import PyodideFilesMissingError, pyodide_files

    problems: list[str] = []
    files = None
    try:
        files = pyodide_files()
    except PyodideFilesMissingError as exc:
        problems.append(str(exc))
    try:
        plan, wheels = scene_packages(scene, prepared, settings)
    except PackageError as exc:
        return [*problems, str(exc)], []
    notes = plan.notes()
    if files is not None and not plan.problems:
        pyodide, micropip = files
        wire = sum(pyodide.gzipped.get(name, size) for name, size in pyodide.sizes.items())
        wheel_bytes = micropip.stat().st_size + sum(len(w.data) for w in wheels)
        notes.append(
            f"browser download on a first visit: Pyodide {wire / 1e6:.1f} MB "
            f"({pyodide.total_bytes / 1e6:.1f} MB unpacked), micropip and igym's wheels "
            f"{wheel_bytes / 1e3:.0f} kB; later visits load them from the browser's cache"
        )
    extra = getattr(settings, "pyodide_extra_index_url", None) if settings is not None else None
    if extra:
        notes.append(f"browser extra index for packages that are not pure Python: {extra}")
    return [*problems, *plan.problems], notes


# --- wheels ---------------------------------------------------------------------------------------------


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(project: str, version: str, files: Mapping[str, bytes], metadata_text: str) -> Wheel:
    """A ``py3-none-any`` wheel of ``files`` (archive name → bytes), reproducible byte for byte."""
    dist_name = re.sub(r"[-_.]+", "_", project)
    dist_version = version.replace("-", "_")
    info = f"{dist_name}-{dist_version}.dist-info"
    entries = dict(sorted(files.items()))
    entries[f"{info}/METADATA"] = metadata_text.encode()
    entries[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: igym-pyodide-p2p\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in entries.items():
        writer.writerow([name, _record_hash(data), len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    entries[f"{info}/RECORD"] = record.getvalue().encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            item = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            item.compress_type = zipfile.ZIP_DEFLATED
            item.external_attr = 0o644 << 16
            archive.writestr(item, data)
    blob = buffer.getvalue()
    return Wheel(
        project=project,
        version=version,
        filename=f"{dist_name}-{dist_version}-py3-none-any.whl",
        data=blob,
        sha256=hashlib.sha256(blob).hexdigest(),
    )


def _metadata(project: str, version: str, summary: str) -> str:
    return f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\nSummary: {summary}\n"


def _installed_files(dist: metadata.Distribution) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in dist.files or ():
        name = str(path).replace(os.sep, "/")
        if name.startswith("..") or "/__pycache__/" in f"/{name}" or name.endswith((".pyc", ".pyo")):
            continue  # scripts outside site-packages, bytecode
        if ".dist-info/" in name or name.endswith(".pth"):
            continue
        located = Path(str(dist.locate_file(path)))
        if located.is_file():
            files[name] = located.read_bytes()
    return files


def _folder_files(root: Path) -> dict[str, bytes]:
    if root.is_file():
        return {root.name: root.read_bytes()}
    return {str(f.relative_to(root.parent)).replace(os.sep, "/"): f.read_bytes() for f in _tree_files(root)}


def _without_requirements(text: str) -> str:
    """A distribution's METADATA without ``Requires-Dist``: the browser installs exactly the set igym
    worked out (``deps=False``), and a requirement that the browser does not load (numpy for the
    server-side wrappers of a pure-Python env) must not send micropip looking for it."""
    head, _sep, _body = text.partition("\n\n")
    kept = [line for line in head.splitlines() if not line.startswith(("Requires-Dist:", "Provides-Extra:"))]
    return "\n".join(kept) + "\n"


def build_wheels(plan: ScenePackages) -> list[Wheel]:
    """The wheels of every package of ``plan`` that igym serves (all but the extra index's)."""
    wheels: list[Wheel] = []
    for package in plan.packages:
        if package.source == "extra-index":
            continue
        if package.source == "lean":
            files = lean_builds()[package.project][1]
            text = _metadata(package.project, package.version, "igym's lean browser build")
        elif package.source == "study":
            files = _folder_files(Path(package.location))
            text = _metadata(package.project, package.version, f"the study's module {package.top_level[0]}")
        else:
            dist = metadata.distribution(package.project)
            if package.source == "installed":
                files = {
                    name: data
                    for name, data in _installed_files(dist).items()
                    if name.partition("/")[0].removesuffix(".py") in package.top_level
                }
            else:
                files = {}
                for top in package.top_level:
                    root = Path(package.location)
                    candidates = [root] if root.name in (top, f"{top}.py") else []
                    candidates += [root.parent / top, root.parent / f"{top}.py"]
                    for candidate in candidates:
                        if candidate.exists():
                            files.update(_folder_files(candidate))
                            break
            text = _without_requirements(dist.read_text("METADATA") or "") or _metadata(
                package.project, package.version, ""
            )
        if not files:
            raise PackageError(
                f"building the browser wheel of {package.project} {package.version} found no files "
                f"for {', '.join(package.top_level)} in {package.location}."
            )
        wheels.append(make_wheel(package.project, package.version, files, text))
    return wheels
