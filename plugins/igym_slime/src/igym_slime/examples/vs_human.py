"""Slime Volleyball between two participants: consent, how to play, a waiting room, three games,
a survey, a code.

Serve it with ``igym run igym_slime.examples.vs_human:experiment``; open the link in two browsers
(or send it to two people). The first to arrive plays the orange slime on the left, the second the
green slime on the right; both use the arrow keys. A participant waits up to three minutes for a
partner; if nobody comes they go on to the survey (and still get their code). If a partner leaves
mid-game (closes the page and stays away for 20 seconds), the trained bot takes their seat and the
game goes on. Data goes to ``data/slime_vs_human/``: ``matches.jsonl`` records who waited and who
was matched with whom.
"""

from __future__ import annotations

from igym_core import Experiment, GymScene, ScaleQuestion, StartScene, StaticScene, SurveyScene
from igym_core.examples.common import (
    AGREE_18,
    COMMENTS,
    END,
    ENJOYMENT,
    PARTNER_HUMAN,
    PROLIFIC_PARAMS,
    WAITING_FOR_PARTNER,
)
from igym_slime.bots import trained_policy
from igym_slime.examples.vs_ai import COURT, LIVES
from igym_slime.hud import vs_partner

GAMES = 3


#: ``Game 1 of 3 · You (orange, left) 2 – 1 Partner``: each player sees their own side first (in a
#: module that imports nothing, so that a browser-run game can use it too).
hud = vs_partner


consent = StartScene(
    scene_id="consent",
    title="Welcome",
    body="""
In this study you will play **Slime Volleyball** in your browser against **another participant**,
then answer a few questions. It takes about eight minutes, plus up to three minutes of waiting for
a partner.

Your key presses in the games and your answers are recorded, without your name. You may stop at
any time by closing the page.
""",
    agree_label=AGREE_18,
)

instructions = StaticScene(
    scene_id="instructions",
    title="How to play",
    body=f"""
You will be paired with another participant. One of you plays the **orange slime on the left**,
the other the **green slime on the right**; the line above the game says which is yours
("You: left" is the orange one).

- Hold **←** or **→** to move, and **↑** to jump. Hold **↑** together with **←** or **→** to jump
  sideways.
- Knock the ball over the net. When the ball lands on the ground, the player on whose side it
  landed loses a point.
- Each player has **{LIVES} lives**. A game ends when one player has none left, or after 100
  seconds. You will play **{GAMES} games**.
- If your partner leaves, a computer player takes their place.
""",
    min_duration_ms=2000,
)

game = GymScene(
    scene_id="slime_pvp",
    **COURT,
    human_seats=("left", "right"),
    waiting_room=WAITING_FOR_PARTNER,
    on_partner_left="bot",
    partner_policy=trained_policy("../models/slime_policy.onnx"),
    hud=hud,
    num_episodes=GAMES,
)

survey = SurveyScene(
    scene_id="survey",
    title="About the games",
    questions=(
        ENJOYMENT,
        ScaleQuestion(
            id="partner_skill",
            prompt="How skilled was the other player? (Leave it if you did not get to play.)",
            labels=((1, "Very weak"), (7, "Very strong")),
            required=False,
        ),
        PARTNER_HUMAN,
        COMMENTS,
    ),
)

experiment = Experiment(
    experiment_id="slime_vs_human",
    title="Slime Volleyball for two",
    seed=2027,
    url_params=PROLIFIC_PARAMS,
    scenes=(consent, instructions, game, survey, END),
)
