"""The example studies: `igym check` accepts them, and their game scenes run on the server with the
trained bot (a participant against it; two participants, then the bot in the seat of one who left)."""

from __future__ import annotations

import subprocess
import sys

import attrs
import pytest
from litestar.testing import TestClient

from igym_core import EndScene, Experiment, StaticScene
from igym_core.plugins.manager import create_plugin_manager
from igym_core.testing import ScriptedParticipant, make_test_app, read_records
from igym_slime.bots import trained_policy
from igym_slime.examples import vs_ai, vs_human


@pytest.mark.parametrize(
    "target",
    [
        "igym_slime.examples.vs_ai:experiment",
        "igym_slime.examples.vs_human:experiment",
        f"{vs_ai.__file__}:experiment",
    ],
)
def test_igym_check_accepts_the_examples(target):
    result = subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "check", target], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: slime_vs_")


def test_the_examples_are_complete_studies():
    for module, episodes in ((vs_ai, 5), (vs_human, 3)):
        kinds = [scene.kind for scene in module.experiment.scenes]
        assert kinds == ["start", "static", "gym", "survey", "end"]
        assert module.game.num_episodes == episodes
        assert module.experiment.scenes[-1].completion_code == "auto"
        assert module.game.action_mapping["ArrowUp+ArrowLeft"] == 4
    assert vs_human.game.human_seats == ("left", "right") and vs_human.game.on_partner_left == "bot"


def short(scene, **changes):
    """The example's game, short and fast, with the bot named by an absolute path."""
    options = {"num_episodes": 1, "max_steps": 45, "countdown_s": 0, "fps": 60, **changes}
    return attrs.evolve(scene, **options)


def app_for(scene, tmp_path):
    from igym_onnx import plugin as onnx_plugin

    experiment = Experiment(
        experiment_id="slime_test",
        seed=3,
        scenes=(scene, StaticScene(scene_id="after", body="Thanks"), EndScene(scene_id="end")),
    )
    plugins = create_plugin_manager(autoload=False, extra=[onnx_plugin], strict=True)
    return make_test_app(experiment, tmp_path, plugins=plugins)


def test_a_participant_plays_the_trained_bot(tmp_path):
    app = app_for(short(vs_ai.game, policies={"right": trained_policy()}), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        p.game_ready(status["game_id"])
        p.hold(status["game_id"], "ArrowUp", "ArrowRight")
        _scene, seen = p.receive_until(lambda m: m["type"] == "scene")
    huds = [m["hud"] for m in seen if m["type"] == "frame" and "hud" in m]
    assert huds and huds[0] == "Game 1 of 1 · You 0 – 0 Computer"
    steps = read_records(tmp_path, "slime_test", "steps")
    human = [s for s in steps if s["agent"] == "left"]
    bot = [s for s in steps if s["agent"] == "right"]
    assert len(human) == len(bot) == 45
    assert any(s["action"] == 5 and sorted(s["keys_held"]) == ["ArrowRight", "ArrowUp"] for s in human)
    assert all(s["action_source"] == "bot" for s in bot) and len({s["action"] for s in bot}) > 1
    games = read_records(tmp_path, "slime_test", "games")
    seats = {s["agent"]: s for s in games[0]["seats"]}
    assert seats["right"]["policy"].startswith("onnx:") and seats["left"]["type"] == "human"


def test_two_participants_play_and_the_bot_takes_the_seat_of_one_who_leaves(tmp_path):
    scene = short(vs_human.game, max_steps=240, reconnect_grace_s=0.2, partner_policy=trained_policy())
    app = app_for(scene, tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as a:
        b = ScriptedParticipant(client).connect()
        games = []
        for p in (a, b):
            found = p.receive_until(lambda m: m["type"] == "game_status" and m["game_id"] is not None)[0]
            p.game_ready(found["game_id"])
            games.append(found)
        assert (games[0]["seat"], games[1]["seat"]) == ("left", "right")
        a.hold(games[0]["game_id"], "ArrowUp", "ArrowLeft")
        a.receive_until(lambda m: m["type"] == "frame" and m["step"] >= 20)
        b.close()
        a.receive_until(lambda m: m["type"] == "scene")
    steps = read_records(tmp_path, "slime_test", "steps")
    left = [s for s in steps if s["agent"] == "left"]
    right = [s for s in steps if s["agent"] == "right"]
    assert any(s["action"] == 4 and sorted(s["keys_held"]) == ["ArrowLeft", "ArrowUp"] for s in left)
    assert all(s["seat"] == "human" for s in left)
    sources = [s["action_source"] for s in right]
    assert "bot" in sources and sources.index("bot") > 0  # a person first, then the bot
    events = [g["event"] for g in read_records(tmp_path, "slime_test", "games")]
    assert events == ["started", "partner_left", "ended"]
