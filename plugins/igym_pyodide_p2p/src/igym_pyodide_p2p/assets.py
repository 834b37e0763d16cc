"""The browser runtime's files under content-hashed URLs, with the headers they are served with.

Pyodide's files (copied from npm by ``frontend/build.mjs`` into ``static/pyodide/``) are loaded by
``loadPyodide`` by fixed names relative to one folder URL, so they are served as a set:
``/plugins/pyodide_p2p/pyodide/<hash of the set>/<name>``. The runtime's own browser files (``static/page/``:
the worker, the loader, the client module) are served the same way under
``/plugins/pyodide_p2p/static/<hash of the set>/<name>``, so that their relative imports work. Single
files (micropip's wheel and the wheels igym builds) are served under
``/plugins/pyodide_p2p/files/<sha256>/<file name>``. A changed file changes its URL, so every one
of them can be cached for a year (:data:`IMMUTABLE`): a second game scene, a reload or a second
study with the same Pyodide loads from the browser's cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit

import attrs

from igym_core.server.security import CONTENT_SECURITY_POLICY

__all__ = [
    "IMMUTABLE",
    "MEDIA_TYPES",
    "PREFIX",
    "PYODIDE_FILES",
    "FileSet",
    "PyodideFilesMissingError",
    "content_security_policy",
    "file_set",
    "media_type",
    "pyodide_files",
    "static_dir",
]

#: Where the plugin's routes live (the plugin's name is ``pyodide_p2p``).
PREFIX = "/plugins/pyodide_p2p"

#: The Cache-Control of every content-hashed URL.
IMMUTABLE = "public, max-age=31536000, immutable"

#: What ``loadPyodide`` fetches (and ``pyodide.js`` for classic workers), copied by ``build.mjs``.
PYODIDE_FILES = (
    "pyodide.mjs",
    "pyodide.js",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)

MEDIA_TYPES: Mapping[str, str] = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".zip": "application/zip",
    ".json": "application/json",
    ".whl": "application/octet-stream",
    ".css": "text/css",
    ".py": "text/x-python",
    ".txt": "text/plain; charset=utf-8",
}


class PyodideFilesMissingError(FileNotFoundError):
    """Pyodide's files were not copied into the package (a checkout without ``make build``)."""


def media_type(name: str) -> str:
    """The Content-Type of a file the runtime serves, by its suffix."""
    return MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def static_dir() -> Path:
    """The plugin's ``static/`` folder."""
    return Path(str(files("igym_pyodide_p2p") / "static"))


@attrs.frozen(kw_only=True)
class FileSet:
    """Files served under one hash of all of them: ``<url_prefix><digest>/<name>``."""

    folder: Path
    names: tuple[str, ...]
    digest: str
    sizes: Mapping[str, int]
    url_prefix: str
    gzipped: Mapping[str, int] = attrs.field(factory=dict)
    """Name → size of its gzipped twin ``<name>.gz`` (made by ``build.mjs``), served to browsers that
    accept gzip."""

    @property
    def base_url(self) -> str:
        """The folder URL, ending in ``/`` (Pyodide's ``indexURL``)."""
        return f"{self.url_prefix}{self.digest}/"

    def url(self, name: str) -> str:
        return f"{self.base_url}{name}"

    def path(self, digest: str, name: str, *, gzip: bool = False) -> Path | None:
        """The file behind ``<digest>/<name>`` (its gzipped twin when ``gzip`` and there is one), or
        None when that URL is not one of this set's."""
        if digest != self.digest or name not in self.sizes:
            return None
        return self.folder / (f"{name}.gz" if gzip and name in self.gzipped else name)

    def listing(self) -> list[dict[str, object]]:
        """Each file's name, URL, size and size on the wire when gzipped."""
        return [
            {
                "name": n,
                "url": self.url(n),
                "bytes": self.sizes[n],
                "gzip_bytes": self.gzipped.get(n, self.sizes[n]),
            }
            for n in self.names
        ]

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())


def file_set(folder: Path, names: Iterable[str], url_prefix: str) -> FileSet:
    """Hash ``names`` in ``folder`` (names and contents, in order) into one :class:`FileSet`."""
    digest = hashlib.sha256()
    sizes: dict[str, int] = {}
    ordered = sorted(names)
    for name in ordered:
        path = folder / name
        digest.update(name.encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(chunk)
        sizes[name] = path.stat().st_size
    gzipped = {
        name: (folder / f"{name}.gz").stat().st_size for name in ordered if (folder / f"{name}.gz").is_file()
    }
    return FileSet(
        folder=folder,
        names=tuple(ordered),
        digest=digest.hexdigest()[:20],
        sizes=sizes,
        url_prefix=url_prefix,
        gzipped=gzipped,
    )


def pyodide_files(folder: Path | None = None) -> tuple[FileSet, Path]:
    """Pyodide's file set and micropip's wheel. Raises :class:`PyodideFilesMissingError` with the
    command to run when they were not built."""
    folder = folder or static_dir() / "pyodide"
    missing = [name for name in PYODIDE_FILES if not (folder / name).is_file()]
    micropip = sorted(folder.glob("micropip-*.whl"))
    if missing or not micropip:
        raise PyodideFilesMissingError(
            f"igym-pyodide-p2p: Pyodide's files are missing from {folder} "
            f"({', '.join(missing) or 'the micropip wheel'}). In an igym checkout run `make build` "
            "(npm ci and npm run build in plugins/igym_pyodide_p2p/frontend/); otherwise reinstall "
            "igym-pyodide-p2p from a wheel, which carries them."
        )
    return file_set(folder, PYODIDE_FILES, f"{PREFIX}/pyodide/"), micropip[-1]


def runtime_static_files(folder: Path | None = None) -> FileSet:
    """The runtime's own browser files: every file in ``static/page/`` (the worker, the loader, the
    client module)."""
    folder = folder or static_dir() / "page"
    names = [p.name for p in folder.iterdir() if p.is_file() and p.suffix != ".gz"] if folder.is_dir() else []
    return file_set(folder, names, f"{PREFIX}/static/")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


#: Package indexes whose files live on another host than their pages (the browser fetches both).
_FILE_HOSTS: Mapping[str, tuple[str, ...]] = {
    "https://pypi.org": ("https://files.pythonhosted.org",),
}


def content_security_policy(extra_index_url: str | None) -> str:
    """igym's policy, with the extra index's origin (and its file host) added to ``connect-src``.

    Served on the runtime's own files only: a Web Worker's policy is the one its script was served
    with, so the worker that runs micropip may fetch from the extra index while the participant's
    page keeps ``connect-src 'self'``.
    """
    if not extra_index_url:
        return CONTENT_SECURITY_POLICY
    origin = _origin(extra_index_url)
    sources = " ".join((origin, *_FILE_HOSTS.get(origin, ())))
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {sources}", 1)
