"""A two-player game for browser tests: each player moves their own dot with the arrow keys.

`Dots` is a PettingZoo-style parallel env without PettingZoo: agents "left" (blue) and "right"
(orange), actions 0 stay, 1 left, 2 right, 3 up, 4 down. Participants wait in the waiting room
until two are there (for at most 4 s, then they go back to Prolific with the NOPARTNER code),
play, and move on to a page and the end.

Three experiments for `igym run tests/e2e/multiplayer_study.py:<name>`:

- `experiment`: two short episodes;
- `experiment_leave_end`: one long episode; a player who stays away 2 s ends the game for both;
- `experiment_leave_bot`: the same, but a bot takes the seat of a player who left.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from igym_core import EndScene, Experiment, GymScene, StaticScene
from igym_core.builtin.scene_gym import WaitingRoom
from igym_core.rendering.objects import Circle, Rect, Text

WIDTH, HEIGHT = 480, 320
SPEED = 6
RADIUS = 16
START = {"left": (120.0, 160.0), "right": (360.0, 160.0)}
COLOURS = {"left": "#38bdf8", "right": "#f97316"}
MOVES = {0: (0, 0), 1: (-1, 0), 2: (1, 0), 3: (0, -1), 4: (0, 1)}
NO_PARTNER_URL = "https://app.prolific.com/submissions/complete?cc=NOPARTNER&pid={PROLIFIC_PID}"
WAITING_MESSAGE = "Waiting for a second player to join. Please keep this page open."


class Dots:
    """Two dots on a field, each moved by its own agent. Never terminates (the scene's max_steps ends it)."""

    metadata = {"name": "dots"}

    def __init__(self) -> None:
        self.possible_agents = ["left", "right"]
        self.agents: list[str] = []
        self.positions = dict(START)

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(5)

    def observation_space(self, agent: str) -> spaces.Space:
        return spaces.Box(0, max(WIDTH, HEIGHT), shape=(4,), dtype=np.float32)

    def _obs(self) -> dict[str, Any]:
        both = np.array([*self.positions["left"], *self.positions["right"]], dtype=np.float32)
        return {a: both.copy() for a in self.agents}

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        self.agents = list(self.possible_agents)
        self.positions = dict(START)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        for agent, action in actions.items():
            dx, dy = MOVES[int(action)]
            x, y = self.positions[agent]
            self.positions[agent] = (
                min(WIDTH - RADIUS, max(RADIUS, x + dx * SPEED)),
                min(HEIGHT - RADIUS, max(RADIUS, y + dy * SPEED)),
            )
        obs = self._obs()
        rewards = {a: 0.0 for a in self.agents}
        flags = {a: False for a in self.agents}
        infos = {a: {"x": self.positions[a][0], "y": self.positions[a][1]} for a in self.agents}
        return obs, rewards, flags, dict(flags), infos

    def close(self) -> None:
        pass


def make_env() -> Dots:
    return Dots()


def draw(env: Dots) -> list[Any]:
    objects: list[Any] = [
        Rect(
            id="field",
            x=WIDTH / 2,
            y=HEIGHT / 2,
            width=WIDTH - 8,
            height=HEIGHT - 8,
            fill=None,
            stroke="#334155",
            line_width=2,
            permanent=True,
        ),
    ]
    for agent, (x, y) in env.positions.items():
        objects.append(Circle(id=agent, x=x, y=y, radius=RADIUS, fill=COLOURS[agent], depth=1))
        objects.append(
            Text(
                id=f"{agent}-label",
                x=x,
                y=y - RADIUS - 4,
                text=agent,
                font_size=14,
                color="#e2e8f0",
                origin_x=0.5,
                origin_y=1,
                depth=2,
            )
        )
    return objects


def make_experiment(experiment_id: str, **game: Any) -> Experiment:
    options: dict[str, Any] = {
        "num_episodes": 2,
        "max_steps": 120,
        "reconnect_grace_s": 20.0,
        **game,
    }
    return Experiment(
        experiment_id=experiment_id,
        seed=5,
        url_params=("PROLIFIC_PID",),
        scenes=(
            StaticScene(scene_id="intro", title="Ready?", body="Press continue to meet your partner."),
            GymScene(
                scene_id="dots",
                env_factory=make_env,
                render_fn=draw,
                human_seats=("left", "right"),
                action_mapping={"ArrowLeft": 1, "ArrowRight": 2, "ArrowUp": 3, "ArrowDown": 4},
                default_action=0,
                fps=20,
                countdown_s=1,
                canvas_width=WIDTH,
                canvas_height=HEIGHT,
                background="#0f172a",
                header_html="<p>Move your dot with the arrow keys.</p>",
                waiting_room=WaitingRoom(
                    timeout_s=4,
                    message=WAITING_MESSAGE,
                    on_timeout="redirect",
                    timeout_redirect_url=NO_PARTNER_URL,
                ),
                rtt_interval_s=0.5,
                **options,
            ),
            StaticScene(scene_id="after", title="Thanks", body="The game is over."),
            EndScene(scene_id="end", completion_code="DOTS1"),
        ),
    )


experiment = make_experiment("multiplayer_e2e")
experiment_leave_end = make_experiment(
    "multiplayer_leave_end",
    num_episodes=1,
    max_steps=400,
    reconnect_grace_s=2.0,
    on_partner_left="end",
    partner_left_message="Your partner has left the game.",
)
experiment_leave_bot = make_experiment(
    "multiplayer_leave_bot",
    num_episodes=1,
    max_steps=200,
    reconnect_grace_s=2.0,
    on_partner_left="bot",
    partner_policy="random",
)
