"""bench/cogrid_games.py runs end to end with and without the step workers. Its figures are not
judged (a 2-game, 1-second run only has to produce them), so it runs with the parallel tests, not
in `make test`'s serial run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_bench import _run


def test_cogrid_games_bench_runs_each_variant_end_to_end(tmp_path: Path) -> None:
    """bench/cogrid_games.py serves the kitchen with and without the step workers and reports
    per-game fps and the workers' CPU (figures not judged, only present and sensible)."""
    tmp = tmp_path / "c"
    lines = _run(
        tmp,
        "bench/cogrid_games.py",
        "--games",
        "2",
        "--seconds",
        "1",
        "--repeat",
        "1",
        "--variants",
        "none,pool",
    )
    summary = json.loads(lines[-1])
    by_variant = {point["variant"]: point for point in summary["points"]}
    assert set(by_variant) == {"none", "pool"}
    for point in by_variant.values():
        assert point["games"] == 2
        assert 0 < point["fps_min"] <= point["fps_median"] <= 16
    assert by_variant["pool"]["worker_cpu_cores"] > 0 == by_variant["none"]["worker_cpu_cores"]
    assert list(tmp.iterdir()) == []  # the servers' data directories are gone
