"""A fake Unity WebGL build, for tests and the example (not Unity's code).

:func:`write_fake_build` writes a build folder with the four files of a real export — a
``*.loader.js`` defining ``createUnityInstance``, a ``*.framework.js`` that links the shipped
``Igym.jslib`` as Unity's build does, a ``*.wasm`` (a valid, empty WebAssembly module) and a ``*.data``
(Unity's data header, then the script of the episodes the game plays) — plain or compressed (``gzip``,
``brotli``, ``unityweb``), with product or hashed names. The game draws on the canvas, plays its
episodes through the same bridge functions a real game calls (``IgymEpisodeStarted``, ``IgymLog``,
``IgymEpisodeEnded``) and records every ``SendMessage`` in ``window.__fakeUnity.sent``.

Command line (regenerates the example's build)::

    python -m igym_unity.testing OUT_DIR [--compression gzip] [--hashed-names]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import subprocess
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from igym_core.errors import MissingDependencyError
from igym_unity.build import DATA_MAGIC

__all__ = ["DEFAULT_SCRIPT", "JSLIB", "fake_framework_js", "write_fake_build"]

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


def main() -> None:
    parser = argparse.ArgumentParser(description="Write igym's fake Unity WebGL build.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--compression", choices=["none", "gzip", "brotli", "unityweb"], default="none")
    parser.add_argument("--hashed-names", action="store_true")
    args = parser.parse_args()
    print(write_fake_build(args.out, compression=args.compression, hashed_names=args.hashed_names))


if __name__ == "__main__":
    main()
