"""Games nobody plays, against a real server: they pause at once, end as abandoned, and the scene's
``on_abandon`` decides whether the participant may go on (and to which outcome and code)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from igym_core.testing import read_records
from tests.test_restart import Browserless

STUDY = "tests/studies/short_game.py"


def _wait_for(check: Any, timeout_s: float = 15) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def _start_and_leave(url: str) -> tuple[Browserless, str]:
    """Join, play a few frames, close the page; return the participant and their game id."""
    player = Browserless(url)
    status = player.recv()
    assert status["type"] == "game_status"
    player.send({"type": "game_ready", "game_id": status["game_id"]})
    while (message := player.recv())["type"] != "frame" or message["step"] < 5:
        pass
    player.ws.close()
    return player, status["game_id"]


def _abandoned(data_dir: Any, game_id: str) -> bool:
    return any(
        g["game_id"] == game_id and g["event"] == "ended" and g["reason"] == "abandoned"
        for g in read_records(data_dir, "short_game", "games")
    )


def _finished(data_dir: Any, pid: str) -> dict[str, Any]:
    (row,) = [
        e
        for e in read_records(data_dir, "short_game", "sessions")
        if e["participant_id"] == pid and e["event"] == "finished"
    ]
    return row


def test_an_abandoned_game_ends_the_study_with_a_message_and_no_code_by_default(live_server) -> None:
    server = live_server(f"{STUDY}:abandon_end")
    player, game_id = _start_and_leave(server.url)
    _wait_for(lambda: _abandoned(server.data_dir, game_id))

    back = Browserless(server.url, token=player.welcome["token"])
    assert back.welcome["resumed"] is True
    assert back.scene["scene"]["kind"] == "gym"  # still on the game page: the study ended there
    status = back.recv()
    assert status["type"] == "game_status" and status["final"] is True
    assert status["outcome"] == "game_abandoned" and "completion code" in status["message"]
    back.seq += 1  # nothing moves them on: a submit is refused
    back.send({"type": "submit", "seq": back.seq, "position": back.scene["position"], "answers": {}})
    # (The game's final status may come again first, when its own resend races the resume.)
    while (reply := back.recv())["type"] == "game_status":
        assert reply["final"] is True and reply["outcome"] == "game_abandoned"
    assert reply["type"] == "error"
    back.ws.close()
    finished = _finished(server.data_dir, player.welcome["participant_id"])
    assert finished["detail"]["outcome"] == "game_abandoned"
    assert "completion_code" not in finished["detail"]["values"]
    (episode,) = [
        e for e in read_records(server.data_dir, "short_game", "episodes") if e["game_id"] == game_id
    ]
    assert episode["end_reason"] == "abandoned" and episode["pauses"] == 1


@pytest.mark.parametrize(
    ("study", "earns_code"), [("abandon_continue", True), ("abandon_continue_no_code", False)]
)
def test_with_on_abandon_continue_the_end_scene_knows_the_outcome_and_its_code(
    live_server, study: str, earns_code: bool
) -> None:
    server = live_server(f"{STUDY}:{study}")
    player, game_id = _start_and_leave(server.url)
    _wait_for(lambda: _abandoned(server.data_dir, game_id))

    back = Browserless(server.url, token=player.welcome["token"])
    assert back.scene["scene"]["kind"] == "end"
    context = back.scene["context"]
    assert context["outcome"] == "game_abandoned"
    assert ("completion_code" in context) is earns_code
    back.ws.close()
    finished = _finished(server.data_dir, player.welcome["participant_id"])
    assert finished["detail"]["outcome"] == "game_abandoned"
    assert ("completion_code" in finished["detail"]["values"]) is earns_code


def test_sixty_throwaway_games_stop_producing_steps_at_once(live_server) -> None:
    """QA: 400 pages opened and closed at once kept their games playing for 60 s each."""
    # Long episodes, abandon_after_s 600 (opening 60 pages on a loaded machine can take a minute: a
    # game whose page never came would be abandoned under the test); 60 new participants from one
    # address within a minute.
    server = live_server(f"{STUDY}:throwaway", env={"IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN": "0"})
    pages = []
    for index in range(60):
        page = Browserless(server.url)
        status = page.recv()
        if index % 2 == 0:  # half load the game page before leaving, half leave at once
            page.send({"type": "game_ready", "game_id": status["game_id"]})
        pages.append(page)
    while (message := pages[-2].recv())["type"] != "frame" or message["step"] <= 3:
        pass  # the last ready game is playing
    for page in pages:
        page.ws.close()

    def stats() -> dict[str, Any]:
        return server.stats()["runtimes"]["server"]

    # Within a tick of the pages going, every game is paused; the records already made reach the
    # disk within the recorder's flush interval (500 ms).
    _wait_for(lambda: len([g for g in _games(server) if g["event"] == "paused"]) == 60)
    time.sleep(0.7)
    before, steps_before = stats(), len(read_records(server.data_dir, "short_game", "steps"))
    assert steps_before > 0
    time.sleep(1.5)
    after, steps_after = stats(), len(read_records(server.data_dir, "short_game", "steps"))
    assert steps_after == steps_before  # no step played or recorded for a game nobody is at
    assert after["ticks"] == before["ticks"]  # and no tick spent on them
    assert after["games"] == 60  # still there, for a participant who comes back within 60 s


def _games(server: Any) -> list[dict[str, Any]]:
    return read_records(server.data_dir, "short_game", "games")
