"""``python -m igym_core.docs``: write the generated reference files (``make docs`` runs it).

    python -m igym_core.docs all --docs-dir docs

``schema`` writes ``experiment.schema.json`` (built-ins and the installed plugins),
``experiment-schema`` its reference page ``experiment-schema.md``, ``render-objects``
``render-objects.md``; ``all`` writes the three. Pictures of render objects are made by
``docs/tools/render_object_pictures.py`` (it needs Chromium).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from igym_core.docs.render_objects import render_objects_markdown
from igym_core.docs.schema import installed_schema, schema_json
from igym_core.docs.schema_reference import experiment_reference

__all__ = ["GENERATED", "main"]

#: Command → (file name in the docs directory, function giving the file's text).
GENERATED: dict[str, tuple[str, Callable[[], str]]] = {
    "schema": ("experiment.schema.json", lambda: schema_json(installed_schema())),
    "experiment-schema": ("experiment-schema.md", lambda: experiment_reference(installed_schema())),
    "render-objects": ("render-objects.md", render_objects_markdown),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m igym_core.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=[*GENERATED, "all"])
    parser.add_argument("--docs-dir", type=Path, default=Path("docs"), help="where to write (default: docs)")
    args = parser.parse_args(argv)
    names = list(GENERATED) if args.what == "all" else [args.what]
    for name in names:
        file_name, make = GENERATED[name]
        path = args.docs_dir / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make(), encoding="utf-8")
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
