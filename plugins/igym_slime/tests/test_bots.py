"""Bot strength: the scripted baseline beats random play, and the shipped ONNX bot, loaded the way
the server loads it (igym-onnx's policy loader, found through the plugin registry), beats random
play in over 95% of games and holds its own against the scripted baseline. Win rates are printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from igym_core.plugins.manager import create_plugin_manager
from igym_core.policies.spec import load_policy, policy_config_from
from igym_slime.arena import RandomOpponent, play_games
from igym_slime.bots import MODEL_PATH, ScriptedPolicy, scripted_policy, trained_policy
from igym_slime.env import SlimeVolleyEnv
from igym_slime.examples import vs_ai

GAMES = 100


@pytest.fixture(scope="module")
def registry():
    from igym_onnx import plugin as onnx_plugin

    return create_plugin_manager(autoload=False, extra=[onnx_plugin], strict=True).registry


@pytest.fixture(scope="module")
def trained(registry):
    env = SlimeVolleyEnv()
    config = policy_config_from(vs_ai.BOT, registry)
    return load_policy(
        config,
        registry,
        agent="right",
        action_space=env.action_space("right"),
        observation_space=env.observation_space("right"),
        base_dir=Path(vs_ai.__file__).parent,  # what igym run uses for a module's experiment
    )


def report(capsys, line: str) -> None:
    with capsys.disabled():
        print(f"\n  {line}", end="")


def test_the_shipped_model_is_small_and_the_example_names_it(registry):
    assert 1_000 < MODEL_PATH.stat().st_size < 200_000
    assert trained_policy().path == str(MODEL_PATH)
    assert vs_ai.BOT.path == "../models/slime_policy.onnx"
    assert vs_ai.BOT.preprocess.std == 10.0


def test_the_scripted_bot_beats_random_play(capsys):
    record = play_games(scripted_policy, RandomOpponent(seed=1), games=30, seed=1)
    report(capsys, f"scripted bot vs random: {record}")
    assert record.win_rate > 0.95


def test_the_trained_bot_beats_random_play_in_over_95_percent_of_games(trained, capsys):
    record = play_games(trained, RandomOpponent(seed=2), games=GAMES, seed=2)
    report(capsys, f"trained bot vs random: {record}")
    assert record.games == GAMES
    assert record.win_rate > 0.95, record


def test_the_trained_bot_holds_its_own_against_the_scripted_bot(trained, capsys):
    record = play_games(trained, ScriptedPolicy(), games=GAMES, seed=3)
    report(capsys, f"trained bot vs scripted: {record}")
    assert record.games == GAMES
    assert record.win_rate >= 0.45, record
    assert record.points_for >= record.points_against, record
