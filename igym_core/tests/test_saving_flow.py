"""No way out without the data: what participants see and the server does while a sink cannot write.

The data directory is a real small disk (a tmpfs, igym_core.testing.full_disk) that each test
fills up and frees again; the server is the real app through Litestar's test client.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from igym_core import EndScene, Experiment, GymScene, StartScene, SurveyScene, TextQuestion
from igym_core.builtin.scene_gym import WaitingRoom
from igym_core.envs import resolve_callable
from igym_core.session.saving import SAVING_MESSAGE
from igym_core.testing import ScriptedParticipant, make_test_app, read_records
from igym_core.testing.full_disk import SmallDisk, mount_full_disk

HERE = Path(__file__).resolve().parent
_envs = f"{HERE / 'game_envs.py'}"
Duel = resolve_callable(f"{_envs}:Duel", what="test env")
corridor_scene = resolve_callable(f"{_envs}:corridor_scene", what="test scene")
game_study = resolve_callable(f"{_envs}:game_study", what="test study")

SURVEY = Experiment(
    experiment_id="saving",
    seed=1,
    scenes=(
        StartScene(scene_id="consent", body="Take part?"),
        SurveyScene(scene_id="about", questions=(TextQuestion(id="name", prompt="Your name?"),)),
        EndScene(scene_id="end", completion_code="auto"),
    ),
)


# Longer than a page: a full tmpfs still takes what fits in the last page of a file, as a real disk
# takes what fits in a file's last block, so a short answer could still be stored.
ESSAY = "I like games. " * 500


@pytest.fixture
def disk(tmp_path: Path) -> Any:
    with mount_full_disk(tmp_path / "disk", size_kib=1024) as small:
        yield small


def _app(experiment: Experiment, disk: SmallDisk) -> Any:
    # The periodic flush and the retries every 100 ms: a recovery shows within a fraction of a second.
    return make_test_app(experiment, disk.path / "data", flush_interval_ms=100)


def _events(disk: SmallDisk, experiment_id: str, participant_id: str | None) -> list[str]:
    rows = read_records(disk.path / "data", experiment_id, "sessions")
    return [r["event"] for r in rows if r["participant_id"] == participant_id]


def test_a_participant_who_finishes_during_a_full_disk_waits_and_gets_the_code_once_saved(disk):
    app = _app(SURVEY, disk)
    with TestClient(app) as client, ScriptedParticipant(client, params={"PROLIFIC_PID": "A"}) as p:
        study = app.state.study
        p.submit({"agree": True})
        assert p.scene["scene"]["scene_id"] == "about"
        disk.fill()

        reply = p.submit({"name": ESSAY})
        assert reply == {"type": "saving", "position": 2, "message": SAVING_MESSAGE}
        assert p.scene["scene"]["scene_id"] == "about"  # no end scene, no code
        # The page sends its answers again (a retry): the answer is not recorded twice.
        p.send({"type": "submit", "seq": p.next_seq(), "position": 1, "answers": {"name": ESSAY}})
        assert p.receive_type("error")["code"] == "stale_position"
        assert p.receive() == reply
        # A reload shows the same state.
        with ScriptedParticipant(client, token=p.token) as again:
            assert again.saving == reply and again.scene == {}
            # Someone new is refused, with a message, while the data cannot be saved.
            newcomer = client.websocket_connect("/ws")
            ws = newcomer.__enter__()
            ws.send_bytes(_hello())
            refused = _unpack(ws.receive_bytes(timeout=5))
            assert refused["type"] == "error" and refused["code"] == "unavailable"
            assert "cannot save data" in refused["message"]
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_bytes(timeout=5)
            assert closed.value.code == 1013
            assert study.summary()["participants"] == 1

            disk.free()
            scene = again.receive_type("scene")  # pushed by the server once the retry succeeds
            assert scene["scene"]["scene_id"] == "end"
            code = scene["context"]["completion_code"]
            assert code

    responses = read_records(disk.path / "data", "saving", "responses")
    assert [(r["question_id"], r["value"]) for r in responses] == [("agree", True), ("name", ESSAY)]
    events = _events(disk, "saving", p.participant_id)
    assert Counter(events)["finished"] == 1 and Counter(events)["scene_entered"] == 3
    finished = next(
        r for r in read_records(disk.path / "data", "saving", "sessions") if r["event"] == "finished"
    )
    assert finished["detail"]["values"]["completion_code"] == code
    raw = (disk.path / "data" / "saving" / "sessions.jsonl").read_bytes()
    assert raw.endswith(b"\n")


def _hello() -> bytes:
    import msgpack

    return msgpack.packb({"type": "hello", "protocol": 1, "token": None, "params": {}})


def _unpack(frame: bytes) -> dict[str, Any]:
    import msgpack

    return msgpack.unpackb(frame, raw=False)


def test_a_game_that_ends_during_a_full_disk_moves_its_player_on_once_saved(disk):
    experiment = game_study(corridor_scene(num_episodes=1, max_steps=40), experiment_id="saving_game", seed=2)
    app = _app(experiment, disk)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        disk.fill()
        p.game_ready(status["game_id"])
        saving, _seen = p.receive_until(lambda m: m["type"] in ("saving", "scene"))
        assert saving["type"] == "saving"  # not a scene while the records wait
        disk.free()
        scene, _seen = p.receive_until(lambda m: m["type"] == "scene")
        assert scene["scene"]["scene_id"] == "after"
    steps = read_records(disk.path / "data", "saving_game", "steps")
    assert [s["step"] for s in steps] == list(range(1, 41))


def _duel(waiting_room: WaitingRoom) -> GymScene:
    """A two-person game of the test env ``Duel`` with this waiting room."""
    return GymScene(
        scene_id="duel",
        env_factory=Duel,
        human_seats=("human", "bot"),
        action_mapping={"ArrowUp": 4, "ArrowLeft": 1},
        default_action=0,
        fps=60,
        max_steps=30,
        countdown_s=0,
        waiting_room=waiting_room,
    )


def test_players_still_on_consent_are_not_matched_while_their_data_cannot_be_saved(disk):
    duel = _duel(WaitingRoom(timeout_s=30))
    experiment = Experiment(
        experiment_id="saving_duel",
        seed=3,
        scenes=(StartScene(scene_id="consent", body="Take part?"), duel, EndScene(scene_id="end")),
    )
    app = _app(experiment, disk)
    with (
        TestClient(app) as client,
        ScriptedParticipant(client, params={"PROLIFIC_PID": "A"}) as a,
        ScriptedParticipant(client, params={"PROLIFIC_PID": "B"}) as b,
    ):
        study = app.state.study
        disk.fill()
        assert a.submit({"agree": True})["type"] == "saving"
        assert b.submit({"agree": True})["type"] == "saving"
        time.sleep(0.3)  # several retries, all failing
        assert study.games.games == {} and study.games.game_of == {}  # nobody queued or matched
        assert a.scene["scene"]["scene_id"] == b.scene["scene"]["scene_id"] == "consent"
        disk.free()
        for p in (a, b):
            scene, _seen = p.receive_until(lambda m: m["type"] == "scene")
            assert scene["scene"]["scene_id"] == "duel"
        game = a.receive_until(lambda m: m["type"] == "game_status" and m["game_id"] is not None)[0]
        assert (
            b.receive_until(lambda m: m["type"] == "game_status" and m["game_id"])[0]["game_id"]
            == game["game_id"]
        )
    matched = [
        r for r in read_records(disk.path / "data", "saving_duel", "matches") if r["event"] == "matched"
    ]
    assert len(matched) == 1


def test_a_waiting_room_redirect_during_a_full_disk_waits_until_the_records_are_saved(disk):
    duel = _duel(
        WaitingRoom(
            timeout_s=0.5,
            on_timeout="redirect",
            timeout_redirect_url="https://example.org/return?p={PROLIFIC_PID}",
        )
    )
    experiment = Experiment(
        experiment_id="saving_timeout",
        seed=3,
        url_params=("PROLIFIC_PID",),
        scenes=(duel, EndScene(scene_id="end")),
    )
    app = _app(experiment, disk)
    with TestClient(app) as client, ScriptedParticipant(client, params={"PROLIFIC_PID": "A"}) as a:
        a.receive_until(lambda m: m["type"] == "game_status")
        disk.fill()
        # Big enough not to fit in what is left of the files' last pages.
        app.state.study.recorder.write("sessions", {"event": "note", "detail": {"pad": ESSAY}})
        reply, seen = a.receive_until(lambda m: m["type"] == "saving" or m.get("redirect_url"))
        assert reply["type"] == "saving"
        assert not any(m.get("redirect_url") for m in seen)
        disk.free()
        final, _seen = a.receive_until(lambda m: m["type"] == "game_status" and m.get("final"))
        assert final["redirect_url"] == "https://example.org/return?p=A"
    sessions = read_records(disk.path / "data", "saving_timeout", "sessions")
    finished = [r for r in sessions if r["event"] == "finished"]
    assert len(finished) == 1 and finished[0]["detail"]["outcome"] == "waiting_timeout"


LONG_SURVEY = Experiment(
    experiment_id="saving_many",
    seed=6,
    scenes=(
        *(
            SurveyScene(scene_id=f"q{i}", questions=(TextQuestion(id="text", prompt=f"Question {i}?"),))
            for i in range(4)
        ),
        EndScene(scene_id="end", completion_code="auto"),
    ),
)


@pytest.fixture(scope="module")
def shared_disk(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with mount_full_disk(tmp_path_factory.mktemp("shared") / "disk", size_kib=2048) as small:
        yield small


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(st.sampled_from(["submit", "resubmit", "reload", "fill", "free"]), min_size=1, max_size=14)
)
def test_page_and_server_agree_and_every_answer_is_stored_once_whatever_the_disk_does(shared_disk, steps):
    disk = shared_disk
    disk.free()
    for old in disk.path.glob("data*"):
        shutil.rmtree(old)
    data = disk.path / "data"
    app = make_test_app(LONG_SURVEY, data, flush_interval_ms=50)
    answered: list[str] = []
    with TestClient(app) as client:
        p = ScriptedParticipant(client).connect()
        study = app.state.study
        participant = study.by_id[p.participant_id]

        def settle() -> None:
            """With room on the disk, a waiting page gets its scene (the server retries on its own)."""
            if p.saving is not None and disk.free_bytes() > 64 * 1024:
                p.receive_until(lambda m: m["type"] == "scene")
            page_position = p.saving["position"] if p.saving is not None else p.position
            assert participant.position == page_position
            assert (p.participant_id in getattr(study, "saves", ())) == (p.saving is not None)

        try:
            for step in [*steps, "free", "submit", "submit", "submit", "submit", "free"]:
                if step == "fill":
                    disk.fill()
                elif step == "free":
                    disk.free()
                elif step == "reload":
                    p.close()
                    p = ScriptedParticipant(client, token=p.token).connect()
                elif p.saving is None and p.kind == "survey":
                    if step == "resubmit" and answered:  # an old scene again: a late retry
                        p.send(
                            {
                                "type": "submit",
                                "seq": p.next_seq(),
                                "position": p.position - 1,
                                "answers": {"text": "late"},
                            }
                        )
                        assert p.receive_type("error")["code"] == "stale_position"
                        p._scene_or_saving(p.receive_type("scene", "saving"))
                    else:
                        text = f"{p.scene['scene']['scene_id']}: {ESSAY}"
                        p.submit({"text": text})
                        answered.append(text)
                settle()
            assert p.saving is None and p.kind == "end"
            code = p.scene["context"]["completion_code"]
        finally:
            p.close()
    responses = read_records(data, "saving_many", "responses")
    assert [r["value"] for r in responses] == answered
    finished = [r for r in read_records(data, "saving_many", "sessions") if r["event"] == "finished"]
    assert [f["detail"]["values"]["completion_code"] for f in finished] == [code]
