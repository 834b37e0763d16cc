"""The server runtime tells an env which seats' observations are read (``set_observed_agents``):
the bots' seats at the start, every seat when observations are recorded, and again when a bot takes
over a seat whose player left or gives it back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from igym_core import EndScene, Experiment, GymScene, StaticScene
from igym_core.builtin.scene_gym import WaitingRoom
from igym_core.envs import resolve_callable, tell_observed_agents
from igym_core.testing import ScriptedParticipant, make_test_app, read_records

HERE = Path(__file__).resolve().parent
WATCHED = f"{HERE / 'observed_envs.py'}:Watched"
READS = resolve_callable(f"{HERE / 'observed_envs.py'}:ReadsObservations", what="test policy")


def scene(**overrides: Any) -> GymScene:
    options: dict[str, Any] = dict(
        scene_id="watched",
        env_factory=WATCHED,
        human_seat="human",
        policies={"bot": READS},
        action_mapping={"ArrowUp": 4, "ArrowLeft": 1},
        default_action=0,
        fps=60,
        max_steps=40,
        countdown_s=0,
    )
    options.update(overrides)
    return GymScene(**options)


def study(*scenes: Any) -> Experiment:
    return Experiment(
        experiment_id="observed_test",
        seed=3,
        scenes=(*scenes, StaticScene(scene_id="after", body="Thanks"), EndScene(scene_id="end")),
    )


def play(client: TestClient) -> None:
    with ScriptedParticipant(client) as p:
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        p.game_ready(status["game_id"])
        p.hold(status["game_id"], "ArrowUp")
        p.receive_until(lambda m: m["type"] == "scene")


def steps_of(tmp_path: Path) -> list[dict[str, Any]]:
    return read_records(tmp_path, "observed_test", "steps")


def test_only_the_bots_seat_is_observed_from_the_first_step(tmp_path):
    app = make_test_app(study(scene()), tmp_path)
    with TestClient(app) as client:
        play(client)
    steps = steps_of(tmp_path)
    assert len(steps) == 80
    # Told once, before the first reset: only the bot's seat; the bot never saw a placeholder (its
    # policy raises on one, which would have ended the game with an error).
    assert {tuple(s["info"]["observed"]) for s in steps} == {("bot",)}
    assert {s["info"]["told"] for s in steps} == {1}
    assert {s["action_source"] for s in steps if s["agent"] == "bot"} == {"bot"}
    games = read_records(tmp_path, "observed_test", "games")
    assert games[-1]["reason"] == "completed"


def test_every_seat_is_observed_when_the_scene_records_observations(tmp_path):
    app = make_test_app(study(scene(record_observations=True)), tmp_path)
    with TestClient(app) as client:
        play(client)
    steps = steps_of(tmp_path)
    assert {tuple(s["info"]["observed"]) for s in steps} == {("bot", "human")}
    # The human's recorded observations are real ones, not the placeholder.
    assert all(s["observation"] != [-1, -1] for s in steps if s["agent"] == "human")


def test_a_bot_taking_a_seat_is_told_and_acts_on_a_real_observation_and_the_return_untells(tmp_path):
    duel = GymScene(
        scene_id="watched",
        env_factory=WATCHED,
        human_seats=("human", "bot"),
        action_mapping={"ArrowUp": 4, "ArrowLeft": 1},
        default_action=0,
        fps=60,
        max_steps=150,
        countdown_s=0,
        waiting_room=WaitingRoom(timeout_s=5),
        reconnect_grace_s=0.5,
        on_partner_left="bot",
        partner_policy=READS,
    )
    app = make_test_app(study(duel), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as a:
        b = ScriptedParticipant(client).connect()
        for p in (b, a):
            found = p.receive_until(lambda m: m["type"] == "game_status" and m["game_id"] is not None)[0]
            p.game_ready(found["game_id"])
        a.receive_until(lambda m: m["type"] == "game_status" and m["phase"] == "playing")
        b.close()
        a.receive_until(lambda m: m["type"] == "game_status" and "computer player" in m.get("notice", ""))
        time.sleep(0.2)
        with ScriptedParticipant(client, token=b.token) as back:
            status = back.receive_until(lambda m: m["type"] == "game_status")[0]
            back.game_ready(status["game_id"])
            a.receive_until(lambda m: m["type"] == "scene")
            back.receive_until(lambda m: m["type"] == "scene")
    rows = [s for s in steps_of(tmp_path) if s["agent"] == "bot"]
    told = [(s["info"]["told"], tuple(s["info"]["observed"]), s["action_source"]) for s in rows]
    # Nobody's observation is read while two people play; the bot's seat is observed from the
    # takeover, and nobody's again once its player is back.
    assert told[0] == (1, (), "human") or told[0][:2] == (1, ())
    sequence = []
    for entry in told:
        if not sequence or sequence[-1][:2] != entry[:2]:
            sequence.append(entry)
    assert [s[:2] for s in sequence] == [(1, ()), (2, ("bot",)), (3, ())]
    assert any(source == "bot" for _t, observed, source in told if observed == ("bot",))
    games = read_records(tmp_path, "observed_test", "games")
    assert [g["event"] for g in games] == ["started", "partner_left", "seat_returned", "ended"]
    assert games[-1]["reason"] == "completed"


def test_tell_observed_agents_calls_the_method_only_where_it_exists():
    class Plain:
        pass

    class Told:
        def __init__(self) -> None:
            self.calls: list[frozenset[str]] = []

        def set_observed_agents(self, agents: frozenset[str]) -> None:
            self.calls.append(agents)

    assert tell_observed_agents(Plain(), frozenset({"a"})) is None
    told = Told()
    assert tell_observed_agents(told, frozenset({"a"})) == {}
    assert told.calls == [frozenset({"a"})]
