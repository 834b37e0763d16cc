"""A fake Unity WebGL build, for tests and the example (not Unity's code).

:func:`write_fake_build` writes a build folder with the four files of a real export — a
``*.loader.js`` defining ``createUnityInstance``, a ``*.framework.js`` that links the shipped
``Igym.jslib`` as Unity's build does, a ``*.wasm`` (a valid, empty WebAssembly module) and a ``*.data``
(Unity's data header, then the script of the episodes the game plays) — plain or compressed (``gzip``,
``brotli``, ``unityweb``), with product or hashed names. The game draws on the canvas, plays its
episodes through the same bridge functions a real game calls (``IgymEpisodeStarted``, ``IgymLog``,
``IgymEpisodeEnded``) and records every ``SendMessage`` in ``window.__fakeUnity.sent``.

:func:`example_build_dir` writes the example's build into the user's cache on first use (no copy is
committed or shipped: the package's sources are enough).

Command line (a build to try by hand)::

    python -m igym_unity.testing OUT_DIR [--compression gzip] [--hashed-names]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from igym_core.errors import ExperimentLoadError, MissingDependencyError
from igym_unity.build import DATA_MAGIC

__all__ = ["DEFAULT_SCRIPT", "JSLIB", "example_build_dir", "fake_framework_js", "write_fake_build"]

Compression = Literal["none", "gzip", "brotli", "unityweb"]

#: The shipped bridge, as a researcher copies it into a Unity project.
JSLIB = files("igym_unity") / "unity" / "Igym.jslib"
_FAKE = files("igym_unity") / "fake"
#: The smallest valid WebAssembly module (magic and version): the loader compiles it.
_WASM = b"\x00asm\x01\x00\x00\x00"
#: Payloads that must arrive as they were sent (quotes, backslashes, a closing script tag, emoji).
TRICKY_LOG = json.dumps(
    {"said": "she said \"hi\" \\ 'bye' </script><script>alert(1)</script> 🦄 naïve ✓"}, ensure_ascii=False
)
DEFAULT_SCRIPT: dict[str, Any] = {
    "load_ms": 400,
    "start_ms": 200,
    "between_ms": 150,
    "episodes": [
        {"duration_ms": 900, "score": 3, "note": 'first "round" — ü', "logs": [TRICKY_LOG]},
        {"duration_ms": 900, "score": 5.5, "note": "second \\ round 🎮"},
    ],
}


def fake_framework_js() -> str:
    """The fake framework's source, with ``Igym.jslib`` inside exactly as shipped."""
    template = (_FAKE / "framework.template.js").read_text(encoding="utf-8")
    return template.replace("/*IGYM_JSLIB*/", JSLIB.read_text(encoding="utf-8"))


def _brotli(data: bytes) -> bytes:
    # Python's brotli module is not a dependency of igym; node (which the browser tests need anyway)
    # has brotli in its zlib.
    node = shutil.which("node")
    if node is None:
        raise MissingDependencyError(
            "Writing a brotli fake build needs node (zlib.brotliCompressSync): apt-get install nodejs"
        )
    program = (
        "const zlib=require('zlib');const chunks=[];process.stdin.on('data',c=>chunks.push(c));"
        "process.stdin.on('end',()=>process.stdout.write(zlib.brotliCompressSync(Buffer.concat(chunks))));"
    )
    return subprocess.run([node, "-e", program], input=data, capture_output=True, check=True).stdout


def _compress(data: bytes, compression: Compression) -> tuple[bytes, str]:
    if compression == "none":
        return data, ""
    if compression == "gzip":
        return gzip.compress(data, mtime=0), ".gz"
    if compression == "brotli":
        return _brotli(data), ".br"
    return gzip.compress(data, mtime=0), ".unityweb"


def write_fake_build(
    directory: Path | str,
    *,
    compression: Compression = "none",
    hashed_names: bool = False,
    script: Mapping[str, Any] | None = None,
    product: str = "fake",
) -> Path:
    """Write a fake WebGL build into ``directory/Build`` and return that folder.

    ``script``: what the game does (``load_ms``, ``start_ms``, ``between_ms``, ``episodes``: a list of
    ``{duration_ms, score, note, logs, done}`` played in a loop; ``fail``: a message
    ``createUnityInstance`` rejects with instead of starting).
    """
    build = Path(directory) / "Build"
    build.mkdir(parents=True, exist_ok=True)
    contents = {
        "framework": (".framework.js", fake_framework_js().encode("utf-8")),
        "code": (".wasm", _WASM),
        "data": (".data", DATA_MAGIC + json.dumps(dict(script or DEFAULT_SCRIPT)).encode("utf-8")),
    }
    (build / f"{product}.loader.js").write_bytes((_FAKE / "fake.loader.js").read_bytes())
    for ending, data in contents.values():
        body, suffix = _compress(data, compression)
        stem = hashlib.md5(body).hexdigest() if hashed_names else product
        (build / f"{stem}{ending}{suffix}").write_bytes(body)
    return build


def _cache_home() -> Path:
    configured = os.environ.get("XDG_CACHE_HOME")
    return Path(configured) if configured and Path(configured).is_absolute() else Path.home() / ".cache"


def example_build_dir(cache: Path | str | None = None) -> Path:
    """The example's fake build (plain, product names, :data:`DEFAULT_SCRIPT`), written from this
    package's sources on first use and returned (the folder above ``Build/``).

    It lives in ``cache`` (default: ``$XDG_CACHE_HOME/igym/unity-fake-build``, else
    ``~/.cache/igym/...``), in a folder named by the digest of its files, created for this user only
    (0700): a new igym-unity version writes a new folder, and a folder whose files were changed
    since is written again (the files are small and compared byte for byte on each call).
    """
    with tempfile.TemporaryDirectory() as scratch:
        fresh = write_fake_build(Path(scratch) / "build")
        digest = hashlib.sha256()
        for path in sorted(fresh.iterdir()):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        root = Path(cache) if cache is not None else _cache_home() / "igym" / "unity-fake-build"
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            if cache is not None:
                raise
            root = _private_temp_root()
        target = root / digest.hexdigest()[:16]
        if _same_files(fresh, target / "Build"):
            return target
        staging = Path(tempfile.mkdtemp(prefix=".writing-", dir=root))  # 0700, beside the target
        shutil.copytree(fresh, staging / "Build")
        if target.exists():
            shutil.rmtree(target)
        try:
            staging.rename(target)
        except OSError:  # another process wrote it at the same moment: theirs is the same
            shutil.rmtree(staging, ignore_errors=True)
            if not _same_files(fresh, target / "Build"):
                raise
        return target


def _private_temp_root() -> Path:
    """A folder of this user's in the temp directory, for a home without a writable cache."""
    root = Path(tempfile.gettempdir()) / f"igym-unity-fake-build-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    info = root.lstat()
    if root.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ExperimentLoadError(
            f"The example's fake Unity build needs a private folder: {root} belongs to someone else or "
            "is open to others, and the cache folder (~/.cache) cannot be written. Set XDG_CACHE_HOME "
            "to a folder of yours."
        )
    return root


def _same_files(expected: Path, found: Path) -> bool:
    if not found.is_dir() or found.is_symlink():
        return False
    names = sorted(p.name for p in expected.iterdir())
    if names != sorted(p.name for p in found.iterdir()):
        return False
    return all(
        not (found / name).is_symlink() and (found / name).read_bytes() == (expected / name).read_bytes()
        for name in names
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Write igym's fake Unity WebGL build.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--compression", choices=["none", "gzip", "brotli", "unityweb"], default="none")
    parser.add_argument("--hashed-names", action="store_true")
    args = parser.parse_args()
    print(write_fake_build(args.out, compression=args.compression, hashed_names=args.hashed_names))


if __name__ == "__main__":
    main()
