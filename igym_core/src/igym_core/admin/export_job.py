"""``python -m igym_core.admin.export_job MODULE:CLASS DATA_DIR OUT_DIR``: the dashboard's ``igym export``.

The dashboard runs the ``export`` command its server registered (any plugin's, named by the class's
import path) in this child process, so that the export's memory and CPU are not the study's: the
server's event loop keeps stepping games while the tables are built. The process lowers its own
priority first. Exit status: the command's; 2 with the message on stderr for an ``IgymError``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from igym_core.errors import IgymError


def main(argv: Sequence[str] | None = None) -> int:
    target, data_dir, out_dir = list(sys.argv[1:] if argv is None else argv)
    with contextlib.suppress(OSError):
        os.nice(10)
    module_name, _, qualname = target.partition(":")
    command_class: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        command_class = getattr(command_class, part)
    command = command_class()  # type: ignore[operator]
    parser = argparse.ArgumentParser(prog="igym export")
    command.add_arguments(parser)
    args = parser.parse_args([data_dir, "--out", out_dir])
    try:
        return int(command.run(args))
    except IgymError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
