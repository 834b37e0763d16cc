"""What it costs to bring back a participant who was evicted from memory, and what one costs to hold.

Run: ``uv run --frozen python bench/evicted_resume.py [--participants 500]``.

One participant walks the example survey study to its end over the socket (real records). Their
``sessions`` rows are then copied for N participants (new ids and token hashes) into a fresh data
directory, and the app is started on it: ``restore`` at start rebuilds all N (timed, with the memory
they take, measured with ``tracemalloc``). All N are evicted; then one of them comes back with their
token, which reads ``sessions.jsonl`` in a thread and rebuilds that one participant (timed: the
``hello`` round trip of the return, and of an ordinary reload for comparison). Prints a table, then
one JSON line. Nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from igym_core.examples.survey_study import experiment
from igym_core.logging import configure_logging
from igym_core.scenes.stager import expand_sequence
from igym_core.testing import ScriptedParticipant, make_test_app, read_records
from igym_core.testing.support import SURVEY_STUDY_ANSWERS as ANSWERS


def _one_participant(data: Path) -> list[dict[str, Any]]:
    app = make_test_app(experiment, data)
    with TestClient(app) as client, ScriptedParticipant(client, params={"PROLIFIC_PID": "x" * 24}) as p:
        while p.kind != "end":
            p.submit(ANSWERS[p.scene["scene"]["scene_id"]])
    return read_records(data, experiment.experiment_id, "sessions")


def _copies(rows: list[dict[str, Any]], n: int) -> tuple[list[str], list[str]]:
    """N copies of one participant's rows as JSONL lines; and the tokens of the copies."""
    pid = rows[0]["participant_id"]
    lines, tokens = [], []
    for i in range(n):
        token = secrets.token_urlsafe(32)
        new_pid = f"p-{i:012x}"
        digest = hashlib.sha256(token.encode()).hexdigest()
        tokens.append(token)
        for row in rows:
            if row["participant_id"] != pid:
                continue
            copy = json.loads(json.dumps(row))
            copy["participant_id"] = new_pid
            if copy["event"] == "joined":
                copy["detail"]["token_sha256"] = digest
            elif copy["event"] == "sequence_drawn":  # the draw depends on the participant id
                slots, _draws = expand_sequence(
                    experiment.scenes, participant_id=new_pid, condition=None, experiment_seed=experiment.seed
                )
                copy["detail"]["sequence"] = [
                    {"scene_id": s.scene.scene_id, "instance": s.instance} for s in slots
                ]
            lines.append(json.dumps(copy, ensure_ascii=False))
    return lines, tokens


def _hello_ms(client: Any, token: str) -> float:
    start = time.perf_counter()
    with ScriptedParticipant(client, token=token) as p:
        elapsed = (time.perf_counter() - start) * 1000
        assert p.welcome["resumed"] is True and p.kind == "end", p.welcome
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=500)
    parser.add_argument("--returns", type=int, default=5)
    args = parser.parse_args()
    configure_logging("json", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        rows = _one_participant(Path(tmp) / "one")
        lines, tokens = _copies(rows, args.participants)
        data = Path(tmp) / "many"
        folder = data / experiment.experiment_id
        folder.mkdir(parents=True)
        (folder / "sessions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        size_mb = (folder / "sessions.jsonl").stat().st_size / 1e6

        app = make_test_app(experiment, data, participant_evict_finished_s=3600, max_participants_in_memory=0)
        study = app.state.study
        tracemalloc.start()
        start = time.perf_counter()
        with TestClient(app) as client:  # the lifespan restores every participant
            restore_s = time.perf_counter() - start
            held_bytes, _peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert len(study.by_id) == args.participants, len(study.by_id)
            reload_ms = [_hello_ms(client, tokens[i]) for i in range(args.returns)]
            evicted = study.evict_idle(now=time.monotonic() + 7200)
            returns_ms = [_hello_ms(client, tokens[-1 - i]) for i in range(args.returns)]
    summary = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "participants": args.participants,
        "sessions_rows": len(lines),
        "sessions_mb": round(size_mb, 2),
        "restore_all_at_start_s": round(restore_s, 3),
        "memory_per_participant_kb": round(held_bytes / args.participants / 1024, 1),
        "evicted": evicted,
        "reload_hello_ms_median": round(statistics.median(reload_ms), 1),
        "return_after_eviction_hello_ms_median": round(statistics.median(returns_ms), 1),
        "return_after_eviction_hello_ms_max": round(max(returns_ms), 1),
    }
    width = max(map(len, summary))
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
