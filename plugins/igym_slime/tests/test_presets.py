"""Slime's strength presets (igym_slime.bots.slime_bot): each is a seat bot a scene takes by name,
an unknown name is refused with the list, and seeded arena games (as a game scene plays the bot:
igym-onnx's loader, act_every, sampling) show them ordered against the scripted bot, the strongest
beating it and every one beating random play. The win rates are printed; the full table (100 games
a cell) is bench/slime_presets.py's."""

from __future__ import annotations

import itertools

import attrs
import pytest

from igym_core import Bot, GymScene
from igym_core.errors import ConfigError
from igym_slime.arena import BotPlayer, RandomOpponent, Record, play_games
from igym_slime.bots import SLIME_PRESETS, ScriptedPolicy, scripted_policy, slime_bot
from igym_slime.examples import vs_ai

#: Few games keep the test quick; the seeds are fixed, so the counts are the same on every run.
GAMES_VS_SCRIPTED = 16
GAMES_VS_RANDOM = 10


@pytest.fixture(scope="module")
def players():
    return {name: BotPlayer(slime_bot(name)) for name in SLIME_PRESETS}


def report(capsys, line: str) -> None:
    with capsys.disabled():
        print(f"\n  {line}", end="")


def test_each_preset_is_a_seat_bot_that_a_game_scene_takes():
    for name, preset in SLIME_PRESETS.items():
        bot = slime_bot(name)
        assert isinstance(bot, Bot)
        scene = attrs.evolve(vs_ai.game, policies={"right": bot})
        assert scene.policies["right"] == bot
        if preset.scripted:
            assert bot.policy == "igym_slime.bots:scripted_policy"
        else:
            assert bot.act_every == preset.act_every and bot.between == "repeat"
            assert bot.policy.action == ("argmax" if preset.temperature is None else "sample")
    assert slime_bot("champion", "../models/slime_policy.onnx").policy.path == "../models/slime_policy.onnx"
    assert isinstance(vs_ai.game, GymScene)


def test_an_unknown_preset_is_refused_with_the_names():
    with pytest.raises(ConfigError) as caught:
        slime_bot("expert")
    message = str(caught.value)
    assert "'expert'" in message
    assert all(name in message for name in SLIME_PRESETS)


def test_the_presets_are_ordered_against_the_scripted_bot(players, capsys):
    """Each weaker preset scores less against the scripted bot (a win 1, a draw ½) in the same
    seeded games, and the strongest wins nearly all of them."""
    records = {}
    for name, player in players.items():
        records[name] = play_games(player, ScriptedPolicy(), games=GAMES_VS_SCRIPTED, seed=40)
        report(capsys, f"{name:9} vs scripted: {records[name]}")
    names = list(SLIME_PRESETS)
    assert records[names[0]].wins >= GAMES_VS_SCRIPTED * 0.9, records[names[0]]
    for stronger, weaker in itertools.pairwise(names):
        assert score(records[stronger]) > score(records[weaker]), (stronger, weaker, records)


def score(record: Record) -> float:
    return record.wins + record.draws / 2


def test_every_preset_beats_random_play(players, capsys):
    for index, (name, player) in enumerate(players.items()):
        record = play_games(player, RandomOpponent(seed=60 + index), games=GAMES_VS_RANDOM, seed=60 + index)
        report(capsys, f"{name:9} vs random: {record}")
        assert record.win_rate >= 0.7, (name, record)


def test_a_sampling_preset_plays_the_same_games_from_the_same_seeds(players):
    first = play_games(players["medium"], scripted_policy, games=3, seed=7)
    again = play_games(BotPlayer(slime_bot("medium")), scripted_policy, games=3, seed=7)
    assert first == again


@pytest.mark.parametrize("name", ["medium", "scripted"])
def test_a_preset_plays_a_seat_on_the_server(tmp_path, name):
    """The server runs the preset as its settings say: a sampling bot choosing every 2nd step holds
    its action in between (``bot_repeat``); the scripted one, named by import path, chooses every step."""
    from litestar.testing import TestClient

    from igym_core import EndScene, Experiment
    from igym_core.plugins.manager import create_plugin_manager
    from igym_core.testing import ScriptedParticipant, make_test_app, read_records
    from igym_onnx import plugin as onnx_plugin

    game = attrs.evolve(
        vs_ai.game, policies={"right": slime_bot(name)}, num_episodes=1, max_steps=45, countdown_s=0, fps=60
    )
    experiment = Experiment(experiment_id="slime_test", seed=3, scenes=(game, EndScene(scene_id="end")))
    plugins = create_plugin_manager(autoload=False, extra=[onnx_plugin], strict=True)
    app = make_test_app(experiment, tmp_path, plugins=plugins)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        p.game_ready(status["game_id"])
        p.receive_until(lambda m: m["type"] == "scene")
    bot = [s for s in read_records(tmp_path, "slime_test", "steps") if s["agent"] == "right"]
    assert len(bot) == 45
    sources = [s["action_source"] for s in bot]
    if name == "medium":
        assert sources[::2] == ["bot"] * 23 and sources[1::2] == ["bot_repeat"] * 22
        assert all(bot[i]["action"] == bot[i - 1]["action"] for i in range(1, 45, 2))
    else:
        assert sources == ["bot"] * 45
