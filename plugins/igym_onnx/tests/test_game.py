"""A game scene with an ONNX bot, played through the server with scripted participants.

The server runtime evaluates the bots of games ticking together in one ``act_batch`` call; the
recorded actions must be what the model chooses for the recorded observations, as ``act`` would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar.testing import TestClient

from igym_core import Bot, EndScene, Experiment, GymScene
from igym_core.envs import agent_seed, resolve_callable
from igym_core.testing import ScriptedParticipant, make_test_app, read_records
from igym_onnx import OnnxPolicy, Preprocess, plugin
from igym_onnx.model import OnnxModel
from igym_onnx.policy import OnnxActor, OnnxPolicyLoader
from igym_onnx.testing import mlp_model, recurrent_model, save_model

CORE_TESTS = Path(__file__).resolve().parents[3] / "igym_core" / "tests"
Duel = resolve_callable(f"{CORE_TESTS / 'game_envs.py'}:Duel", what="test env")
DECL = Preprocess(std=5.0)  # Duel's observations are the two counters (int64)


def duel_scene(policy: Any, *, max_steps: int = 12, num_episodes: int = 1) -> GymScene:
    return GymScene(
        scene_id="duel",
        env_factory=Duel,
        human_seat="human",
        policies={"bot": policy},
        action_mapping={"ArrowUp": 4},
        default_action=1,
        fps=60,
        max_steps=max_steps,
        num_episodes=num_episodes,
        countdown_s=0,
        record_observations=True,
    )


def play(tmp_path: Path, scene: GymScene, participants: int) -> list[dict[str, Any]]:
    experiment = Experiment(experiment_id="onnx_game", seed=11, scenes=(scene, EndScene(scene_id="end")))
    # One tick group: every game ticks at the same instants, so bots can be batched across games.
    app = make_test_app(experiment, tmp_path, extra_plugins=[plugin], tick_groups=1)
    with TestClient(app) as client:
        players = [ScriptedParticipant(client).connect() for _ in range(participants)]
        try:
            for p in players:
                status = p.receive_until(lambda m: m["type"] == "game_status")[0]
                p.game_ready(status["game_id"])
            for p in players:
                p.receive_until(lambda m: m["type"] == "scene")
                assert p.scene["scene"]["scene_id"] == "end"
        finally:
            for p in players:
                p.close()
    return read_records(tmp_path, "onnx_game", "steps")


def replay(config: OnnxPolicy, rows: list[dict[str, Any]], seed: int) -> list[int]:
    """The actions a fresh policy chooses for the recorded observations, from the recorded seed."""
    policy = OnnxPolicyLoader().load(
        config,
        agent="bot",
        action_space=Duel().action_space("bot"),
        observation_space=Duel().observation_space("bot"),
        base_dir=None,
    )
    assert isinstance(policy, OnnxActor)
    policy.reset(seed=seed)
    return [policy.act(np.array(row["observation"], dtype=np.int64)) for row in rows]


def test_an_onnx_bot_plays_in_two_games_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch_sizes: list[int] = []
    act_batch = OnnxModel.act_batch

    def counting(self: OnnxModel, policies: Any, observations: Any) -> list[int]:
        batch_sizes.append(len(policies))
        return act_batch(self, policies, observations)

    monkeypatch.setattr(OnnxModel, "act_batch", counting)
    path = save_model(mlp_model(2, 5, seed=0, hidden=(8,)), tmp_path / "models" / "duel.onnx")
    config = {"kind": "onnx", "path": str(path), "preprocess": DECL.to_json()}
    steps = play(tmp_path, duel_scene(config), participants=2)
    # The server runtime evaluates the two games' bots in one call when both are playing.
    assert max(batch_sizes) == 2
    games = read_records(tmp_path, "onnx_game", "games")
    started = [g for g in games if g["event"] == "started"]
    assert len(started) == 2
    assert {s["policy"] for g in started for s in g["seats"] if s["agent"] == "bot"} == {f"onnx:{path}"}
    episodes = read_records(tmp_path, "onnx_game", "episodes")
    for game in started:
        bot = [s for s in steps if s["game_id"] == game["game_id"] and s["agent"] == "bot"]
        assert [s["step"] for s in bot] == list(range(1, 13))
        assert all(s["seat"] == "bot" and s["action_source"] == "bot" for s in bot)
        seed = next(e["seed"] for e in episodes if e["game_id"] == game["game_id"])
        recorded = [s["action"] for s in bot]
        assert recorded == replay(OnnxPolicy(path=str(path), preprocess=DECL), bot, agent_seed(seed, "bot"))
        assert len(set(recorded)) > 1  # the model's choice changes with the counters


def test_a_recurrent_sampling_bot_is_reproduced_from_the_recorded_episode_seeds(tmp_path: Path) -> None:
    path = save_model(recurrent_model(2, 6, 5, seed=4), tmp_path / "rnn.onnx")
    config = OnnxPolicy(path=str(path), preprocess=DECL, action="sample", temperature=1.5)
    steps = play(
        tmp_path, duel_scene(Bot(policy=config, act_every=1), max_steps=8, num_episodes=2), participants=1
    )
    episodes = read_records(tmp_path, "onnx_game", "episodes")
    assert [e["episode"] for e in episodes] == [1, 2]
    for episode in episodes:
        bot = [s for s in steps if s["episode"] == episode["episode"] and s["agent"] == "bot"]
        assert len(bot) == 8 and all(s["action_source"] == "bot" for s in bot)
        # The state restarts and the sampling stream is re-seeded from the episode's recorded seed.
        assert [s["action"] for s in bot] == replay(config, bot, agent_seed(episode["seed"], "bot"))
