"""Slime Volleyball for two under ``runtime="pyodide_p2p"``, for the two-page browser tests.

One game scene (a waiting room, one 20-second episode, a one-second countdown), then a page and the
end. The experiments differ in the runtime's options:

- ``relay``: the inputs go through the server (``route="relay"``), no WebRTC needed;
- ``direct``: ``route="auto"`` (WebRTC, then the relay after ``connect_timeout_s``), for a test
  that runs Chromium and the server in a network namespace where WebRTC has candidates;
- ``leaving``: as ``relay``, with short partner-lost and reload grace times, and the scripted bot
  taking a partner's seat when they leave (``leaving_direct``: the same over WebRTC);
- ``reloading``: as ``direct`` with a 20-second episode and grace times long enough for a reloaded
  page to load the runtime again, resume, and connect directly again;
- ``relay_long``: as ``relay`` with a 20-second episode (``bench/p2p_browser.py``'s relay runs).
"""

from __future__ import annotations

from typing import Any

import attrs

from igym_core import EndScene, Experiment, GymScene, StaticScene, WaitingRoom
from igym_slime.env import make_env
from igym_slime.examples.vs_ai import ACTION_MAPPING  # the arrow keys and their combinations
from igym_slime.hud import vs_partner as hud
from igym_slime.render import HEIGHT, SKY, WIDTH, draw

#: 10 seconds at 30 fps: the relay, leaving and reloading games.
STEPS = 300
#: 20 seconds at 30 fps: the direct games (the issue's 20-second run, with and without faults).
LONG_STEPS = 600

relay_game = GymScene(
    scene_id="slime_p2p",
    env_factory=make_env,
    env_kwargs={"lives": 15, "max_steps": 3000},
    human_seats=("left", "right"),
    waiting_room=WaitingRoom(timeout_s=240),
    on_partner_left="bot",
    partner_policy="igym_slime.bots:scripted_policy",
    render_fn=draw,
    hud=hud,
    action_mapping=ACTION_MAPPING,
    default_action=0,
    fps=30,
    num_episodes=1,
    max_steps=STEPS,
    countdown_s=1,
    canvas_width=WIDTH,
    canvas_height=HEIGHT,
    background=SKY,
    runtime="pyodide_p2p",
    runtime_options={"route": "relay", "load_timeout_s": 180},
)


def _experiment(experiment_id: str, game: Any) -> Experiment:
    return Experiment(
        experiment_id=experiment_id,
        seed=19,
        scenes=(
            game,
            StaticScene(scene_id="after", title="Thanks", body="Done."),
            EndScene(scene_id="end"),
        ),
    )


relay = _experiment("slime_p2p_relay", relay_game)
direct = _experiment(
    "slime_p2p_direct",
    attrs.evolve(
        relay_game,
        max_steps=LONG_STEPS,
        runtime_options={"route": "auto", "connect_timeout_s": 15, "load_timeout_s": 180},
    ),
)
relay_long = _experiment("slime_p2p_relay_long", attrs.evolve(relay_game, max_steps=LONG_STEPS))
leaving = _experiment(
    "slime_p2p_leaving",
    attrs.evolve(
        relay_game,
        reconnect_grace_s=2,
        runtime_options={"route": "relay", "load_timeout_s": 180, "partner_lost_s": 2, "reload_grace_s": 2},
    ),
)
reloading = _experiment(
    "slime_p2p_reloading",
    attrs.evolve(
        relay_game,
        max_steps=2 * STEPS,
        runtime_options={
            "route": "auto",
            "connect_timeout_s": 15,
            "load_timeout_s": 180,
            "partner_lost_s": 60,
            "reload_grace_s": 90,
        },
    ),
)
leaving_direct = _experiment(
    "slime_p2p_leaving_direct",
    attrs.evolve(
        relay_game,
        reconnect_grace_s=2,
        runtime_options={
            "route": "auto",
            "connect_timeout_s": 15,
            "load_timeout_s": 180,
            "partner_lost_s": 2,
            "reload_grace_s": 2,
        },
    ),
)
