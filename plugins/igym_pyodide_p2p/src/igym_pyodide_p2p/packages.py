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

import contextlib
import hashlib
import importlib.metadata as metadata
import json
import os
import re
import sys
import sysconfig
import tempfile
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from igym_pyodide_p2p.packages_lean import (
    LEAN_BUILDS,
    _lean_tops,
    lean_builds,
    lean_modules,
)
from igym_pyodide_p2p.packages_model import (
    _EXTENSION_SUFFIXES,
    EXTRA_INDEX_VARIABLE,
    BrowserPackage,
    PackageError,
    ScanUnavailableError,
    ScenePackages,
    Source,
    normalize,
)
from igym_pyodide_p2p.packages_scan import ImportScan as ImportScan
from igym_pyodide_p2p.packages_scan import scan_imports, static_scan
from igym_pyodide_p2p.packages_wheels import (
    Wheel,
    _tree_files,
    build_wheels,
)
from igym_pyodide_p2p.packages_wheels import _folder_files as _folder_files
from igym_pyodide_p2p.packages_wheels import make_wheel as make_wheel

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
