"""What the runtime tests on a real server share: reading a record type until it holds what a test
waits for; a game paused once while its records could not be saved; ``igym verify`` on a run's data
and on a tampered copy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections import Counter
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
    timeout_s: float = 30.0,
) -> list[dict[str, Any]]:
    """The records of a type once ``until`` holds for them, or as they are after ``timeout_s`` (the
    sink writes them out every 500 ms)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = read_records(data_dir, experiment, record_type)
        if until(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def assert_one_saving_pause(data_dir: Path, experiment: str, steps_per_episode: dict[int, int]) -> None:
    """The run's steps per episode are ``steps_per_episode``, none lost or doubled, and its game paused
    once for saving and resumed once (the disk was full, then freed)."""
    steps = read_records(data_dir, experiment, "steps")
    assert Counter(r["episode"] for r in steps) == steps_per_episode
    games = read_records(data_dir, experiment, "games")
    assert [(g["event"], g.get("reason")) for g in games if g["event"] in ("paused", "resumed")] == [
        ("paused", "saving"),
        ("resumed", "saving"),
    ]


def verify_then_tamper(data: Path, *, episode: int, step: int, agent: str, reward: float) -> str:
    """``igym verify`` passes on the run's data ``data`` (an experiment's folder; the output must say
    all 2 browser-run episodes of its one game match), and fails on a copy with the reward of
    ``agent`` at ``step`` of ``episode`` set to ``reward``; the failing run's output."""

    def verify(folder: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "igym_core.cli", "verify", str(folder)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    result = verify(data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 2 browser-run episodes of 1 game match" in result.stdout
    tampered = data.parent / "tampered"
    shutil.copytree(data, tampered)
    lines = [json.loads(line) for line in (tampered / "steps.jsonl").read_text().splitlines()]
    target = next(r for r in lines if r["episode"] == episode and r["step"] == step and r["agent"] == agent)
    assert target["reward"] != reward, target
    target["reward"] = reward
    (tampered / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    result = verify(tampered)
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout
