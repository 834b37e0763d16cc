"""The experiment ``bench/server_tick.py`` serves: one MountainCar game scene, then the end.

The same env, render function and key mapping as the demo (``igym_core.examples.mountain_car``),
without a countdown, so that a participant is in a running game as soon as they connect.
``IGYM_BENCH_STEPS`` sets how many steps a game lasts; ``IGYM_BENCH_FPS`` its tick rate.

With ``IGYM_BENCH_HUMANS=2`` the scene is a two-player game: two MountainCars in one env (agents
``left`` and ``right``, each driven by one participant), drawn on one canvas, and players are
grouped in pairs by the FIFO matchmaker as they connect.
"""

from __future__ import annotations

import os
from typing import Any

from gymnasium import spaces

from igym_core import EndScene, Experiment, GymScene
from igym_core.builtin.scene_gym import WaitingRoom
from igym_core.examples.mountain_car import HEIGHT, WIDTH, draw, make_env
from igym_core.rendering.objects import Rect

FPS = int(os.environ.get("IGYM_BENCH_FPS", "30"))
STEPS = int(os.environ.get("IGYM_BENCH_STEPS", str(FPS * 20)))
HUMANS = int(os.environ.get("IGYM_BENCH_HUMANS", "1"))


class TwoCars:
    """Two MountainCars side by side, one per player: a PettingZoo-style parallel env."""

    metadata = {"name": "two_cars"}

    def __init__(self) -> None:
        self.possible_agents = ["left", "right"]
        self.agents: list[str] = []
        self.cars = {agent: make_env() for agent in self.possible_agents}

    def action_space(self, agent: str) -> spaces.Space:
        return self.cars[agent].action_space

    def observation_space(self, agent: str) -> spaces.Space:
        return self.cars[agent].observation_space

    def reset(self, seed: int | None = None, options: Any = None):
        self.agents = list(self.possible_agents)
        obs = {}
        for index, (agent, car) in enumerate(self.cars.items()):
            obs[agent], _ = car.reset(seed=None if seed is None else seed + index)
        return obs, {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, Any]):
        out: tuple[dict, dict, dict, dict, dict] = ({}, {}, {}, {}, {})
        for agent, action in actions.items():
            results = self.cars[agent].step(action)
            for target, value in zip(out, results, strict=True):
                target[agent] = value
        if any(out[2].values()) or any(out[3].values()):
            self.agents = []
        return out

    def close(self) -> None:
        for car in self.cars.values():
            car.close()


def draw_two(env: TwoCars) -> list[Any]:
    """The demo's scenery and car for the left player, plus the right player's car (in blue)."""
    objects = draw(env.cars["left"])
    for obj in draw(env.cars["right"]):
        if obj.id == "car" and isinstance(obj, Rect):
            blue = {"id": "car_right", "fill": "#3b82f6", "stroke": "#1e3a8a"}
            objects.append(Rect(**{**_fields(obj), **blue}))
        elif obj.id.startswith("wheel"):
            objects.append(type(obj)(**{**_fields(obj), "id": f"{obj.id}_right"}))
    return objects


def _fields(obj: Any) -> dict[str, Any]:
    import attrs

    return {f.name: getattr(obj, f.name) for f in attrs.fields(type(obj)) if f.init}


# What both variants share: the demo's keys, no countdown, one long episode.
COMMON: dict[str, Any] = dict(
    scene_id="game",
    action_mapping={"ArrowLeft": 0, "ArrowRight": 2},
    default_action=1,
    fps=FPS,
    num_episodes=1,
    max_steps=STEPS,
    countdown_s=0,
    canvas_width=WIDTH,
    canvas_height=HEIGHT,
    ready_timeout_s=60,
)

if HUMANS == 2:
    game = GymScene(
        env_factory=TwoCars,
        render_fn=draw_two,
        human_seats=("left", "right"),
        waiting_room=WaitingRoom(timeout_s=120),
        **COMMON,
    )
else:
    game = GymScene(env_factory=make_env, render_fn=draw, **COMMON)

experiment = Experiment(
    experiment_id="bench_server_tick",
    seed=1,
    scenes=(game, EndScene(scene_id="end")),
)
