"""igym's lean browser builds: only the modules of igym-core (and this plugin's browser code) that
the browser needs, found by following module-level imports from :data:`LEAN_BUILDS`' roots."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

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
