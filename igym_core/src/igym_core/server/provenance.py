"""Which installed distributions a run used, for the snapshot written when the server starts.

A result depends on more than igym: numpy's random generators, Gymnasium's wrappers, onnxruntime's
kernels, pyarrow's writer. The snapshot records the version of

- igym-core and every installed igym plugin distribution (an ``igym`` entry point),
- everything those require, transitively (with the extras they ask for, e.g. ``uvicorn[standard]``),
- the distribution of every top-level module imported when the snapshot is taken: by then the
  experiment is loaded and its scenes prepared, so the env's own libraries (a researcher's
  ``cogrid``, ``pettingzoo``, ``torch``) are in ``sys.modules``,
- the scientific stack (:data:`SCIENTIFIC_STACK`) wherever it is installed.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

from igym_core.plugins.markers import ENTRY_POINT_GROUP

__all__ = ["SCIENTIFIC_STACK", "package_versions"]

#: Always recorded when installed, imported or not.
SCIENTIFIC_STACK: tuple[str, ...] = (
    "numpy",
    "scipy",
    "gymnasium",
    "pettingzoo",
    "onnxruntime",
    "onnx",
    "pyarrow",
    "pandas",
    "polars",
    "torch",
    "jax",
    "cogrid",
)

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: metadata.Distribution, extras: frozenset[str]) -> list[tuple[str, frozenset[str]]]:
    """``(name, extras)`` of what ``dist`` requires, including what the requested ``extras`` add."""
    out = []
    for line in dist.requires or ():
        requirement, _, marker = line.partition(";")
        wanted_extra = _EXTRA_MARKER.search(marker)
        if wanted_extra is not None and _normalise(wanted_extra.group(1)) not in extras:
            continue
        match = _REQUIREMENT.match(requirement)
        if match is None:
            continue
        asked = frozenset(_normalise(e) for e in (match.group(2) or "").split(",") if e.strip())
        out.append((match.group(1), asked))
    return out


def _installed(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str]:
    """``{distribution name: version}`` of everything this run depends on (see the module), by name."""
    roots: list[tuple[str, frozenset[str]]] = [("igym-core", frozenset())]
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.dist is not None:
            roots.append((entry_point.dist.name, frozenset()))
    roots.extend((name, frozenset()) for name in SCIENTIFIC_STACK)
    imported = {name.partition(".")[0] for name in list(sys.modules)}
    by_module = metadata.packages_distributions()
    for module in sorted(imported & set(by_module)):
        roots.extend((dist_name, frozenset()) for dist_name in by_module[module])

    versions: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = roots
    while pending:
        name, extras = pending.pop()
        key = (_normalise(name), extras)
        if key in seen:
            continue
        seen.add(key)
        dist = _installed(name)
        if dist is None:
            continue
        versions[dist.metadata["Name"] or name] = dist.version
        pending.extend(_requirements(dist, extras))
    return dict(sorted(versions.items(), key=lambda item: _normalise(item[0])))
