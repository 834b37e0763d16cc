"""``igym unity check BUILD_DIR``: the files igym found in a WebGL build, the headers it will send with
each, and what will fail."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import ClassVar

from igym_core.commands import Command
from igym_unity.build import UnityBuildError, discover_build

__all__ = ["UnityCommand"]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


class UnityCommand(Command):
    """``igym unity check``: what a build holds and how igym (or any server) must send it."""

    kind: ClassVar[str] = "unity"
    help: ClassVar[str] = "inspect Unity WebGL builds (igym unity check BUILD_DIR)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="unity_command", required=True)
        check = sub.add_parser(
            "check",
            help="find a WebGL build's files, print the headers each needs, and flag builds that will fail",
            description="Find the loader, framework, code and data files of a Unity WebGL build (plain, "
            ".gz, .br, .unityweb, hashed names), print the headers a server must send with each, and "
            "refuse (exit 1) a build that cannot work.",
        )
        check.add_argument(
            "build_dir", type=Path, help="the build folder (with the .loader.js) or its parent"
        )

    def run(self, args: argparse.Namespace) -> int:
        try:
            build = discover_build(args.build_dir)
        except UnityBuildError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        out = sys.stdout
        print(f"Unity WebGL build in {build.directory}", file=out)
        for file in build.files():
            flags = []
            if file.hashed_name:
                flags.append("hashed name")
            compression = "" if file.compression == "none" else f", {file.compression}"
            extra = f" ({', '.join(flags)})" if flags else ""
            print(f"  {file.role:<9} {file.name}  [{_size(file.size)}{compression}]{extra}", file=out)
            for name, value in file.headers().items():
                print(f"              {name}: {value}", file=out)
        print("igym serves each file at /unity/<scene_id>/<sha256[:16]>/<name>, as it is on disk", file=out)
        print("(never compressed again). Another server must send the headers above.", file=out)
        for note in build.notes:
            print(f"note: {note}", file=out)
        print("OK: the build can be served.", file=out)
        return 0
