"""The example game study: consent, instructions, MountainCar with the arrow keys, a survey, a code.

Serve it with ``igym run igym_core.examples.mountain_car:experiment`` (``make demo`` does).

MountainCar (Gymnasium classic control) is drawn with render objects: a permanent hillside and
flag, and a car whose body and wheels move and tilt with the slope. The participant pushes the car
left or right with the arrow keys; with no key held it coasts.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium

from igym_core import (
    ChoiceQuestion,
    Experiment,
    GymScene,
    ScaleQuestion,
    StartScene,
    StaticScene,
    SurveyScene,
)
from igym_core.examples.common import AGREE_18, COMMENTS, END, PROLIFIC_PARAMS
from igym_core.rendering.objects import Circle, Line, Polygon, Rect

WIDTH, HEIGHT = 600, 400
MIN_X, MAX_X = -1.2, 0.6
GOAL_X = 0.5
SCALE = WIDTH / (MAX_X - MIN_X)
GROUND = 30  # pixels of ground below the lowest point of the valley
Y_SCALE = HEIGHT - GROUND - 80  # the hilltop (height 1.0) leaves room for the flag
MAX_STEPS = 600  # 20 seconds at 30 steps per second


def make_env() -> gymnasium.Env:
    """MountainCar without Gymnasium's 200-step limit: the scene's max_steps ends an episode."""
    return gymnasium.make("MountainCar-v0", max_episode_steps=100_000)


def _height(x: float) -> float:
    return math.sin(3 * x) * 0.45 + 0.55


def _to_screen(x: float, y: float) -> tuple[float, float]:
    return (x - MIN_X) * SCALE, HEIGHT - GROUND - y * Y_SCALE


def _hillside() -> list[Any]:
    xs = [MIN_X + (MAX_X - MIN_X) * i / 120 for i in range(121)]
    ridge = [_to_screen(x, _height(x)) for x in xs]
    ground = [*ridge, (WIDTH, HEIGHT), (0, HEIGHT)]
    flag_x, flag_y = _to_screen(GOAL_X, _height(GOAL_X))
    return [
        Polygon(id="ground", points=ground, fill="#3f6212", depth=0, permanent=True),
        Line(id="ridge", points=ridge, color="#a3e635", line_width=3, depth=1, permanent=True),
        Line(
            id="flagpole",
            points=[(flag_x, flag_y), (flag_x, flag_y - 50)],
            color="#e2e8f0",
            line_width=3,
            depth=2,
            permanent=True,
        ),
        Polygon(
            id="flag",
            points=[(flag_x, flag_y - 50), (flag_x + 28, flag_y - 43), (flag_x, flag_y - 36)],
            fill="#facc15",
            depth=2,
            permanent=True,
        ),
    ]


_STATIC = _hillside()


def draw(env: gymnasium.Env) -> list[Any]:
    """Render objects for the current state: the static scenery plus the car."""
    position = float(env.unwrapped.state[0])
    slope = math.cos(3 * position) * 0.45 * 3 * Y_SCALE / SCALE  # on screen, in pixels per pixel
    tilt = math.atan(slope)
    cx, cy = _to_screen(position, _height(position))
    # The car body sits above the track, perpendicular to the slope.
    normal_x, normal_y = -math.sin(tilt), -math.cos(tilt)
    body_x, body_y = cx + normal_x * 14, cy + normal_y * 14
    wheel = []
    for index, along in enumerate((-12.0, 12.0)):
        wx = cx + math.cos(tilt) * along + normal_x * 5
        wy = cy - math.sin(tilt) * along + normal_y * 5
        wheel.append(
            Circle(
                id=f"wheel{index}",
                x=wx,
                y=wy,
                radius=6,
                fill="#0f172a",
                stroke="#cbd5e1",
                line_width=2,
                depth=4,
            )
        )
    return [
        *_STATIC,
        Rect(
            id="car",
            x=body_x,
            y=body_y,
            width=40,
            height=18,
            angle=-math.degrees(tilt),
            fill="#ef4444",
            stroke="#7f1d1d",
            line_width=2,
            depth=3,
        ),
        *wheel,
    ]


def hud(view: Any) -> str:
    seconds_left = max(0, (view.max_steps - view.step)) / 30
    return f"Time left {seconds_left:4.1f} s"


consent = StartScene(
    scene_id="consent",
    title="Welcome",
    body="""
In this short study you will drive a small car in a browser game, then answer a few questions.
It takes about four minutes. Your key presses in the game and your answers are recorded,
without your name.

You may stop at any time by closing the page.
""",
    agree_label=AGREE_18,
)

instructions = StaticScene(
    scene_id="instructions",
    title="How to play",
    body="""
Your car is stuck in a valley. Get it up to the **yellow flag** on the right-hand hill.

- Hold **←** or **→** to push the car. Its engine is weak: rock it back and forth to build momentum.
- Each round lasts up to 20 seconds, and there are **two rounds**.
- A countdown appears before each round. Keep this window in focus while you play.
""",
    min_duration_ms=1500,
)

game = GymScene(
    scene_id="mountain_car",
    env_factory=make_env,
    render_fn=draw,
    hud=hud,
    action_mapping={"ArrowLeft": 0, "ArrowRight": 2},
    default_action=1,
    num_episodes=2,
    max_steps=MAX_STEPS,
    canvas_width=WIDTH,
    canvas_height=HEIGHT,
    background="#0c4a6e",
    header_html="<p>Reach the <strong>flag</strong>: rock the car with <kbd>←</kbd> and <kbd>→</kbd>.</p>",
)

debrief = SurveyScene(
    scene_id="debrief",
    title="About the game",
    questions=(
        ScaleQuestion(
            id="difficulty",
            prompt="How hard was it to reach the flag?",
            labels=((1, "Very easy"), (7, "Very hard")),
        ),
        ChoiceQuestion(
            id="strategy",
            prompt="What worked best?",
            choices=(
                ("rock", "Rocking back and forth"),
                ("hold_right", "Holding the right arrow"),
                ("other", "Something else"),
            ),
        ),
        COMMENTS,
    ),
)

experiment = Experiment(
    experiment_id="mountain_car_demo",
    title="Mountain car",
    seed=2026,
    url_params=PROLIFIC_PARAMS,  # recorded with every record; see igym_core.examples.common
    scenes=(consent, instructions, game, debrief, END),
)
