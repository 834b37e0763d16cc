"""The ``pyodide`` runtime on a real ``igym run`` server, with a page played over a real socket."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from igym_core.runtime import records as records_module
from igym_core.testing import read_records

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from honest_page import batches, play_episode  # noqa: E402
from live_records import assert_one_saving_pause, records_when, verify_then_tamper  # noqa: E402
from page_client import Page  # noqa: E402

from tests.conftest import LiveServer  # noqa: E402

STUDY = f"{HERE / 'studies' / 'slime_pyodide.py'}:experiment"
EXPERIMENT = "slime_pyodide"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(STUDY, tmp_path / "data")
    yield live
    live.stop()


def records(
    server: LiveServer, record_type: str, until: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """The records of a type once ``until`` holds for them (the sink writes them out every 500 ms)."""
    return records_when(server.data_dir, EXPERIMENT, record_type, until)


#: The columns of each record the runtime writes of its own, as core's builders make them.
_IDS = records_module.game_ids(game_id="g", scene_id="s", instance=0, participant_ids=["p"])
_BUILT = {
    "runtime_loaded": records_module.runtime_loaded_row(_IDS, ms=1.0, stages={}, reload=False),
    "runtime_load_failed": records_module.runtime_load_failed_row(_IDS, stage="env", message="m"),
    "load_timeout": records_module.load_timeout_row(_IDS, load_timeout_s=5.0),
    "stalled": records_module.stalled_row(_IDS, episode=1, step=2, silent_s=5.0),
    "reloaded": records_module.reloaded_row(_IDS, episode=1, step=2, rule="restart"),
    "rejected_batches": records_module.rejected_batch_row(
        _IDS,
        participant_id="p",
        batch=1,
        episode=1,
        first_step=1,
        steps=1,
        rule="malformed",
        problem="m",
        expected_batch=1,
        t_server_ms=1.0,
    ),
}


def assert_written_by_the_builders(server: LiveServer, *events: str) -> None:
    """Each of ``events`` (``games`` events, or ``rejected_batches``) was written, every such row with
    exactly the columns of its builder in ``igym_core.runtime.records``."""

    def columns(row: dict[str, Any]) -> list[str]:  # the recorder's own fields come first
        keys = list(row)
        return keys[keys.index("game_id") :]

    games = read_records(server.data_dir, EXPERIMENT, "games")
    rejected = read_records(server.data_dir, EXPERIMENT, "rejected_batches")
    for event in events:
        rows = rejected if event == "rejected_batches" else [g for g in games if g["event"] == event]
        assert rows, event
        assert all(columns(row) == list(_BUILT[event]) for row in rows), (event, rows[0])


def play(
    page: Page, game_id: str, episode_message: dict[str, Any], *, first_batch: int
) -> list[dict[str, Any]]:
    """Play the issued episode honestly; the batches sent."""
    steps, hashes = play_episode(episode_message["seed"], max_steps=episode_message["max_steps"])
    sent = batches(game_id, episode_message["episode"], steps, hashes, first_batch=first_batch)
    for batch in sent:
        assert page.send_batch(batch) == {"type": "batch_ack", "game_id": game_id, "batch": batch["batch"]}
    page.send(
        {
            "type": "episode_done",
            "game_id": game_id,
            "episode": episode_message["episode"],
            "steps": len(steps),
            "end_reason": "truncated",
        }
    )
    return sent


def test_a_browser_run_game_stores_every_step_once_and_verifies(server: LiveServer) -> None:
    page = Page(server.url)
    game_id = page.to_game()
    page.loaded(game_id)
    first = page.next("pyodide_episode")
    assert (first["episode"], first["num_episodes"], first["fps"], first["max_steps"]) == (1, 2, 30, 90)
    assert first["next_batch"] == 1
    sent = play(page, game_id, first, first_batch=1)
    # A page that lost its acknowledgements re-sends: acknowledged again (an ack names the last batch
    # stored: every one up to it is), stored once; the end of the episode, sent again, changes nothing.
    assert page.send_batch(sent[2]) == {"type": "batch_ack", "game_id": game_id, "batch": len(sent)}
    page.send(
        {"type": "episode_done", "game_id": game_id, "episode": 1, "steps": 90, "end_reason": "truncated"}
    )
    second = page.next("pyodide_episode")
    assert second["episode"] == 2 and second["seed"] != first["seed"]
    play(page, game_id, second, first_batch=len(sent) + 1)
    assert page.next("scene")["scene"]["kind"] == "end"

    rows = records(server, "steps", lambda rows: len(rows) >= 360)
    keys = Counter((r["episode"], r["step"], r["agent"]) for r in rows)
    assert len(keys) == 360 and set(keys.values()) == {1}
    assert {r["game_id"] for r in rows} == {game_id}
    assert all(r["t_client_ms"] is not None and r["tick"] is None for r in rows)
    episodes = records(server, "episodes", lambda rows: len(rows) >= 2)
    assert [(e["episode"], e["seed"], e["steps"], e["end_reason"]) for e in episodes] == [
        (1, first["seed"], 90, "truncated"),
        (2, second["seed"], 90, "truncated"),
    ]
    games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
    events = [(g["event"], g.get("runtime") or g.get("reason")) for g in games]
    assert events == [("started", "pyodide"), ("runtime_loaded", None), ("ended", "completed")]
    assert records(server, "rejected_batches", lambda rows: True) == []
    assert not [m for m in page.received if m["type"] == "error"]
    assert len(records(server, "state_hashes", lambda rows: len(rows) >= 8)) == 8
    page.close()

    # igym verify, from the run's snapshot: the data passes; a copy with one reward changed does not.
    step_50 = next(
        r for r in records(server, "steps", bool) if (r["episode"], r["step"], r["agent"]) == (2, 50, "right")
    )
    output = verify_then_tamper(
        server.data_dir / EXPERIMENT,
        episode=2,
        step=50,
        agent="right",
        reward=-1.0 if step_50["reward"] != -1.0 else 0.0,
    )
    assert (
        f"DIFFERS game {game_id} (scene slime) episode 2 (seed {second['seed']}): step 50: reward of 'right'"
        in output
    )


def test_bad_batches_get_errors_are_recorded_and_never_reach_the_steps(tmp_path: Path) -> None:
    with LiveServer(f"{HERE / 'studies' / 'slime_pyodide.py'}:five_episodes", tmp_path / "data") as server:
        page = Page(server.url)
        game_id = page.to_game()
        page.loaded(game_id)
        issued = page.next("pyodide_episode")
        steps, hashes = play_episode(issued["seed"], max_steps=90)
        honest = batches(game_id, 1, steps, hashes, first_batch=1, size=10)
        assert page.send_batch(honest[0])["type"] == "batch_ack"
        tampered = json.loads(json.dumps(honest[0]))
        tampered["steps"][0]["rewards"]["left"] = 100.0
        garbage = {"type": "step_batch", "game_id": game_id, "batch": "two", "steps": "lots"}
        # Refusals that use no number the server expects: the episode goes on.
        for batch in (tampered, garbage):
            reply = page.send_batch(batch, paced=False)
            assert reply["type"] == "error" and reply["code"] == "bad_batch", reply
            assert "refused" in reply["message"], reply

        def out_of_order(episode: int, number: int, steps: list[dict[str, Any]]) -> dict[str, Any]:
            return {**batches(game_id, episode, steps, [], first_batch=number + 1, size=10)[0]}

        def oversized(episode: int, number: int, steps: list[dict[str, Any]]) -> dict[str, Any]:
            many = [dict(s, step=1 + i) for i, s in enumerate(steps * 3)][:241]
            return {**batches(game_id, episode, many, [], first_batch=number, size=241)[0]}

        def future(episode: int, number: int, steps: list[dict[str, Any]]) -> dict[str, Any]:
            return batches(game_id, episode, steps, [], first_batch=number, size=80)[0]

        def bad_action(episode: int, number: int, steps: list[dict[str, Any]]) -> dict[str, Any]:
            batch = batches(game_id, episode, steps, [], first_batch=number, size=10)[0]
            batch = json.loads(json.dumps(batch))
            batch["steps"][3]["actions"]["left"] = 17
            return batch

        # Refusals of the number the server expects (or a later one) end the episode: each next one is
        # issued with that number.
        number, ended = 2, []
        for rule, bad in {
            "out_of_order": out_of_order,
            "oversized": oversized,
            "future_step": future,
            "bad_action": bad_action,
        }.items():
            episode = issued["episode"]
            if episode > 1:
                steps, hashes = play_episode(issued["seed"], max_steps=90)
            reply = page.send_batch(bad(episode, number, steps), paced=False)
            assert reply["type"] == "error" and reply["code"] == "bad_batch", (rule, reply)
            issued = page.next("pyodide_episode", timeout=5)
            assert (issued["episode"], issued["next_batch"]) == (episode + 1, number), rule
            ended.append(rule)
        play(page, game_id, issued, first_batch=number)
        assert page.next("scene")["scene"]["kind"] == "end"

        rejected = records(server, "rejected_batches", lambda rows: len(rows) >= 6)
        assert [r["rule"] for r in rejected] == ["replayed", "malformed", *ended]
        assert all(r["game_id"] == game_id and r["problem"] for r in rejected)
        episodes = records(server, "episodes", lambda rows: len(rows) >= 5)
        assert [(e["episode"], e["steps"], e["end_reason"]) for e in episodes] == [
            (1, 10, "batch_refused"),
            (2, 0, "batch_refused"),
            (3, 0, "batch_refused"),
            (4, 0, "batch_refused"),
            (5, 90, "truncated"),
        ]
        rows = records(server, "steps", lambda rows: len(rows) >= 200)
        assert len(rows) == 200  # the honest steps, once; nothing of the refused batches
        assert not [r for r in rows if r["reward"] == 100.0 or r["action"] == 17]
        page.close()


def test_a_reload_mid_episode_records_it_interrupted_and_restarts_it_with_its_seed(
    server: LiveServer,
) -> None:
    page = Page(server.url)
    token = page.welcome["token"]
    game_id = page.to_game()
    page.loaded(game_id)
    issued = page.next("pyodide_episode")
    steps, hashes = play_episode(issued["seed"], max_steps=90)
    for batch in batches(game_id, 1, steps, hashes, first_batch=1)[:2]:
        assert page.send_batch(batch)["type"] == "batch_ack"
    page.close()

    again = Page(server.url, token=token)
    status = again.next("game_status")
    assert status["game_id"] == game_id
    again.loaded(game_id)  # a new page loaded the runtime: the old one's episode is over
    replay = again.next("pyodide_episode")
    assert replay["episode"] == 2 and replay["seed"] == issued["seed"]
    assert replay["next_batch"] == 3  # the new page numbers its batches on from the server's count
    playing = [m for m in again.received if m["type"] == "game_status" and m["phase"] == "playing"]
    assert playing[-1]["episode"] == 1  # the participant sees the scene's first episode again

    sent = play(again, game_id, replay, first_batch=replay["next_batch"])
    last = again.next("pyodide_episode")
    assert (last["episode"], last["next_batch"]) == (3, 3 + len(sent))
    play(again, game_id, last, first_batch=last["next_batch"])
    assert again.next("scene")["scene"]["kind"] == "end"

    episodes = records(server, "episodes", lambda rows: len(rows) >= 3)
    assert [(e["episode"], e["seed"], e["steps"], e["end_reason"]) for e in episodes] == [
        (1, issued["seed"], 30, "interrupted"),
        (2, issued["seed"], 90, "truncated"),
        (3, last["seed"], 90, "truncated"),
    ]
    rows = records(server, "steps", lambda rows: len(rows) >= 2 * (30 + 90 + 90))
    assert Counter(r["episode"] for r in rows) == {1: 60, 2: 180, 3: 180}
    games = records(server, "games", lambda rows: any(r["event"] == "reloaded" for r in rows))
    reloaded = next(g for g in games if g["event"] == "reloaded")
    assert (reloaded["episode"], reloaded["step"], reloaded["rule"]) == (1, 30, "restart")
    assert_written_by_the_builders(server, "runtime_loaded", "reloaded")
    again.close()


def test_an_episode_is_issued_as_its_countdown_begins_and_a_reload_in_the_countdown_leaves_no_trace(
    tmp_path: Path,
) -> None:
    """The page gets the episode (and draws its first frame) when the countdown starts, as the server
    runtime shows it; it steps from the countdown's end. A reload during the countdown gets the same
    episode again: nothing was played, so nothing is recorded as interrupted."""
    with LiveServer(f"{HERE / 'studies' / 'slime_pyodide.py'}:with_countdown", tmp_path / "data") as server:
        page = Page(server.url)
        token = page.welcome["token"]
        game_id = page.to_game()
        page.loaded(game_id)
        issued = page.next("pyodide_episode")
        counting = page.next("game_status", phase="countdown")
        assert issued["episode"] == 1 and 1000 <= issued["start_in_ms"] <= 1500
        assert 1000 <= counting["countdown_ms"] <= 1500 and counting["episode"] == 1
        page.close()

        again = Page(server.url, token=token)
        again.next("game_status")
        again.loaded(game_id)
        reissued = again.next("pyodide_episode")
        assert (reissued["episode"], reissued["seed"], reissued["next_batch"]) == (1, issued["seed"], 1)
        assert reissued["start_in_ms"] > 1000  # a whole countdown again
        again.next("game_status", phase="playing", timeout=5)
        play(again, game_id, reissued, first_batch=1)
        second = again.next("pyodide_episode")
        assert second["episode"] == 2 and second["start_in_ms"] > 1000
        play(again, game_id, second, first_batch=second["next_batch"])
        assert again.next("scene")["scene"]["kind"] == "end"
        again.close()

        episodes = records(server, "episodes", lambda rows: len(rows) >= 2)
        assert [(e["episode"], e["steps"], e["end_reason"]) for e in episodes] == [
            (1, 90, "truncated"),
            (2, 90, "truncated"),
        ]
        games = read_records(server.data_dir, EXPERIMENT, "games")
        assert not [g for g in games if g["event"] == "reloaded"]


def test_a_page_that_cannot_load_the_game_moves_on_with_its_own_outcome(server: LiveServer) -> None:
    page = Page(server.url)
    game_id = page.to_game()
    page.send({"type": "runtime_load_failed", "game_id": game_id, "stage": "packages", "message": "no wheel"})
    end = page.next("scene")
    assert end["scene"]["kind"] == "end"
    assert "NOLOAD" in json.dumps(end)  # codes_by_outcome={"runtime_load_failed": ...}
    games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
    assert [(g["event"], g.get("stage") or g.get("reason")) for g in games[1:]] == [
        ("runtime_load_failed", "packages"),
        ("ended", "runtime_load_failed"),
    ]
    sessions = records(server, "sessions", lambda rows: any(r["event"] == "finished" for r in rows))
    finished = next(s for s in sessions if s["event"] == "finished")
    assert finished["detail"]["outcome"] == "runtime_load_failed"
    assert_written_by_the_builders(server, "runtime_load_failed")
    page.close()


def test_a_closed_tab_keeps_every_step_that_reached_the_server(server: LiveServer) -> None:
    page = Page(server.url)
    game_id = page.to_game()
    page.loaded(game_id)
    issued = page.next("pyodide_episode")
    steps, hashes = play_episode(issued["seed"], max_steps=90)
    for batch in batches(game_id, 1, steps, hashes, first_batch=1)[:3]:
        assert page.send_batch(batch)["type"] == "batch_ack"
    page.close()  # the tab is closed: the scene's abandon_after_s (3 s) later, the game ends
    episodes = records(server, "episodes", lambda rows: len(rows) >= 1)
    assert [(e["episode"], e["steps"], e["end_reason"]) for e in episodes] == [(1, 45, "abandoned")]
    rows = records(server, "steps", lambda rows: len(rows) >= 90)
    assert sorted({r["step"] for r in rows}) == list(range(1, 46)) and len(rows) == 90
    games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
    assert games[-1]["reason"] == "abandoned"


def test_a_refused_batch_ends_its_episode_and_the_next_is_numbered_from_it(server: LiveServer) -> None:
    """A batch refused with the number the server expects (here: an info over max_info_bytes, a real
    env's mistake) used to break the rest of its episode: the page numbers on, the server kept
    expecting that number. Now the episode ends ``batch_refused`` and the next one is issued with the
    number the server expects; a late batch of the ended episode is refused and changes nothing."""
    page = Page(server.url)
    game_id = page.to_game()
    page.loaded(game_id)
    first = page.next("pyodide_episode")
    steps, hashes = play_episode(first["seed"], max_steps=90)
    honest = batches(game_id, 1, steps, hashes, first_batch=1)
    assert page.send_batch(honest[0])["type"] == "batch_ack"
    bloated = json.loads(json.dumps(honest[1]))
    bloated["steps"][2]["infos"] = {"left": {"log": "x" * 2000}}  # the scene allows 1024 bytes
    reply = page.send_batch(bloated)
    assert reply["type"] == "error" and reply["code"] == "bad_batch" and "batch 2 refused" in reply["message"]

    second = page.next("pyodide_episode", timeout=5)
    assert (second["episode"], second["next_batch"]) == (2, 2) and second["seed"] != first["seed"]
    stale = page.send_batch(honest[2], paced=False)  # sent before the page heard of episode 2
    assert stale["type"] == "error" and "batch 3 refused" in stale["message"]
    sent = play(page, game_id, second, first_batch=2)  # every batch of it acknowledged
    assert [b["batch"] for b in sent] == [2, 3, 4, 5, 6, 7]
    end = page.next("scene")
    # The page ended episode 1 before the env did: the study's outcome says so (and its own code).
    assert end["scene"]["kind"] == "end" and "CUT1" in json.dumps(end) and "DONE1" not in json.dumps(end)

    episodes = records(server, "episodes", lambda rows: len(rows) >= 2)
    assert [(e["episode"], e["seed"], e["steps"], e["end_reason"]) for e in episodes] == [
        (1, first["seed"], 15, "batch_refused"),
        (2, second["seed"], 90, "truncated"),
    ]
    rejected = records(server, "rejected_batches", lambda rows: len(rows) >= 2)
    assert [(r["batch"], r["episode"], r["rule"], r["expected_batch"]) for r in rejected] == [
        (2, 1, "oversized", 2),
        (3, 1, "out_of_order", 2),
    ]
    rows = records(server, "steps", lambda rows: len(rows) >= 2 * (15 + 90))
    keys = Counter((r["episode"], r["step"], r["agent"]) for r in rows)
    assert len(rows) == 2 * (15 + 90) and set(keys.values()) == {1}
    assert max(r["step"] for r in rows if r["episode"] == 1) == 15
    games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
    assert games[-1]["event"] == "ended" and games[-1]["reason"] == "completed_cut_short"
    sessions = records(server, "sessions", lambda rows: any(r["event"] == "finished" for r in rows))
    assert next(s for s in sessions if s["event"] == "finished")["detail"]["outcome"] == "episodes_cut_short"
    assert_written_by_the_builders(server, "runtime_loaded", "rejected_batches")
    page.close()


def test_steps_are_written_exactly_as_json_dumps_writes_them_whatever_the_values(server: LiveServer) -> None:
    """Batches whose values every JSON encoder writes alike skip the sink's per-row check; a batch
    with a reward like 1e-05 or a NaN in an info must not: its lines are json.dumps's."""
    page = Page(server.url)
    game_id = page.to_game()
    page.loaded(game_id)
    issued = page.next("pyodide_episode")
    steps, hashes = play_episode(issued["seed"], max_steps=90)
    sent = batches(game_id, 1, steps, hashes, first_batch=1)
    sent[1]["steps"][2]["rewards"]["right"] = 1e-05
    sent[2]["steps"][4]["infos"] = {"left": {"v": float("nan")}, "right": None}
    for batch in sent[:4]:
        assert page.send_batch(batch)["type"] == "batch_ack"
    records(server, "steps", lambda rows: len(rows) >= 120)
    lines = (server.data_dir / EXPERIMENT / "steps.jsonl").read_text().splitlines()
    assert len(lines) == 120
    for line in lines:
        row = json.loads(line)
        assert line == json.dumps(row, ensure_ascii=False, separators=(",", ":")), line
    assert sum('"reward":1e-05' in line for line in lines) == 1
    assert sum('"info":{"v":NaN}' in line for line in lines) == 1
    page.close()


# --- the scene's runtime_options ---------------------------------------------------------------------
WITH_OPTIONS = f"{HERE / 'studies' / 'slime_pyodide.py'}:with_options"


def serve_with(tmp_path: Path, options: dict[str, Any]) -> LiveServer:
    return LiveServer(WITH_OPTIONS, tmp_path / "data", env={"IGYM_TEST_PYODIDE_OPTIONS": json.dumps(options)})


def test_one_acknowledgement_a_second_covers_every_batch_stored_and_a_resend_is_answered_at_once(
    tmp_path: Path,
) -> None:
    with serve_with(tmp_path, {}) as server:  # the default ack_interval_ms: 1000
        page = Page(server.url)
        game_id = page.to_game()
        page.loaded(game_id)
        issued = page.next("pyodide_episode")
        steps, hashes = play_episode(issued["seed"], max_steps=90)
        sent = batches(game_id, 1, steps, hashes, first_batch=1, size=10)  # 9 batches
        began = time.monotonic()
        for batch in sent[:4]:  # within the first second of the episode, without waiting
            page.send(batch)
        first = page.next("batch_ack")
        assert first["batch"] == 1  # the game's first: at once
        second = page.next("batch_ack", timeout=3)
        assert second["batch"] == 4  # one acknowledgement for batches 2, 3 and 4, a second later
        assert 0.7 <= time.monotonic() - began < 2.5
        page.send(sent[1])  # a re-send (after a reconnect, say): answered at once, stored once
        assert page.next("batch_ack", timeout=0.5)["batch"] == 4
        for batch in sent[4:]:
            time.sleep(
                max(0.0, page.episode_started + batch["steps"][-1]["step"] / 30 - 1.5 - time.monotonic())
            )
            page.send(batch)
        last = page.next("batch_ack", timeout=3, batch=9)  # the episode's last batch: at once
        acks = [m["batch"] for m in page.received if m["type"] == "batch_ack"]
        assert acks[-1] == 9 and len(acks) < len(sent) + 1 and last["game_id"] == game_id
        assert acks == sorted(acks)
        rows = records(server, "steps", lambda rows: len(rows) >= 180)
        assert len(rows) == 180 and len({(r["step"], r["agent"]) for r in rows}) == 180
        page.close()


def test_a_load_timeout_with_end_takes_the_participant_to_the_end_scene_and_its_code(tmp_path: Path) -> None:
    with serve_with(tmp_path, {"load_timeout_s": 5, "on_load_timeout": "end"}) as server:
        page = Page(server.url)
        game_id = page.to_game()
        began = time.monotonic()
        end = page.next("scene", timeout=15)  # the page never reports runtime_loaded
        assert 4.5 <= time.monotonic() - began < 10  # load_timeout_s from the game's start
        assert end["scene"]["kind"] == "end" and "NOLOAD" in json.dumps(end)  # past both pages
        games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
        assert [(g["event"], g.get("reason")) for g in games if g["game_id"] == game_id][1:] == [
            ("load_timeout", None),
            ("ended", "load_timeout"),
        ]
        assert_written_by_the_builders(server, "load_timeout")
        page.close()


def test_a_failed_load_skips_to_the_named_scene_with_the_outcome(tmp_path: Path) -> None:
    with serve_with(tmp_path, {"load_timeout_scene": "questions"}) as server:
        page = Page(server.url)
        game_id = page.to_game()
        page.send(
            {"type": "runtime_load_failed", "game_id": game_id, "stage": "runtime", "message": "no wasm"}
        )
        assert page.next("scene")["scene"]["scene_id"] == "questions"
        sessions = records(server, "sessions", lambda rows: any(r["event"] == "scene_left" for r in rows))
        left = next(s for s in sessions if s["event"] == "scene_left" and s["scene_id"] == "slime")
        assert left["detail"]["outcome"] == "runtime_load_failed"
        page.close()


def test_a_reload_with_next_goes_on_to_the_next_seed(tmp_path: Path) -> None:
    with serve_with(tmp_path, {"on_reload": "next"}) as server:
        page = Page(server.url)
        token = page.welcome["token"]
        game_id = page.to_game()
        page.loaded(game_id)
        issued = page.next("pyodide_episode")
        steps, hashes = play_episode(issued["seed"], max_steps=90)
        assert page.send_batch(batches(game_id, 1, steps, hashes, first_batch=1)[0])["type"] == "batch_ack"
        page.close()
        again = Page(server.url, token=token)
        again.loaded(game_id)
        following = again.next("pyodide_episode")
        assert (
            following["episode"] == 2 and following["seed"] != issued["seed"] and following["next_batch"] == 2
        )
        playing = [m for m in again.received if m["type"] == "game_status" and m["phase"] == "playing"]
        assert playing[-1]["episode"] == 2  # the scene's second (and last) episode
        episodes = records(server, "episodes", lambda rows: len(rows) >= 1)
        assert [(e["episode"], e["end_reason"], e["steps"]) for e in episodes] == [(1, "interrupted", 15)]
        again.close()


def test_no_new_episode_starts_while_the_data_cannot_be_saved(tmp_path: Path) -> None:
    from igym_core.testing.full_disk import mount_full_disk

    with mount_full_disk(tmp_path / "disk", size_kib=1024) as disk:
        with LiveServer(STUDY, disk.path, env={"IGYM_MAX_UNSAVED_BYTES": "0"}) as server:
            page = Page(server.url)
            game_id = page.to_game()
            page.loaded(game_id)
            first = page.next("pyodide_episode")
            disk.fill()
            play(page, game_id, first, first_batch=1)  # the episode under way is played out
            paused = page.next("game_status", phase="paused", timeout=15)
            assert paused["pause_reason"] == "saving" and "save" in paused["message"]
            assert not [m for m in page.received if m["type"] == "pyodide_episode" and m["episode"] == 2]
            disk.free()
            second = page.next("pyodide_episode", timeout=20)
            assert second["episode"] == 2 and second["next_batch"] == 7
            page.close()
        assert_one_saving_pause(disk.path, EXPERIMENT, {1: 180})


def test_the_scene_message_names_the_runtime_its_module_and_what_the_page_runs(server: LiveServer) -> None:
    import importlib.util

    page = Page(server.url)
    page.submit({"agree": True})
    view = page.scene["scene"]
    assert (view["runtime"], view["runtime_module"]) == ("pyodide", "/plugins/pyodide/runtime.js")
    if importlib.util.find_spec("igym_pyodide_p2p.game_spec") is None:  # the browser side is not installed
        assert "runtime_view" not in view
    else:
        assert view["runtime_view"]["game"]["hash_every"] == 30
    page.close()


def test_the_browsers_own_stepping_code_is_stored_in_full_and_verifies(server: LiveServer) -> None:
    """Contract 4 end to end: the page's stepping code (``browser/``, here under CPython) plays the
    study over a real socket with the spec the server sent; every batch is stored, none refused,
    and ``igym verify`` re-runs the episodes to the same rewards and state hashes."""
    stepper = pytest.importorskip(
        "igym_pyodide_p2p.browser.stepper", reason="the browser side is not installed"
    )
    from igym_pyodide_p2p.browser.spec import GameSpec

    page = Page(server.url)
    page.submit({"agree": True})
    spec = GameSpec.from_json(page.scene["scene"]["runtime_view"]["game"])
    game_id = page.next("game_status")["game_id"]
    game = stepper.BrowserGame(spec, game_id=game_id)
    page.loaded(game_id)
    keys = [["ArrowRight"], ["ArrowUp", "ArrowLeft"], [], ["ArrowUp"]]
    for number in (1, 2):
        issued = page.next("pyodide_episode")
        assert issued["episode"] == number
        game.start_episode(issued["episode"], issued["seed"], max_steps=issued["max_steps"])
        done = False
        n = 0
        while not done:
            game.set_held(keys[(n // 10) % len(keys)])
            done = game.step(time.time() * 1000)["done"]
            n += 1
            if done or n % 15 == 0:
                batch = game.take_batch()
                if batch is not None:
                    reply = page.send_batch(json.loads(json.dumps(batch)))
                    assert reply["type"] == "batch_ack", reply
        page.send(game.episode_done())
    assert page.next("scene")["scene"]["kind"] == "end"
    page.close()

    assert records(server, "rejected_batches", lambda rows: True) == []
    rows = records(server, "steps", lambda rows: len(rows) >= 360)
    assert len(rows) == 360 and {r["action_source"] for r in rows} >= {"human", "bot"}
    result = subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "verify", str(server.data_dir / EXPERIMENT)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 2 browser-run episodes of 1 game match" in result.stdout


def test_a_connected_page_that_stops_sending_steps_moves_the_participant_on(tmp_path: Path) -> None:
    with serve_with(tmp_path, {"load_timeout_s": 5}) as server:
        page = Page(server.url)
        game_id = page.to_game()
        page.loaded(game_id)
        issued = page.next("pyodide_episode")
        steps, hashes = play_episode(issued["seed"], max_steps=90)
        assert page.send_batch(batches(game_id, 1, steps, hashes, first_batch=1)[0])["type"] == "batch_ack"
        began = time.monotonic()
        after = page.next("scene", timeout=15)  # connected, and silent (its worker died, say)
        assert 4 <= time.monotonic() - began < 10
        assert after["scene"]["scene_id"] == "after_game"  # on_load_timeout="skip": the next scene
        episodes = records(server, "episodes", lambda rows: len(rows) >= 1)
        assert [(e["episode"], e["steps"], e["end_reason"]) for e in episodes] == [(1, 15, "stalled")]
        games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
        assert [(g["event"], g.get("reason")) for g in games][-2:] == [
            ("stalled", None),
            ("ended", "stalled"),
        ]
        assert_written_by_the_builders(server, "runtime_loaded", "stalled")
        page.close()


def test_a_reloaded_page_that_cannot_load_ends_the_episode_it_cut_short(server: LiveServer) -> None:
    page = Page(server.url)
    token = page.welcome["token"]
    game_id = page.to_game()
    page.loaded(game_id)
    issued = page.next("pyodide_episode")
    steps, hashes = play_episode(issued["seed"], max_steps=90)
    assert page.send_batch(batches(game_id, 1, steps, hashes, first_batch=1)[0])["type"] == "batch_ack"
    page.close()
    again = Page(server.url, token=token)
    again.send({"type": "runtime_load_failed", "game_id": game_id, "stage": "env", "message": "no memory"})
    assert again.next("scene")["scene"]["kind"] == "end"
    episodes = records(server, "episodes", lambda rows: len(rows) >= 1)
    assert [(e["episode"], e["steps"], e["end_reason"]) for e in episodes] == [(1, 15, "interrupted")]
    again.close()
