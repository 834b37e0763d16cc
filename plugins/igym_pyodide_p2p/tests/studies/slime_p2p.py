"""A short Slime Volleyball study played peer to peer (``runtime="pyodide_p2p"``), for the tests.

Two people, one game, each page stepping the env; short episodes, no countdown, so that a test can
play it from Python as two pages would. ``IGYM_TEST_P2P_OPTIONS`` (JSON) sets runtime options,
``IGYM_TEST_P2P_PARTNER_LEFT`` the scene's ``on_partner_left``, and ``IGYM_TEST_P2P_SLOW_MS`` a
slow-connection rule with that limit (probes every 0.1 s; warned after 0.4 s, ended 0.4 s later).
"""

from __future__ import annotations

import json
import os

import attrs

from igym_core import EndScene, Experiment, GymScene, SlowConnection, StartScene
from igym_slime.examples.vs_ai import ACTION_MAPPING  # the arrow keys and their combinations

game = GymScene(
    scene_id="slime_p2p",
    runtime="pyodide_p2p",
    env_factory="igym_slime.env:make_env",
    env_kwargs={"lives": 2, "max_steps": 90},
    human_seats=("left", "right"),
    render_fn="igym_slime.render:draw",
    action_mapping=ACTION_MAPPING,
    default_action=0,
    fps=30,
    num_episodes=2,
    max_steps=90,
    countdown_s=0,
    abandon_after_s=3,
    partner_policy="random",
    on_partner_left=os.environ.get("IGYM_TEST_P2P_PARTNER_LEFT", "end"),
    runtime_options=json.loads(os.environ.get("IGYM_TEST_P2P_OPTIONS", "{}")),
)
if os.environ.get("IGYM_TEST_P2P_SLOW_MS"):
    game = attrs.evolve(
        game,
        rtt_interval_s=0.1,
        connection_report_s=0.5,
        slow_connection=SlowConnection(
            max_rtt_ms=float(os.environ["IGYM_TEST_P2P_SLOW_MS"]), warn_after_s=0.4, end_after_s=0.4
        ),
    )

experiment = Experiment(
    experiment_id="slime_p2p",
    seed=11,
    scenes=[
        StartScene(scene_id="welcome", title="Welcome", body="A short game with someone else."),
        game,
        EndScene(scene_id="end", completion_code="DONE2"),
    ],
)


def _broken(**changes: object) -> Experiment:
    return Experiment(
        experiment_id="slime_p2p_broken",
        seed=11,
        scenes=[attrs.evolve(game, **changes), EndScene(scene_id="end")],
    )


#: ``igym check`` refuses each of these.
one_human = _broken(human_seats=(), human_seat="left", policies={"right": "random"})
no_rollback = _broken(env_factory="p2p_envs:make_plain_env", env_kwargs={})
#: An env whose state (about 20 KB as JSON) is larger than the scene's bound.
small_state_bound = _broken(
    env_factory="p2p_envs:make_big_state_env", runtime_options={"max_state_bytes": 8192}
)
#: ``on_partner_left="bot"`` with a partner policy the browser cannot import (a lambda of this file).
server_only_partner = _broken(
    on_partner_left="bot", partner_policy={"kind": "python", "target": lambda obs: 0}
)


def __getattr__(name: str) -> Experiment:
    """``onnx_partner``: ``on_partner_left="bot"`` with the trained ONNX bot, which the P2P page's
    worker cannot run (built on first use: only that check imports igym_onnx)."""
    if name == "onnx_partner":
        from igym_slime.bots import trained_policy

        return _broken(on_partner_left="bot", partner_policy=trained_policy())
    raise AttributeError(name)
