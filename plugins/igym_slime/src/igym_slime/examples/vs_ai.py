"""Slime Volleyball against a trained bot: consent, how to play, five games, a survey, a code.

Serve it with ``igym run igym_slime.examples.vs_ai:experiment`` (``make demo`` does).

The participant is the orange slime on the left and plays with the arrow keys (up and left/right
together jump sideways); the green slime on the right is the bot trained by
:mod:`igym_slime.train` (igym-onnx's ``onnx`` policy, batched across games on the server). Each
game lasts until one side has lost five points, or 100 seconds. The server steps the game at 30
frames per second and records every step of both players; the data goes to
``data/slime_vs_ai/``.
"""

from __future__ import annotations

from typing import Any

from igym_core import (
    ChoiceQuestion,
    Experiment,
    GymScene,
    ScaleQuestion,
    StartScene,
    StaticScene,
    SurveyScene,
    TextQuestion,
)
from igym_core.examples.common import AGREE_18, END, ENJOYMENT, PROLIFIC_PARAMS
from igym_slime.bots import trained_policy
from igym_slime.env import make_env
from igym_slime.hud import vs_computer
from igym_slime.render import HEIGHT, SKY, WIDTH, draw

#: Keys → actions (0 nothing, 1 left, 2 right, 3 jump, 4 left+jump, 5 right+jump). The combinations
#: are explicit: holding up and left together is one action of its own.
ACTION_MAPPING = {
    "ArrowLeft": 1,
    "ArrowRight": 2,
    "ArrowUp": 3,
    "ArrowUp+ArrowLeft": 4,
    "ArrowUp+ArrowRight": 5,
}
LIVES = 5
GAMES = 5

#: The trained bot, named relative to this file (igym resolves it from the experiment's folder).
BOT = trained_policy("../models/slime_policy.onnx")

KEYS_HTML = (
    "<p>Move with <kbd>←</kbd> <kbd>→</kbd>, jump with <kbd>↑</kbd> (hold <kbd>↑</kbd> with an arrow "
    "to jump sideways). Don't let the ball land on your side!</p>"
)


#: What the examples' game scenes share: the court, its rules and pace, the keys, the picture.
COURT: dict[str, Any] = {
    "env_factory": make_env,
    "env_kwargs": {"lives": LIVES, "max_steps": 3000},
    "render_fn": draw,
    "action_mapping": ACTION_MAPPING,
    "default_action": 0,
    "canvas_width": WIDTH,
    "canvas_height": HEIGHT,
    "background": SKY,
    "header_html": KEYS_HTML,
}

#: ``Game 2 of 5 · You 3 – 1 Computer`` (points won this game).
hud = vs_computer


consent = StartScene(
    scene_id="consent",
    title="Welcome",
    body="""
In this short study you will play five games of **Slime Volleyball** against a computer player in
your browser, then answer a few questions. It takes about eight minutes.

Your key presses in the games and your answers are recorded, without your name. You may stop at
any time by closing the page.
""",
    agree_label=AGREE_18,
)

instructions = StaticScene(
    scene_id="instructions",
    title="How to play",
    body=f"""
You are the **orange slime on the left**. The green slime on the right is a computer player.

- Hold **←** or **→** to move, and **↑** to jump. Hold **↑** together with **←** or **→** to jump
  sideways.
- Knock the ball over the net. When the ball lands on the ground, the player on whose side it
  landed loses a point.
- Each player has **{LIVES} lives** (the dots at the top). A game ends when one player has none
  left, or after 100 seconds. You will play **{GAMES} games**.
- A countdown appears before each game. Click the game and keep the window in focus while you play.
""",
    min_duration_ms=2000,
)

game = GymScene(
    scene_id="slime",
    **COURT,
    human_seat="left",
    policies={"right": BOT},
    hud=hud,
    num_episodes=GAMES,
)

survey = SurveyScene(
    scene_id="survey",
    title="About the games",
    questions=(
        ENJOYMENT,
        ScaleQuestion(
            id="opponent_skill",
            prompt="How skilled was the computer player?",
            labels=((1, "Very weak"), (7, "Very strong")),
        ),
        ChoiceQuestion(
            id="opponent_humanlike",
            prompt="Did the computer player play like a person would?",
            choices=(("yes", "Yes"), ("somewhat", "Somewhat"), ("no", "No")),
        ),
        ChoiceQuestion(
            id="played_before",
            prompt="Had you played Slime Volleyball before?",
            choices=(("yes", "Yes"), ("no", "No"), ("unsure", "Not sure")),
        ),
        TextQuestion(
            id="strategy",
            prompt="What was your strategy, if you had one?",
            required=False,
            multiline=True,
            max_length=1000,
        ),
    ),
)

experiment = Experiment(
    experiment_id="slime_vs_ai",
    title="Slime Volleyball",
    seed=2026,
    url_params=PROLIFIC_PARAMS,  # recorded with every record; see igym_core.examples.common
    scenes=(consent, instructions, game, survey, END),
)
