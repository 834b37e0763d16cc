"""How long participants wait after a full disk gets room again: from the moment space is freed to
the moment each waiting page receives its next scene (the completion code).

Run (as root: it mounts a small tmpfs as the data directory, fills it and frees it):
``uv run --frozen python bench/save_recovery.py [--participants 50] [--flush-interval-ms 500]``.
Prints one JSON line. Nothing here passes or fails.

Each participant joins, consents, types an answer longer than a tmpfs page, and submits it while the
disk is full: their page shows ``saving``. Then the filler file is deleted, and the time until each
page has its end scene is measured. The server retries every ``flush_interval_ms``, so the wait is
bounded by about one interval plus the time to write what waited and to push the scenes.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from litestar.testing import TestClient

from igym_core import EndScene, Experiment, StartScene, SurveyScene, TextQuestion
from igym_core.testing import ScriptedParticipant, make_test_app
from igym_core.testing.full_disk import mount_full_disk

ANSWER = "I like games. " * 500
EXPERIMENT = Experiment(
    experiment_id="save_recovery",
    seed=1,
    scenes=(
        StartScene(scene_id="consent", body="Take part?"),
        SurveyScene(scene_id="about", questions=(TextQuestion(id="text", prompt="Tell us."),)),
        EndScene(scene_id="end", completion_code="auto"),
    ),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--flush-interval-ms", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, mount_full_disk(Path(tmp) / "disk", size_kib=65536) as disk:
        app = make_test_app(EXPERIMENT, disk.path / "data", flush_interval_ms=args.flush_interval_ms)
        with TestClient(app) as client:
            pages = [ScriptedParticipant(client).connect() for _ in range(args.participants)]
            for page in pages:
                page.submit({"agree": True})
            disk.fill()
            for page in pages:
                assert page.submit({"text": ANSWER})["type"] == "saving"
            freed = time.perf_counter()
            disk.free()
            waits = []
            for page in pages:
                page.receive_until(lambda m: m["type"] == "scene")
                assert page.scene["context"]["completion_code"]
                waits.append((time.perf_counter() - freed) * 1000)
            for page in pages:
                page.close()
    print(
        json.dumps(
            {
                "participants": args.participants,
                "flush_interval_ms": args.flush_interval_ms,
                "wait_after_free_ms_p50": round(statistics.median(waits), 1),
                "wait_after_free_ms_max": round(max(waits), 1),
                "python": sys.version.split()[0],
                "platform": platform.platform(),
            }
        )
    )


if __name__ == "__main__":
    main()
