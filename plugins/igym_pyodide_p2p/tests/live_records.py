"""What the runtime tests on a real server share: reading a record type until it holds what a test
waits for."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from igym_core.testing import read_records


def records_when(
    data_dir: Path,
    experiment: str,
    record_type: str,
    until: Callable[[list[dict[str, Any]]], bool],
    *,
    timeout_s: float = 10.0,
) -> list[dict[str, Any]]:
    """The records of a type once ``until`` holds for them, or as they are after ``timeout_s`` (the
    sink writes them out every 500 ms)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = read_records(data_dir, experiment, record_type)
        if until(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)
