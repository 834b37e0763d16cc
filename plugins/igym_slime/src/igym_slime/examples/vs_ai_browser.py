"""Slime Volleyball against the trained bot, with the game running in the participant's browser.

The study of :mod:`igym_slime.examples.vs_ai` (consent, how to play, five games, a survey, a code),
except that its game scene has ``runtime="pyodide"``: the env, the renderer and the bot step in a
Web Worker in the participant's browser (Pyodide, with the ONNX model run by onnxruntime-web), and
the server issues each episode's seed and stores the steps the page streams to it. The page looks
and plays exactly like the server-run game.

Serve it with ``igym run igym_slime.examples.vs_ai_browser:experiment`` (igym-pyodide-p2p installed);
the data goes to ``data/slime_vs_ai_browser/``.
"""

from __future__ import annotations

import attrs

from igym_core import Experiment
from igym_core.examples.common import END, PROLIFIC_PARAMS
from igym_slime.examples import vs_ai

game = attrs.evolve(vs_ai.game, runtime="pyodide")

experiment = Experiment(
    experiment_id="slime_vs_ai_browser",
    title="Slime Volleyball",
    seed=2026,
    url_params=PROLIFIC_PARAMS,
    scenes=(
        vs_ai.consent,
        vs_ai.instructions,
        game,
        vs_ai.survey,
        END,
    ),
)
