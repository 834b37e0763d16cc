"""Overcooked with a computer partner: consent, how to play, three rounds, a survey, a code.

Serve it with ``igym run igym_cogrid.examples.human_ai:experiment`` (or
``make demo DEMO=igym_cogrid.examples.human_ai:experiment``).

The participant is the **blue chef** (``chef_0``) in the cramped room; the **red chef** (``chef_1``)
is the computer partner named by :data:`PARTNER` (one of :data:`igym_cogrid.bots.PARTNERS`: the
scripted planner at four strengths, or the chef cloned from it; set ``PARTNER`` to vary the partner's
skill, or give each condition its own). Arrow keys move, space picks up,
puts down and uses. Each round lasts 60 seconds at 10 steps a second. The server records every step
of both chefs with the kitchen's state in ``info`` (positions, held items, pots, soups served,
collisions); the last step of a round has the round's summary (``episode_summary``: soups served and
the score). Data goes to ``data/overcooked_human_ai/``.
"""

from __future__ import annotations

from typing import Any

from igym_cogrid.bots import partner
from igym_cogrid.env import KEYS, NOOP, SOUP_POINTS, make_env
from igym_cogrid.pictures import controls_figure, kitchen_figure
from igym_cogrid.render import BACKGROUND, canvas_size, draw_you_chef_0
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

LAYOUT = "cramped_room"
#: The computer partner (igym_cogrid.bots.PARTNERS): "expert", "steady", "slow", "novice" (the
#: scripted planner acting every 1/2/4/6 steps) or "cloned", "cloned_sampled", "cloned_slow".
PARTNER = "expert"
FPS = 10
ROUND_S = 60
ROUNDS = 3
WIDTH, HEIGHT = canvas_size(LAYOUT)

#: The controls, shown above the game and on the instructions page.
KEYS_HTML = (
    "<p>Move with the arrow keys <kbd>←</kbd> <kbd>↑</kbd> <kbd>→</kbd> <kbd>↓</kbd>; press "
    "<kbd>Space</kbd> to pick up, put down or use what your chef faces.</p>"
)

HOW_TO_COOK = f"""
- **Move** with the arrow keys. Walking into a counter turns your chef to face it.
- **Space** picks up or puts down what your chef faces: take an onion from the **onion crate**, put
  it in the **pot**. Three onions in a pot start the cooking (a bar under the pot fills up).
- When the pot says **ready!**, take a **dish** from the dish rack, face the pot and press Space to
  fill the dish with soup, then carry it to the **green serving hatch** (the arrow) and press Space.
- Each soup served earns your team **{SOUP_POINTS} points**. You can also put things down on any
  empty counter.
"""


#: What the examples' game scenes share: the kitchen, its pace and rounds, the keys, the picture.
KITCHEN: dict[str, Any] = {
    "env_factory": make_env,
    "env_kwargs": {"layout": LAYOUT, "max_steps": ROUND_S * FPS, "fps": FPS},
    "action_mapping": KEYS,
    "default_action": NOOP,
    "fps": FPS,
    "num_episodes": ROUNDS,
    "canvas_width": WIDTH,
    "canvas_height": HEIGHT,
    "background": BACKGROUND,
    "header_html": KEYS_HTML,
}


def hud(view: Any) -> str:
    """``Round 2 of 3 · You are the blue chef``."""
    return f"Round {view.episode} of {view.num_episodes} · You are the blue chef"


consent = StartScene(
    scene_id="consent",
    title="Welcome",
    body=f"""
In this short study you will cook together with a computer partner in a small kitchen game,
**{ROUNDS} rounds of {ROUND_S} seconds**, then answer a few questions. It takes about eight minutes.

Your key presses in the game and your answers are recorded, without your name. You may stop at
any time by closing the page.
""",
    agree_label=AGREE_18,
)

instructions = StaticScene(
    scene_id="instructions",
    title="How to play",
    body=f"""
You are the **blue chef** (labelled "you"). The **red chef** is a computer partner who cooks too.
Work together to serve as many onion soups as you can.

{kitchen_figure(LAYOUT, you="chef_0")}

{HOW_TO_COOK}
{controls_figure()}

A countdown appears before each round. Click the game and keep the window in focus while you play.
""",
    min_duration_ms=2000,
)

game = GymScene(
    scene_id="overcooked",
    **KITCHEN,
    human_seat="chef_0",
    policies={"chef_1": partner(PARTNER, layout=LAYOUT)},
    render_fn=draw_you_chef_0,
    hud=hud,
)

survey = SurveyScene(
    scene_id="survey",
    title="About the game",
    questions=(
        ENJOYMENT,
        ScaleQuestion(
            id="partner_helpful",
            prompt="How helpful was your partner?",
            labels=((1, "Not at all"), (7, "Very helpful")),
        ),
        ChoiceQuestion(
            id="partner_humanlike",
            prompt="Did your partner play like a person would?",
            choices=(("yes", "Yes"), ("somewhat", "Somewhat"), ("no", "No")),
        ),
        TextQuestion(
            id="strategy",
            prompt="How did you and your partner share the work, if at all?",
            required=False,
            multiline=True,
            max_length=1000,
        ),
    ),
)

experiment = Experiment(
    experiment_id="overcooked_human_ai",
    title="Cooking together",
    seed=2026,
    url_params=PROLIFIC_PARAMS,
    scenes=(consent, instructions, game, survey, END),
)
