"""bench/server_tick.py runs end to end (a real server and load generator) and prints what the
issue asks for; its figures are not checked here, only that they are there and make sense."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The bench's fps and lateness are checked: run alone (`make test`'s serial run).
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_KEYS = {
    "games",
    "humans_per_game",
    "fps_median",
    "fps_p5",
    "lateness_p50_ms",
    "lateness_p99_ms",
    "bytes_per_frame",
    "framework_us_per_tick",
    "env_us_per_tick",
}


def _run(tmp: Path, script: str, *args: str) -> list[str]:
    """Run a bench script with its temporary files in ``tmp``; the lines it printed."""
    tmp.mkdir()
    done = subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


def _bench(tmp: Path, *extra: str) -> tuple[list[str], dict]:
    lines = _run(tmp, "bench/server_tick.py", "--games", "2", "--seconds", "1", "--max-games", "0", *extra)
    return lines, json.loads(lines[-1])


def test_bench_prints_the_table_then_the_summary_and_removes_its_data(tmp_path: Path) -> None:
    lines, summary = _bench(tmp_path / "t")
    assert any(line.split()[:2] == ["groups", "games"] for line in lines)  # the table's header
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["games"] == 2 and summary["humans_per_game"] == 1
    assert 25 <= summary["fps_p5"] <= summary["fps_median"] <= 31  # 30 fps, counted over 1 s
    assert summary["bytes_per_frame"] > 50
    assert summary["env_us_per_tick"] > 0 and summary["framework_us_per_tick"] > 0
    assert 0 <= summary["lateness_p50_ms"] <= summary["lateness_p99_ms"]
    assert list((tmp_path / "t").iterdir()) == []  # the server's data directory is gone


def test_bench_keep_data_leaves_the_recorded_steps(tmp_path: Path) -> None:
    lines, summary = _bench(tmp_path / "t", "--keep-data")
    [note] = [line for line in lines if line.startswith("data of the next row: ")]
    data_dir = Path(note.removeprefix("data of the next row: "))
    assert data_dir.parent == tmp_path / "t"
    steps = [
        json.loads(line) for line in (data_dir / "bench_server_tick" / "steps.jsonl").read_text().splitlines()
    ]
    assert len({row["game_id"] for row in steps}) == summary["games"] == 2
    # the load generator's key presses reached the games; "absent" once it has disconnected
    sources = {row["action_source"] for row in steps}
    assert "human" in sources and sources <= {"human", "default", "absent"}


def test_throwaway_games_bench_runs_end_to_end(tmp_path: Path) -> None:
    """bench/throwaway_games.py starts its server as the other benches do (it had drifted: no
    operator token, so /stats answered 401) and reads the window's lateness from /stats."""
    tmp = tmp_path / "t"
    args = ["--honest", "2", "--throwaway", "6", "--seconds", "1", "--throwaway-budget", "3"]
    lines = _run(tmp, "bench/throwaway_games.py", *args)
    summary = json.loads(lines[-1])
    assert summary["honest"] == 2 and summary["throwaway"] == 6
    assert 0 < summary["fps_min"] <= summary["fps_median"] <= 31
    assert 0 <= summary["lateness_p50_ms"] <= summary["lateness_p99_ms"]
    assert summary["games_held"] >= 2
    assert list(tmp.iterdir()) == []  # the server's data directory is gone
