"""Core's game record builders: every runtime's rows have the same columns, and the server runtime
writes every one of its game records through them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from litestar.testing import TestClient

from igym_core.envs import resolve_callable
from igym_core.runtime import records
from igym_core.testing import ScriptedParticipant, make_test_app, read_records

HERE = Path(__file__).resolve().parent
_envs = f"{HERE / 'game_envs.py'}"
corridor_scene = resolve_callable(f"{_envs}:corridor_scene", what="test scene")
game_study = resolve_callable(f"{_envs}:game_study", what="test study")
episode_sample = resolve_callable(f"{_envs}:episode_sample", what="test episode row")

IDS = records.game_ids(game_id="g-1", scene_id="walk", instance=0, participant_ids=["p1"])


def _server_step(**overrides: Any) -> dict[str, Any]:
    """A row as the server runtime builds it: numpy values, server clock only."""
    values: dict[str, Any] = dict(
        episode=1,
        step=3,
        tick=40,
        agent="agent_0",
        participant_id="p1",
        action=np.int64(2),
        action_source="human",
        keys_held=("ArrowRight",),
        reward=np.float32(0.5),
        terminated=np.bool_(False),
        truncated=False,
        info={"detail": {"moved": True}, "position": np.array([1, 2])},
        t_server_ms=1.75e12,
    )
    values.update(overrides)
    return records.step_row(IDS, **values)


def _browser_step(**overrides: Any) -> dict[str, Any]:
    """A row as a browser runtime builds it: plain values from the page, and the page's clock."""
    values: dict[str, Any] = dict(
        episode=1,
        step=3,
        tick=3,
        agent="agent_0",
        participant_id="p1",
        action=2,
        action_source="human",
        keys_held=["ArrowRight"],
        reward=0.5,
        terminated=False,
        truncated=False,
        info={"detail.moved": True, "position": [1, 2]},
        t_server_ms=1.75e12 + 900,
        t_client_ms=1.75e12 + 12.5,
    )
    values.update(overrides)
    return records.step_row(IDS, **values)


def test_a_server_row_and_a_browser_row_have_the_same_columns_and_values_apart_from_timing():
    server, browser = _server_step(), _browser_step()
    assert list(server) == list(browser)
    timing = {"tick", "t_server_ms", "t_client_ms"}  # tick: the runtime's own clock
    assert {k: v for k, v in server.items() if k not in timing} == {
        k: v for k, v in browser.items() if k not in timing
    }
    assert server["t_client_ms"] is None and browser["t_client_ms"] == 1.75e12 + 12.5
    # JSON-ready: numpy numbers became Python numbers, nested infos flat.
    assert type(server["action"]) is int and type(server["reward"]) is float
    assert server["info"] == {"detail.moved": True, "position": [1, 2]}
    assert server["terminated"] is False and server["keys_held"] == ["ArrowRight"]


def test_a_bot_row_has_no_participant_and_no_keys_and_observations_add_one_column():
    bot = _server_step(participant_id=None, keys_held=None, action_source="bot")
    assert bot["seat"] == "bot" and bot["participant_id"] is None and bot["keys_held"] is None
    assert "observation" not in bot
    with_obs = _server_step(observation=np.array([0.25, 1.0]))
    assert list(with_obs) == [*bot, "observation"] and with_obs["observation"] == [0.25, 1.0]
    assert _browser_step(observation=[0.25, 1.0]).keys() == with_obs.keys()
    assert _server_step(info={})["info"] is None


def test_every_builder_gives_the_same_columns_whatever_the_runtime():
    episode_values: dict[str, Any] = dict(
        episode=1,
        seed=5,
        steps=10,
        end_reason="max_steps",
        returns={"agent_0": 1.0},
        seats={"agent_0": "p1"},
        started_at="2026-12-05T00:00:00.000Z",
        duration_ms=330,
        fps=30,
        frames_dropped={"p1": 0},
        tick_lateness_ms_p50=0.5,
        tick_lateness_ms_p99=1.5,
        tick_lateness_ms_max=2.0,
        rtt_ms={"p1": {"n": 1, "median": 1.0, "p95": 1.0, "max": 1.0}},
        paused_ms=0,
        pauses=0,
        pause_reasons={},
    )
    server_episode = records.episode_row(IDS, **episode_values)
    browser_episode = records.episode_row(
        IDS,
        **{
            **episode_values,
            "tick_lateness_ms_p50": None,
            "tick_lateness_ms_p99": None,
            "tick_lateness_ms_max": None,
        },
    )
    assert list(server_episode) == list(browser_episode)
    started = {
        kind: records.game_started_row(IDS, seats=[], fps=30, num_episodes=2, runtime=kind)
        for kind in ("server", "pyodide")
    }
    assert list(started["server"]) == list(started["pyodide"])
    assert started["pyodide"]["runtime"] == "pyodide" and started["server"]["event"] == "started"
    continued = records.game_started_row(
        IDS,
        seats=[],
        fps=30,
        num_episodes=2,
        runtime="server",
        continues_game_id="g-0",
        continues_from_episode=2,
    )
    assert continued["continues"] == {"game_id": "g-0", "from_episode": 2}
    events = [
        records.game_ended_row(IDS, reason="completed", episodes_played=2),
        records.game_paused_row(IDS, reason="saving", episode=1, step=3),
        records.game_resumed_row(IDS, reason="saving", episode=1, step=3, paused_ms=50),
        records.partner_left_row(IDS, left="p1", seat="agent_0", outcome="bot"),
        records.seat_returned_row(IDS, participant_id="p1", seat="agent_0"),
    ]
    assert [e["event"] for e in events] == ["ended", "paused", "resumed", "partner_left", "seat_returned"]
    hashed = records.state_hash_row(IDS, episode=1, step=30, state_hash="ab12")
    assert list(hashed) == [*IDS, "episode", "step", "state_hash"]
    for row in [server_episode, *started.values(), *events, hashed]:
        assert list(row)[: len(IDS)] == list(IDS)


def test_the_server_runtime_writes_its_rows_with_exactly_the_builders_columns(tmp_path):
    experiment = game_study(corridor_scene(max_steps=5), experiment_id="records_test", seed=3)
    with TestClient(make_test_app(experiment, tmp_path)) as client, ScriptedParticipant(client) as p:
        status, _ = p.receive_until(lambda m: m["type"] == "game_status")
        p.game_ready(status["game_id"])
        p.hold(status["game_id"], "ArrowRight")
        p.receive_until(lambda m: m["type"] == "scene")

    def columns(rows: list[dict[str, Any]]) -> set[tuple[str, ...]]:
        # The recorder puts its own fields (experiment, run, timestamp) first; the row follows.
        return {tuple(list(row)[list(row).index("game_id") :]) for row in rows}

    steps = read_records(tmp_path, "records_test", "steps")
    assert len(steps) == 10
    assert columns(steps) == {tuple(_server_step())}
    assert all(row["t_client_ms"] is None for row in steps)
    episodes = read_records(tmp_path, "records_test", "episodes")
    assert len(episodes) == 2
    assert columns(episodes) == {tuple(records.episode_row(IDS, **episode_sample()))}
    games = read_records(tmp_path, "records_test", "games")
    assert [g["event"] for g in games] == ["started", "ended"]
    started = records.game_started_row(IDS, seats=[], fps=60, num_episodes=2, runtime="server")
    ended = records.game_ended_row(IDS, reason="completed", episodes_played=2)
    assert columns(games[:1]) == {tuple(started)} and columns(games[1:]) == {tuple(ended)}
    assert games[0]["runtime"] == "server"
