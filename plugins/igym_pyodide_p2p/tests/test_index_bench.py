"""bench/pyodide_load.py runs end to end (a real igym run, headless Chromium) and prints its figures;
the figures are not checked, only that they are there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STAGES = ("runtime_ms", "micropip_ms", "packages_ms", "env_ms", "total_ms")


def test_the_load_bench_prints_each_load_then_the_medians() -> None:
    done = subprocess.run(
        [sys.executable, "bench/pyodide_load.py", "--repeats", "1", "--steps", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert [line.split(" #")[0] for line in lines[:-1]] == ["cold", "warm"]
    summary = json.loads(lines[-1])
    assert {f"{kind}_{stage}" for kind in ("cold", "warm") for stage in STAGES} <= set(summary)
    assert all(summary[f"{kind}_{stage}"] > 0 for kind in ("cold", "warm") for stage in STAGES)
    assert summary["repeats"] == 1 and summary["pyodide_bytes"] > 10_000_000 and summary["wheel_bytes"] > 0
