"""Overcooked for two participants: consent, how to play, a waiting room, three rounds, a survey,
a code.

Serve it with ``igym run igym_cogrid.examples.human_human:experiment``; open the link in two
browsers (or send it to two people). The first to arrive plays the **blue chef** (``chef_0``), the
second the **red chef** (``chef_1``); the line above the game tells each which is theirs. A
participant waits up to three minutes for a partner; if nobody comes they go on to the survey (and
still get their code). If a partner leaves mid-round (closes the page and stays away for 20
seconds), the scripted planner takes their chef and the round goes on. Data goes to
``data/overcooked_human_human/``; ``matches.jsonl`` records who was matched with whom.
"""

from __future__ import annotations

from typing import Any

from igym_cogrid.bots import PlannerPolicy
from igym_cogrid.examples.human_ai import HOW_TO_COOK, KITCHEN, LAYOUT, ROUND_S, ROUNDS
from igym_cogrid.pictures import controls_figure, kitchen_figure
from igym_cogrid.render import draw
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

_CHEF = {"chef_0": "blue", "chef_1": "red"}


def hud(view: Any) -> str:
    """``Round 1 of 3 · You are the blue chef`` (each player sees their own colour)."""
    return f"Round {view.episode} of {view.num_episodes} · You are the {_CHEF.get(view.seat, 'blue')} chef"


consent = StartScene(
    scene_id="consent",
    title="Welcome",
    body=f"""
In this study you will cook together with **another participant** in a small kitchen game,
**{ROUNDS} rounds of {ROUND_S} seconds**, then answer a few questions. It takes about eight minutes,
plus up to three minutes of waiting for a partner.

Your key presses in the game and your answers are recorded, without your name. You may stop at
any time by closing the page.
""",
    agree_label=AGREE_18,
)

instructions = StaticScene(
    scene_id="instructions",
    title="How to play",
    body=f"""
You will be paired with another participant. One of you is the **blue chef**, the other the
**red chef**; the line above the game says which is yours. Work together to serve as many onion
soups as you can.

{kitchen_figure(LAYOUT, you=None)}

{HOW_TO_COOK}
{controls_figure()}

If your partner leaves, a computer chef takes their place.
""",
    min_duration_ms=2000,
)

game = GymScene(
    scene_id="overcooked_pvp",
    **KITCHEN,
    human_seats=("chef_0", "chef_1"),
    waiting_room=WAITING_FOR_PARTNER,
    on_partner_left="bot",
    partner_policy=PlannerPolicy,
    render_fn=draw,
    hud=hud,
)

survey = SurveyScene(
    scene_id="survey",
    title="About the game",
    questions=(
        ENJOYMENT,
        ScaleQuestion(
            id="partner_helpful",
            prompt="How helpful was the other player? (Leave it if you did not get to play.)",
            labels=((1, "Not at all"), (7, "Very helpful")),
            required=False,
        ),
        PARTNER_HUMAN,
        COMMENTS,
    ),
)

experiment = Experiment(
    experiment_id="overcooked_human_human",
    title="Cooking together, two players",
    seed=2027,
    url_params=PROLIFIC_PARAMS,
    scenes=(consent, instructions, game, survey, END),
)
