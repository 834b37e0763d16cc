"""Finding the files of a Unity WebGL build, whatever Unity named them, and how to serve each.

A Unity WebGL build folder (``Build/`` of the player's output, or the output folder itself) holds
four files: the **loader** (``<name>.loader.js``, never compressed), the **framework**
(``<name>.framework.js``), the **code** (``<name>.wasm``) and the **data** (``<name>.data``). The last
three carry a compression suffix: none, ``.gz`` (gzip), ``.br`` (brotli) or ``.unityweb`` ("decompression
fallback": the loader decompresses them in JavaScript, whatever is inside). With "Name Files As
Hashes" the ``<name>`` of each is a hex digest instead of the product name.

:func:`discover_build` finds them, checks what can be checked (magic bytes agree with the suffix, one
file of each role, nothing left over that looks like a second build) and says how each must be
served (:class:`BuildFile.headers`). A build with a problem raises :class:`UnityBuildError`, whose
message names what was expected, what was found and what to do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import attrs

from igym_core.errors import ConfigError

__all__ = [
    "ROLES",
    "BuildFile",
    "UnityBuild",
    "UnityBuildError",
    "discover_build",
]

Role = Literal["loader", "framework", "code", "data"]
Compression = Literal["none", "gzip", "brotli", "unityweb"]

#: The four files of a build, in the order Unity's loader fetches them.
ROLES: tuple[Role, ...] = ("loader", "framework", "code", "data")

#: The file name ending of each role, before any compression suffix.
_ROLE_SUFFIX: dict[Role, str] = {
    "loader": ".loader.js",
    "framework": ".framework.js",
    "code": ".wasm",
    "data": ".data",
}
#: The content type a browser must see for each role (compressed or not).
CONTENT_TYPES: dict[Role, str] = {
    "loader": "application/javascript",
    "framework": "application/javascript",
    "code": "application/wasm",
    "data": "application/octet-stream",
}
_COMPRESSION_SUFFIX: dict[str, Compression] = {".gz": "gzip", ".br": "brotli", ".unityweb": "unityweb"}
_ENCODING: dict[Compression, str | None] = {"none": None, "gzip": "gzip", "brotli": "br", "unityweb": None}
_HASHED_NAME = re.compile(r"^[0-9a-f]{32}$")
_GZIP_MAGIC = b"\x1f\x8b"
_WASM_MAGIC = b"\x00asm"
#: Every uncompressed ``.data`` file of a Unity build starts with this.
DATA_MAGIC = b"UnityWebData1.0\x00"
#: Unity writes this marker into the brotli stream's metadata of its compressed files.
_UNITY_BROTLI_MARK = b"UnityWeb Compressed Content (brotli)"


class UnityBuildError(ConfigError):
    """A Unity WebGL build folder that igym cannot serve (``problems`` lists each thing wrong)."""

    def __init__(self, problems: Sequence[str] | str, *, build_dir: Path | str) -> None:
        super().__init__(problems, title=f"The Unity WebGL build in {build_dir} cannot be served")


@attrs.frozen(kw_only=True)
class BuildFile:
    """One file of a build and how a server must send it."""

    role: Role
    path: Path
    compression: Compression
    size: int
    sha256: str
    """Hex digest of the file's bytes (its URL carries the first 16 characters, so it can be cached
    for a year: a new build has new URLs)."""
    hashed_name: bool
    """Unity named the file by a digest ("Name Files As Hashes")."""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.role]

    @property
    def content_encoding(self) -> str | None:
        """``Content-Encoding`` the response must carry (None: none). ``.unityweb`` files are sent as
        they are: the loader decompresses them itself."""
        return _ENCODING[self.compression]

    @property
    def url_key(self) -> str:
        return self.sha256[:16]

    def headers(self) -> dict[str, str]:
        """The headers igym sends with this file (``igym unity check`` prints them)."""
        headers = {"Content-Type": self.content_type}
        if self.content_encoding:
            headers["Content-Encoding"] = self.content_encoding
        headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return headers


@attrs.frozen(kw_only=True)
class UnityBuild:
    """The four files of a build (see :func:`discover_build`)."""

    directory: Path
    loader: BuildFile
    framework: BuildFile
    code: BuildFile
    data: BuildFile
    notes: tuple[str, ...] = ()
    """Things that work but a researcher should know (brotli needs HTTPS, say)."""
    streaming_assets: Path | None = None
    """The export's ``StreamingAssets`` folder (beside ``Build/``), if it has one."""

    def files(self) -> tuple[BuildFile, ...]:
        return (self.loader, self.framework, self.code, self.data)

    def by_name(self, name: str) -> BuildFile | None:
        for file in self.files():
            if file.name == name:
                return file
        return None


def _split(name: str) -> tuple[Role, Compression, str] | None:
    """``(role, compression, stem)`` of a file name, or None if it is no build file."""
    compression: Compression = "none"
    base = name
    for suffix, kind in _COMPRESSION_SUFFIX.items():
        if name.endswith(suffix):
            compression = kind
            base = name[: -len(suffix)]
            break
    for role, ending in _ROLE_SUFFIX.items():
        if base.endswith(ending) and len(base) > len(ending):
            if role == "loader" and compression != "none":
                return None  # reported separately: the loader must be plain JavaScript
            return role, compression, base[: -len(ending)]
    return None


def _build_folder(build_dir: Path) -> Path:
    """``build_dir`` or its ``Build`` subfolder (a researcher may name the player's output folder)."""
    inner = build_dir / "Build"
    if inner.is_dir() and not any(build_dir.glob("*.loader.js")):
        return inner
    return build_dir


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _content_problem(path: Path, role: Role, compression: Compression) -> str | None:
    """A mismatch between a file's first bytes and what its name says, or None."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        return f"{path.name} is empty; export the build again."
    gzipped = head.startswith(_GZIP_MAGIC)
    if compression == "gzip" and not gzipped:
        return (
            f"{path.name} ends in .gz but is not gzip data (it starts with {head[:4].hex()}); a server "
            "sending it with Content-Encoding: gzip would break the page. Export the build again, or "
            "rename it without .gz if it is not compressed."
        )
    if compression == "none" and gzipped:
        return (
            f"{path.name} is gzip data without a .gz suffix; the browser would get compressed bytes. "
            "Rename it with .gz, or export the build with compression disabled."
        )
    if compression == "none" and role == "code" and not head.startswith(_WASM_MAGIC):
        return (
            f"{path.name} does not start with the WebAssembly magic bytes (found {head[:4].hex()}); "
            "it is compressed or not a wasm file. Give it the suffix of its compression (.gz or .br), "
            "or export the build again."
        )
    if compression == "none" and role == "data" and not head.startswith(DATA_MAGIC):
        return (
            f"{path.name} does not start with Unity's data header (UnityWebData1.0; found "
            f"{head[:16]!r}); it is compressed or not a Unity data file. Give it the suffix of its "
            "compression (.gz or .br), or export the build again."
        )
    if compression == "brotli" and (gzipped or (role == "code" and head.startswith(_WASM_MAGIC))):
        return (
            f"{path.name} ends in .br but is not brotli data (it starts with {head[:4].hex()}). "
            "Export the build again."
        )
    return None


def _unityweb_inside(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if _UNITY_BROTLI_MARK in head:
        return "brotli"
    return "not compressed, or brotli without Unity's marker"


def discover_build(build_dir: Path | str) -> UnityBuild:
    """Find a WebGL build's loader, framework, code and data files in ``build_dir`` (or its ``Build``).

    Raises:
        UnityBuildError: the folder is missing, a role has no file or more than one, a file's bytes
            disagree with its suffix, or a loader is compressed.
    """
    given = Path(build_dir)
    if not given.is_dir():
        raise UnityBuildError(
            f"expected a folder holding a Unity WebGL build (*.loader.js, *.framework.js, *.wasm, "
            f"*.data, each possibly .gz/.br/.unityweb); found {'a file' if given.exists() else 'nothing'} "
            "there. Point build_dir at the build's folder (the one with the .loader.js, or its parent).",
            build_dir=given,
        )
    folder = _build_folder(given)
    found: dict[Role, list[tuple[Path, Compression, str]]] = {role: [] for role in ROLES}
    problems: list[str] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if ".loader.js." in path.name:
            problems.append(
                f"{path.name}: the loader must be plain JavaScript (the page runs it with a <script> tag "
                "before anything can decompress); Unity never compresses it. Use the .loader.js of the "
                "export as it is."
            )
            continue
        split = _split(path.name)
        if split is None:
            continue
        role, compression, stem = split
        found[role].append((path, compression, stem))
    for role in ROLES:
        candidates = found[role]
        if not candidates:
            problems.append(
                f"no {role} file: expected a file named like <name>{_ROLE_SUFFIX[role]}"
                + ("" if role == "loader" else " (optionally .gz, .br or .unityweb)")
                + f" in {folder}. Export the WebGL build again and point build_dir at its Build folder."
            )
        elif len(candidates) > 1:
            names = ", ".join(path.name for path, _, _ in candidates)
            problems.append(
                f"more than one {role} file ({names}): a folder holds one build. Delete the older "
                "build's files (Unity leaves them when the product name or compression changes)."
            )
    if problems:
        raise UnityBuildError(problems, build_dir=given)
    files: dict[Role, BuildFile] = {}
    notes: list[str] = []
    inside: list[str] = []
    for role in ROLES:
        path, compression, stem = found[role][0]
        problem = _content_problem(path, role, compression)
        if problem is not None:
            problems.append(problem)
            continue
        files[role] = BuildFile(
            role=role,
            path=path,
            compression=compression,
            size=path.stat().st_size,
            sha256=_sha256(path),
            hashed_name=bool(_HASHED_NAME.match(stem)),
        )
        if compression == "unityweb":
            inside.append(f"{path.name}: {_unityweb_inside(path)}")
    compressions = {f.compression for f in files.values() if f.role != "loader"}
    if len(compressions) > 1:
        problems.append(
            "the framework, code and data files use different compressions "
            f"({', '.join(sorted(compressions))}): they come from different exports. Export the build again."
        )
    if problems:
        raise UnityBuildError(problems, build_dir=given)
    if inside:
        notes.append(
            f".unityweb files ({'; '.join(inside)}) are sent without Content-Encoding: Unity's loader "
            "decompresses them in JavaScript (a slower start than .gz/.br). Not tested with a real "
            "Unity loader under igym's Content-Security-Policy (script-src 'self'): if its loader runs "
            "the framework from a blob: URL, the page refuses it; prefer gzip or brotli."
        )
    if "brotli" in compressions:
        notes.append(
            "brotli (.br) files: browsers accept Content-Encoding: br only over HTTPS (and from "
            "localhost); serve the study behind HTTPS, or export with gzip."
        )
    streaming = next(
        (p for p in (folder / "StreamingAssets", folder.parent / "StreamingAssets") if p.is_dir()), None
    )
    return UnityBuild(directory=folder, notes=tuple(notes), streaming_assets=streaming, **files)
