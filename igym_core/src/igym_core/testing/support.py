"""Building apps for tests and reading what they recorded."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from litestar import Litestar

from igym_core.config.experiment import Experiment
from igym_core.plugins.manager import IgymPluginManager, create_plugin_manager
from igym_core.settings import Settings

__all__ = ["make_test_app", "read_records"]


def make_test_app(
    experiment: Experiment | str,
    data_dir: Path,
    *,
    plugins: IgymPluginManager | None = None,
    extra_plugins: Iterable[object] = (),
    **settings: Any,
) -> Litestar:
    """An app serving ``experiment`` with data under ``data_dir``; built-ins only unless told."""
    from igym_core.server.app import create_app

    if plugins is None:
        plugins = create_plugin_manager(autoload=False, extra=extra_plugins, strict=True)
    options = {"data_dir": data_dir, "log_format": "console", "strict_plugins": True, **settings}
    return create_app(Settings(**options), experiment, plugins=plugins)


def read_records(data_dir: Path, experiment_id: str, record_type: str) -> list[dict[str, Any]]:
    """Every record of one type a JSONL sink wrote for an experiment (a torn last line is skipped)."""
    path = Path(data_dir) / experiment_id / f"{record_type}.jsonl"
    if not path.exists():
        return []
    rows = []
    # Split on "\n" only: str.splitlines() also splits inside records at U+0085, U+2028, ...
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    for index, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if index != len(lines) - 1:
                raise
    return rows
