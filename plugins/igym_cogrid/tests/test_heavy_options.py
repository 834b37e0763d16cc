"""The heavy-env options with the real kitchen: the human-AI game stepped in a step worker records
exactly what it records stepped inline, and the human's observation is never built either way."""

from __future__ import annotations

import attrs
from litestar.testing import TestClient

from igym_cogrid.examples import human_ai
from igym_core import EndScene, Experiment, StaticScene
from igym_core.testing import ScriptedParticipant, make_test_app, read_records

KEEP = ("episode", "step", "agent", "action", "action_source", "reward", "terminated", "truncated", "info")


def run(tmp_path, runtime_options):
    game = attrs.evolve(
        human_ai.game,
        env_kwargs={**human_ai.game.env_kwargs, "max_steps": 60},
        num_episodes=1,
        countdown_s=0,
        fps=30,
        seed_mode="shared",  # the same seed in both runs (it would depend on the participant's id)
        record_observations=True,
        runtime_options=runtime_options,
    )
    experiment = Experiment(
        experiment_id="heavy",
        seed=4,
        scenes=(game, StaticScene(scene_id="after", body="Thanks"), EndScene(scene_id="end")),
    )
    app = make_test_app(experiment, tmp_path, step_workers=1)
    with TestClient(app) as client, ScriptedParticipant(client, timeout_s=60) as p:
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        p.game_ready(status["game_id"])  # no key: the chef stands still, the same in both runs
        p.receive_until(lambda m: m["type"] == "scene")
    return read_records(tmp_path, "heavy", "steps")


def test_the_kitchen_stepped_in_a_worker_records_what_it_records_inline(tmp_path):
    inline = run(tmp_path / "inline", {})
    pooled = run(tmp_path / "pooled", {"step_in_worker": True})
    assert len(pooled) == len(inline) == 120
    assert [[r[k] for k in (*KEEP, "observation")] for r in pooled] == [
        [r[k] for k in (*KEEP, "observation")] for r in inline
    ]
    planner = [r for r in pooled if r["agent"] == "chef_1"]
    assert {r["action_source"] for r in planner} == {"bot"}
    assert len({tuple(r["info"]["partner_position"]) for r in pooled if r["agent"] == "chef_0"}) > 1, (
        "the planner's chef moved"
    )
    # Recorded observations are built for both seats (a real kitchen vector, never the zeros).
    assert all(any(v != 0 for v in r["observation"]) for r in pooled)
