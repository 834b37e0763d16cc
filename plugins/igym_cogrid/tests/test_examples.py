"""The example studies: `igym check` accepts them, and their game scene runs on the server with the
planner as the partner: the steps carry the kitchen's state, the round's last step its summary."""

from __future__ import annotations

import subprocess
import sys

import attrs
import pytest
from litestar.testing import TestClient

from igym_cogrid.examples import human_ai, human_human
from igym_core import EndScene, Experiment, StaticScene
from igym_core.plugins.manager import create_plugin_manager
from igym_core.testing import ScriptedParticipant, make_test_app, read_records


@pytest.mark.parametrize(
    "target",
    [
        "igym_cogrid.examples.human_ai:experiment",
        "igym_cogrid.examples.human_human:experiment",
        f"{human_ai.__file__}:experiment",
    ],
)
def test_igym_check_accepts_the_examples(target):
    result = subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "check", target], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: overcooked_human_")


def test_the_examples_are_complete_studies():
    for module, seats in ((human_ai, ("chef_0",)), (human_human, ("chef_0", "chef_1"))):
        kinds = [scene.kind for scene in module.experiment.scenes]
        assert kinds == ["start", "static", "gym", "survey", "end"]
        assert module.game.num_episodes == 3 and module.game.fps == 10
        assert module.game.env_kwargs["max_steps"] == 600  # 60-second rounds
        assert module.experiment.scenes[-1].completion_code == "auto"
        assert module.game.action_mapping == {
            "ArrowUp": 0,
            "ArrowDown": 1,
            "ArrowLeft": 2,
            "ArrowRight": 3,
            " ": 4,
        }
        assert tuple(module.game.human_seats or (module.game.human_seat,)) == seats
    assert "Space" in human_ai.instructions.body and "arrow keys" in human_ai.instructions.body


def summary_of(info: dict) -> dict:
    prefix = "episode_summary."
    return {key[len(prefix) :]: value for key, value in info.items() if key.startswith(prefix)}


def test_a_participant_cooks_with_the_planner_and_the_round_is_summarised(tmp_path):
    scene = attrs.evolve(
        human_ai.game,
        num_episodes=1,
        countdown_s=0,
        fps=60,
        env_kwargs={**human_ai.game.env_kwargs, "max_steps": 240},
    )
    experiment = Experiment(
        experiment_id="cogrid_test",
        seed=3,
        scenes=(scene, StaticScene(scene_id="after", body="Thanks"), EndScene(scene_id="end")),
    )
    app = make_test_app(experiment, tmp_path, plugins=create_plugin_manager(autoload=False, strict=True))
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        p.game_ready(status["game_id"])
        # Up, then left, then let go: the blue chef ends in the top-left corner, by the left onion
        # crate (the planner uses the right one), out of the way of the pot, dishes and hatch.
        # Each key is held for long enough that the planner, met on the way, steps aside (stopping
        # short, in front of the pot or the dishes, would block the planner for the whole round).
        p.hold(status["game_id"], "ArrowUp")
        first = p.receive_until(lambda m: m["type"] == "frame" and m["step"] >= 30)[1]
        p.hold(status["game_id"], "ArrowLeft")
        second = p.receive_until(lambda m: m["type"] == "frame" and m["step"] >= 90)[1]
        p.hold(status["game_id"])
        _scene, seen = p.receive_until(lambda m: m["type"] == "scene")
        seen = [*first, *second, *seen]
    huds = [m["hud"] for m in seen if m["type"] == "frame" and "hud" in m]
    assert huds and huds[0] == "Round 1 of 1 · You are the blue chef"
    steps = read_records(tmp_path, "cogrid_test", "steps")
    human = [s for s in steps if s["agent"] == "chef_0"]
    bot = [s for s in steps if s["agent"] == "chef_1"]
    assert len(human) == len(bot) == 240
    assert any(s["action"] == 2 and s["keys_held"] == ["ArrowLeft"] for s in human)
    assert all(s["action_source"] == "bot" for s in bot)
    # Step records flatten a nested info to "a.b" keys.
    summary = summary_of(human[-1]["info"])
    assert all(not summary_of(s["info"]) for s in human[:-1])
    assert summary["layout"] == "cramped_room" and summary["steps"] == 240
    assert human[-1]["info"]["position"] == [1, 1]
    assert summary["soups_delivered"] >= 2  # the planner cooks: 240 steps fit two or three soups
    assert summary["score"] == 20 * summary["soups_delivered"] == sum(s["reward"] for s in human)
    assert summary_of(bot[-1]["info"]) == summary
    seats = {s["agent"]: s for s in read_records(tmp_path, "cogrid_test", "games")[0]["seats"]}
    assert seats["chef_0"]["type"] == "human" and seats["chef_1"]["type"] == "bot"
    assert "PlannerPolicy" in seats["chef_1"]["policy"]


def test_two_participants_cook_and_the_planner_takes_the_chef_of_one_who_leaves(tmp_path):
    scene = attrs.evolve(
        human_human.game,
        num_episodes=1,
        countdown_s=0,
        fps=60,
        reconnect_grace_s=0.2,
        env_kwargs={**human_human.game.env_kwargs, "max_steps": 240},
    )
    experiment = Experiment(
        experiment_id="cogrid_pvp_test",
        seed=4,
        scenes=(scene, StaticScene(scene_id="after", body="Thanks"), EndScene(scene_id="end")),
    )
    app = make_test_app(experiment, tmp_path, plugins=create_plugin_manager(autoload=False, strict=True))
    with TestClient(app) as client, ScriptedParticipant(client) as a:
        b = ScriptedParticipant(client).connect()
        games = []
        for p in (a, b):
            found = p.receive_until(lambda m: m["type"] == "game_status" and m["game_id"] is not None)[0]
            p.game_ready(found["game_id"])
            games.append(found)
        assert (games[0]["seat"], games[1]["seat"]) == ("chef_0", "chef_1")
        b.hold(games[1]["game_id"], "ArrowDown")
        a.receive_until(lambda m: m["type"] == "frame" and m["step"] >= 20)
        b.close()
        a.receive_until(lambda m: m["type"] == "scene")
    steps = read_records(tmp_path, "cogrid_pvp_test", "steps")
    red = [s for s in steps if s["agent"] == "chef_1"]
    assert any(s["action"] == 1 and s["keys_held"] == ["ArrowDown"] for s in red)
    sources = [s["action_source"] for s in red]
    assert "bot" in sources and sources.index("bot") > 0  # a person first, then the planner
    assert len({s["action"] for s in red if s["action_source"] == "bot"}) >= 3  # it walks and works
    events = [g["event"] for g in read_records(tmp_path, "cogrid_pvp_test", "games")]
    assert events == ["started", "partner_left", "ended"]
