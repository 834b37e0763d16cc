"""Slime Volleyball between two participants, each game stepped in both participants' browsers.

The study of :mod:`igym_slime.examples.vs_human` (consent, how to play, a waiting room, three games,
a survey, a code), except that its game scene has ``runtime="pyodide_p2p"``: each page runs the env
under Pyodide with the rollback engine, and the two pages exchange their inputs directly over WebRTC
(or through the igym server when no direct connection forms; there is no TURN server unless
``IGYM_P2P_ICE_SERVERS`` names one). A key press shows on your own screen after the input delay, and
on your partner's about half a round trip later. The server issues each episode's seed, relays the
signalling, and stores and compares both pages' step records.

If a partner closes their page and does not come back, the remaining participant plays on against
the scripted bot in their own page (``on_partner_left="bot"``).

Serve it with ``igym run igym_slime.examples.p2p_browser:experiment`` (igym-pyodide-p2p installed)
and open the link in two browsers; the data goes to ``data/slime_p2p_browser/``.
"""

from __future__ import annotations

import attrs

from igym_core import Experiment
from igym_core.examples.common import END, PROLIFIC_PARAMS
from igym_slime.bots import ScriptedPolicy
from igym_slime.examples import vs_human

game = attrs.evolve(
    vs_human.game,
    scene_id="slime_p2p",
    runtime="pyodide_p2p",
    # The partner's seat is played in the remaining page, so its bot must run in the browser: the
    # scripted (pure-Python) bot.
    partner_policy=ScriptedPolicy,
    runtime_options={"input_delay": 2, "connect_timeout_s": 5},
)

experiment = Experiment(
    experiment_id="slime_p2p_browser",
    title="Slime Volleyball for two",
    seed=2028,
    url_params=PROLIFIC_PARAMS,
    scenes=(
        vs_human.consent,
        vs_human.instructions,
        game,
        vs_human.survey,
        END,
    ),
)
