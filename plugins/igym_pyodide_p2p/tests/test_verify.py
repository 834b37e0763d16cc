"""``igym verify``: browser-run episodes re-run on the server from their seeds and recorded actions."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from igym_core.builtin.sink_jsonl import JsonlSink, JsonlSinkConfig
from igym_core.data.recorder import Recorder
from igym_pyodide_p2p.ingest import decode_step_batch, step_rows
from igym_pyodide_p2p.options import PyodideOptions

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from honest_page import play_episode  # noqa: E402

STUDY = f"{HERE / 'studies' / 'slime_pyodide.py'}:experiment"
GAME = "g-verify1"
SEEDS = {1: 1234, 2: 98765}
IDS = {"game_id": GAME, "scene_id": "slime", "instance": 0, "participant_ids": ["p-1"]}


def write_honest_data(directory: Path) -> None:
    """A browser-run game of two episodes, recorded through the JSONL sink as the runtime records it."""

    async def write() -> None:
        recorder = Recorder(
            [JsonlSink(JsonlSinkConfig(), directory)], base={"experiment_id": "x", "run_id": "r1"}
        )
        recorder.write(
            "games", {**IDS, "event": "started", "runtime": "pyodide", "num_episodes": 2, "fps": 30}
        )
        for episode, seed in SEEDS.items():
            steps, hashes = play_episode(seed, rng_seed=episode)
            # Through the ingest's own decoding, as the server stores a page's batch.
            data = {"type": "step_batch", "game_id": GAME, "batch": episode, "episode": episode}
            batch = decode_step_batch(
                {**data, "first_step": 1, "steps": steps, "hashes": hashes},
                PyodideOptions(max_batch_bytes=10**6),
            )
            for row in step_rows(IDS, episode, batch.steps, players={"left": "p-1"}, t_server_ms=1.0):
                recorder.write("steps", row)
            for step, state_hash in batch.hashes:
                recorder.write(
                    "state_hashes", {**IDS, "episode": episode, "step": step, "state_hash": state_hash}
                )
            recorder.write(
                "episodes",
                {**IDS, "episode": episode, "seed": seed, "steps": len(steps), "end_reason": "truncated"},
            )
        recorder.write("games", {**IDS, "event": "ended", "reason": "completed", "episodes_played": 2})
        await recorder.flush(durable=True)
        for sink in recorder.sinks:
            await sink.close()

    asyncio.run(write())


def edit_rows(path: Path, change: Any) -> None:
    """Rewrite a JSONL file with ``change(row)`` applied to each row (returning None drops it)."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    kept = [r for r in (change(row) for row in rows) if r is not None]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))


def verify(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "verify", str(directory), "--experiment", STUDY],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("verify") / "slime_pyodide"
    write_honest_data(directory)
    return directory


def copy_of(honest: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(honest, target)
    return target


def test_honest_data_passes_with_a_summary(honest: Path) -> None:
    result = verify(honest)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 2 browser-run episodes of 1 game match a re-run on the server" in result.stdout
    assert "(180 steps, 8 state hashes compared)" in result.stdout


def test_a_changed_reward_is_flagged_with_episode_step_and_values(honest: Path, tmp_path: Path) -> None:
    data = copy_of(honest, tmp_path)

    def change(row: dict[str, Any]) -> dict[str, Any]:
        if row["episode"] == 2 and row["step"] == 40 and row["agent"] == "left":
            row["reward"] = row["reward"] + 1.0
        return row

    edit_rows(data / "steps.jsonl", change)
    result = verify(data)
    assert result.returncode == 1
    assert (
        f"DIFFERS game {GAME} (scene slime) episode 2 (seed {SEEDS[2]}): step 40: reward of 'left': "
        "expected 0.0, found 1.0" in result.stdout
    )
    assert "1 of 2 browser-run episodes of 1 game differ" in result.stdout


def test_a_changed_action_is_flagged_by_the_state_hash(honest: Path, tmp_path: Path) -> None:
    data = copy_of(honest, tmp_path)

    def change(row: dict[str, Any]) -> dict[str, Any]:
        if row["episode"] == 1 and row["step"] == 10 and row["agent"] == "left":
            row["action"] = (row["action"] + 1) % 6
        return row

    edit_rows(data / "steps.jsonl", change)
    result = verify(data)
    assert result.returncode == 1
    line = next(line for line in result.stdout.splitlines() if line.startswith("DIFFERS"))
    assert f"episode 1 (seed {SEEDS[1]}): step 30: state hash: expected '" in line, result.stdout


def test_a_missing_step_is_flagged(honest: Path, tmp_path: Path) -> None:
    data = copy_of(honest, tmp_path)
    edit_rows(data / "steps.jsonl", lambda row: None if (row["episode"], row["step"]) == (1, 17) else row)
    result = verify(data)
    assert result.returncode == 1
    assert "episode 1 (seed 1234): step 17: step: expected recorded, found missing" in result.stdout


def test_a_step_recorded_twice_is_flagged(honest: Path, tmp_path: Path) -> None:
    data = copy_of(honest, tmp_path)
    path = data / "steps.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[4]]) + "\n")
    result = verify(data)
    assert result.returncode == 1
    assert "step 3: rows of 'left': expected 1, found 2" in result.stdout


def test_a_folder_without_data_is_refused_with_what_to_give(tmp_path: Path) -> None:
    result = verify(tmp_path)
    assert result.returncode == 2
    assert "has no games.jsonl" in result.stderr and "data/<experiment_id>" in result.stderr
