"""What a browser-run scene's package plan is made of: the packages the browser installs (where
each comes from), the plan of one scene, and the errors of working it out (see ``packages.py``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs

from igym_core.errors import IgymError

#: The setting that lets the browser install packages that are not pure Python.
EXTRA_INDEX_VARIABLE = "IGYM_PYODIDE_EXTRA_INDEX_URL"

Source = Literal["installed", "source", "lean", "study", "extra-index"]

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
    """What the browser needs for one game scene (see the docstring of ``packages.py``)."""

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
