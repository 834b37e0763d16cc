"""Games whose env steps in the step worker processes (``runtime_options={"step_in_worker": True}``):
the same data as stepped inline, observations only for the bots' seats, and a worker that raises,
dies or hangs ends only its own games, with a record, and never hangs the others."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from igym_core import EndScene, Experiment, GymScene, StaticScene
from igym_core.envs import resolve_callable
from igym_core.errors import ConfigError
from igym_core.testing import ScriptedParticipant, make_test_app, read_records

HERE = Path(__file__).resolve().parent
WATCHED = f"{HERE / 'observed_envs.py'}:Watched"
READS = resolve_callable(f"{HERE / 'observed_envs.py'}:ReadsObservations", what="test policy")
POOLED = {"step_in_worker": True}
#: A bounded wait for the server's messages: a new worker process imports numpy and the env first,
#: which takes seconds on a loaded machine (each wait ends as soon as the message arrives).
WAIT_S = 60.0


def scene(env_kwargs: dict[str, Any] | None = None, **overrides: Any) -> GymScene:
    options: dict[str, Any] = dict(
        scene_id="watched",
        env_factory=WATCHED,
        env_kwargs=env_kwargs or {},
        human_seat="human",
        policies={"bot": READS},
        action_mapping={"ArrowUp": 4, "ArrowLeft": 1},
        default_action=0,
        fps=60,
        max_steps=40,
        num_episodes=2,
        countdown_s=0,
        seed_mode="shared",  # the same seeds in every run (they would depend on participant ids)
    )
    options.update(overrides)
    return GymScene(**options)


def study(*scenes: Any) -> Experiment:
    return Experiment(
        experiment_id="pool_test",
        seed=11,
        scenes=(*scenes, StaticScene(scene_id="after", body="Thanks"), EndScene(scene_id="end")),
    )


def start(p: ScriptedParticipant) -> str:
    status = p.receive_until(lambda m: m["type"] == "game_status")[0]
    p.game_ready(status["game_id"])
    return str(status["game_id"])


def finish(p: ScriptedParticipant) -> list[dict[str, Any]]:
    """Every message until the scene after the game (bounded by the participant's own timeout)."""
    return p.receive_until(lambda m: m["type"] == "scene")[1]


def comparable(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    keep = ("episode", "step", "agent", "action", "action_source", "reward", "terminated", "truncated")
    return [
        (*(r[k] for k in keep), {k: v for k, v in r["info"].items() if k != "pid"}, r.get("observation"))
        for r in rows
    ]


@pytest.mark.parametrize("record_observations", [False, True])
def test_a_game_stepped_in_a_worker_records_what_it_records_inline(tmp_path, record_observations):
    data = {}
    for name, options in (("inline", {}), ("pooled", POOLED)):
        folder = tmp_path / name
        app = make_test_app(
            study(scene(runtime_options=options, record_observations=record_observations)),
            folder,
            step_workers=1,
        )
        with TestClient(app) as client, ScriptedParticipant(client, timeout_s=WAIT_S) as p:
            start(p)
            messages = finish(p)
            assert p.scene["scene"]["scene_id"] == "after"
        frames = [m for m in messages if m["type"] == "frame"]
        assert frames and frames[0]["key"] is True and "add" in frames[0]
        data[name] = (
            read_records(folder, "pool_test", "steps"),
            read_records(folder, "pool_test", "episodes"),
        )
    (inline_steps, inline_episodes), (pooled_steps, pooled_episodes) = data["inline"], data["pooled"]
    assert len(pooled_steps) == 2 * 40 * 2
    assert comparable(pooled_steps) == comparable(inline_steps)
    assert [(e["seed"], e["steps"], e["returns"]) for e in pooled_episodes] == [
        (e["seed"], e["steps"], e["returns"]) for e in inline_episodes
    ]
    # Stepped elsewhere: in a worker process, not in the server's.
    assert {s["info"]["pid"] for s in inline_steps} == {os.getpid()}
    assert os.getpid() not in {s["info"]["pid"] for s in pooled_steps}
    # Observations only for the bot's seat (every seat when they are recorded), told once.
    expected = ["bot", "human"] if record_observations else ["bot"]
    assert {tuple(s["info"]["observed"]) for s in pooled_steps} == {tuple(expected)}


def test_an_env_that_raises_in_a_worker_ends_its_game_with_a_record_and_the_player_moves_on(tmp_path):
    app = make_test_app(
        study(scene({"fail_at": 5}, runtime_options=POOLED, max_steps=200)), tmp_path, step_workers=1
    )
    with TestClient(app) as client, ScriptedParticipant(client, timeout_s=WAIT_S) as p:
        start(p)
        finish(p)
        assert p.scene["scene"]["scene_id"] == "after"
    games = read_records(tmp_path, "pool_test", "games")
    failed = [g for g in games if g["event"] == "step_failed"]
    assert len(failed) == 1 and "RuntimeError: the test env fails at step 5" in failed[0]["error"]
    assert games[-1]["event"] == "ended" and games[-1]["reason"] == "error"
    (episode,) = read_records(tmp_path, "pool_test", "episodes")
    assert episode["end_reason"] == "error" and episode["steps"] == 4


def test_a_killed_worker_ends_only_its_games_and_a_new_worker_serves_the_next(tmp_path):
    flag = tmp_path / "kill-one-worker"
    long = scene({"die_flag": str(flag)}, runtime_options=POOLED, max_steps=400, num_episodes=1)
    app = make_test_app(study(long), tmp_path / "data", step_workers=2)
    with (
        TestClient(app) as client,
        ScriptedParticipant(client, timeout_s=WAIT_S) as a,
        ScriptedParticipant(client, timeout_s=WAIT_S) as b,
    ):
        ids = {start(a): a, start(b): b}
        for p in (a, b):
            p.receive_until(lambda m: m["type"] == "frame")
        flag.touch()  # the first env to step after this kills its own worker process
        started = time.monotonic()
        for p in (a, b):
            finish(p)
        assert time.monotonic() - started < 30
        # A game that starts later is served by the worker that took the dead one's place.
        with ScriptedParticipant(client, timeout_s=WAIT_S) as c:
            start(c)
            finish(c)
            assert c.scene["scene"]["scene_id"] == "after"
    games = read_records(tmp_path / "data", "pool_test", "games")
    died = [g for g in games if g["event"] == "step_worker_failed"]
    assert len(died) == 1 and died[0]["exitcode"] == -9 and "exited" in died[0]["why"]
    ended = {g["game_id"]: g["reason"] for g in games if g["event"] == "ended"}
    assert ended[died[0]["game_id"]] == "error"
    assert sorted(ended.values()) == ["completed", "completed", "error"]
    assert set(ids) <= set(ended)
    assert not flag.exists()


def test_a_hung_worker_is_killed_after_the_timeout_and_its_game_ends(tmp_path):
    app = make_test_app(
        study(scene({"hang_at": 10}, runtime_options=POOLED, max_steps=400)),
        tmp_path,
        step_workers=1,
        step_worker_timeout_s=1.0,
    )
    with TestClient(app) as client, ScriptedParticipant(client, timeout_s=WAIT_S) as p:
        start(p)
        started = time.monotonic()
        finish(p)
        waited = time.monotonic() - started
    assert waited < 20
    games = read_records(tmp_path, "pool_test", "games")
    (died,) = [g for g in games if g["event"] == "step_worker_failed"]
    assert "unanswered" in died["why"] and died["step"] == 9
    assert games[-1]["reason"] == "error"


def test_step_in_worker_is_refused_without_workers_or_with_an_env_a_worker_cannot_build(tmp_path):
    with pytest.raises(ConfigError, match="IGYM_STEP_WORKERS is 0"):
        make_test_app(study(scene(runtime_options=POOLED)), tmp_path, step_workers=0)
    inline_factory = resolve_callable(WATCHED, what="test env")
    with pytest.raises(ConfigError, match="cannot be sent"):
        make_test_app(
            study(scene(runtime_options=POOLED, env_factory=lambda: inline_factory())),
            tmp_path,
            step_workers=1,
        )
    with pytest.raises(ConfigError, match="step_in_worker"):
        make_test_app(study(scene(runtime_options={"step_in_wroker": True})), tmp_path)
