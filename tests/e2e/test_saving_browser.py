"""What a participant sees when the server's disk is full: a real `igym run` process whose data
directory is a small tmpfs that the test fills and frees, and real Chromium pages."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from igym_core.testing import read_records
from igym_core.testing.full_disk import mount_full_disk
from tests.conftest import LiveServer

SAVING = "We could not save your progress yet. Please keep this page open; we are trying again."
# Longer than a page of the tmpfs: a full disk still takes what fits in a file's last page.
STORY = "Once upon a time there was a very full disk. " * 120


def _log_events(server: LiveServer, event: str) -> list[dict[str, Any]]:
    rows = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            if row.get("event") == event:
                rows.append(row)
    return rows


def test_a_full_disk_shows_saving_then_the_completion_code_once_there_is_room(
    tmp_path: Path, new_page: Any, shots: Any
) -> None:
    with mount_full_disk(tmp_path / "disk", size_kib=1024) as disk:
        # The data directory is the small disk; the server's log is next to it (not on it).
        server = LiveServer("tests.studies.saving_study:experiment", disk.path)
        try:
            page = new_page()
            page.goto(f"{server.url}/?PROLIFIC_PID=full-disk")
            page.get_by_role("checkbox").check()
            page.get_by_role("button", name="Continue", exact=True).click()
            expect(page.get_by_role("heading", level=1, name="About you")).to_be_visible()
            page.get_by_role("textbox", name="Tell us a story.").fill(STORY)

            disk.fill()
            page.get_by_role("button", name="Continue", exact=True).click()
            expect(page.get_by_text(SAVING)).to_be_visible()
            expect(page.get_by_role("heading", level=1, name="Saving your progress")).to_be_visible()
            expect(page.locator(".igym-code")).to_have_count(0)
            shots(page, "1-saving")

            # Someone new arrives meanwhile: refused, with a message, and the page keeps trying.
            newcomer = new_page()
            newcomer.goto(f"{server.url}/?PROLIFIC_PID=newcomer")
            expect(newcomer.get_by_text(re.compile("cannot take new participants right now"))).to_be_visible()
            shots(newcomer, "2-newcomer-refused")
            # A reload during the failure shows the same state, not the scene after it.
            page.reload()
            expect(page.get_by_text(SAVING)).to_be_visible()

            failed = _log_events(server, "sink_failed")
            assert len(failed) == 1, failed
            assert failed[0]["errno"] == "ENOSPC" and failed[0]["sink"] == "jsonl"
            assert failed[0]["data_dir"] == str(disk.path / "saving_browser")

            disk.free()
            code = page.locator(".igym-code")
            expect(code).to_be_visible(timeout=10_000)  # pushed by the server when a retry succeeds
            expect(page.get_by_text(SAVING)).to_be_hidden()
            shots(page, "3-saved-completion-code")
            expect(newcomer.get_by_role("checkbox")).to_be_visible(timeout=15_000)  # admitted now
            assert page.errors == [] and newcomer.errors == []
            shown = code.inner_text().strip()
            assert len(_log_events(server, "sink_recovered")) == 1
        finally:
            server.stop()
        data = disk.path
        responses = read_records(data, "saving_browser", "responses")
        stories = [r["value"] for r in responses if r["question_id"] == "story"]
        assert stories == [STORY]
        finished = [r for r in read_records(data, "saving_browser", "sessions") if r["event"] == "finished"]
        assert [f["detail"]["values"]["completion_code"] for f in finished] == [shown]
        for path in (data / "saving_browser").glob("*.jsonl"):
            assert path.read_bytes().endswith(b"\n"), path


def test_a_game_pauses_with_the_saving_message_over_it_while_data_waits_and_resumes_once_saved(
    tmp_path: Path, new_page: Any, shots: Any
) -> None:
    from tests.e2e.game_pages import game, wait_phase

    with mount_full_disk(tmp_path / "disk", size_kib=1024) as disk:
        # A small cap (64 KiB, about 3 s of this game's steps): the pause comes soon after the disk fills.
        server = LiveServer(
            "tests.studies.saving_game:experiment", disk.path, env={"IGYM_MAX_UNSAVED_BYTES": "65536"}
        )
        try:
            page = new_page()
            page.goto(f"{server.url}/?PROLIFIC_PID=paused-game")
            wait_phase(page, "playing")
            page.keyboard.down("ArrowRight")
            disk.fill()

            overlay = page.locator(".igym-game-overlay")
            expect(overlay.get_by_text(SAVING)).to_be_visible(timeout=15_000)
            expect(overlay.get_by_text("Game paused")).to_be_visible()
            assert game(page)["pause_reason"] == "saving"
            expect(page.locator("canvas")).to_be_visible()  # the game stays on screen, under the message
            tick = game(page)["tick"]
            shots(page, "1-game-paused-saving")
            page.wait_for_timeout(1000)
            assert game(page)["tick"] == tick and game(page)["phase"] == "paused"  # no frames meanwhile
            held = _log_events(server, "recording_held")
            assert len(held) == 1 and held[0]["max_unsaved_bytes"] == 65536

            disk.free()
            wait_phase(page, "playing", timeout_s=15)
            expect(overlay).to_be_hidden()
            poll_tick = tick + 15
            page.wait_for_function(f"() => window.igym.state.game.tick >= {poll_tick}", timeout=10_000)
            shots(page, "2-game-resumed")
            page.keyboard.up("ArrowRight")
            expect(page.get_by_role("heading", level=1, name="Thanks")).to_be_visible(timeout=20_000)
            assert page.errors == []
            assert len(_log_events(server, "recording_resumed")) == 1
        finally:
            server.stop()
        data = disk.path / "saving_game_browser"
        steps = read_records(disk.path, "saving_game_browser", "steps")
        assert [s["step"] for s in steps] == list(range(1, 241))
        games = [
            (g["event"], g.get("reason")) for g in read_records(disk.path, "saving_game_browser", "games")
        ]
        assert ("paused", "saving") in games and ("resumed", "saving") in games
        for path in data.glob("*.jsonl"):
            assert path.read_bytes().endswith(b"\n"), path
