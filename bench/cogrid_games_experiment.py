"""The experiment ``bench/cogrid_games.py`` serves: the cogrid human–AI kitchen at 15 fps, then the end.

The participant is ``chef_0`` (one simulated client per game), the scripted planner plays
``chef_1``; one long episode, no countdown, so a client is in a running game as soon as it
connects. ``IGYM_BENCH_STEPS`` sets how many steps a game lasts, ``IGYM_BENCH_FPS`` its rate, and
``IGYM_BENCH_VARIANT`` the heavy-env option under test:

- ``none``: every seat's observation is built at every step (the env ignores the seats the runtime
  names), stepped on the event loop;
- ``observed``: observations only for the bot's seat (the env's ``set_observed_agents``), stepped on
  the event loop;
- ``pool``: observations only for the bot's seat, stepped in the worker processes
  (``runtime_options={"step_in_worker": True}``; ``IGYM_STEP_WORKERS`` sets how many).

The planner reads the ``compact`` observation (the kitchen's default).
"""

from __future__ import annotations

import os

from igym_cogrid.bots import PlannerPolicy
from igym_cogrid.env import KEYS, NOOP, OvercookedEnv
from igym_cogrid.render import BACKGROUND, canvas_size, draw_you_chef_0
from igym_core import EndScene, Experiment, GymScene

FPS = int(os.environ.get("IGYM_BENCH_FPS", "15"))
STEPS = int(os.environ.get("IGYM_BENCH_STEPS", str(FPS * 60)))
VARIANT = os.environ.get("IGYM_BENCH_VARIANT", "none")
LAYOUT = "cramped_room"


class EveryoneObserved(OvercookedEnv):
    """The kitchen with every seat's observation built at every step, whatever the runtime says
    (the ``none`` variant: what an env without ``set_observed_agents`` costs)."""

    def set_observed_agents(self, agents: frozenset[str]) -> None:
        pass


def make_env(**kwargs: object) -> OvercookedEnv:
    if VARIANT == "none":
        return EveryoneObserved(**kwargs)  # type: ignore[arg-type]
    return OvercookedEnv(**kwargs)  # type: ignore[arg-type]


if VARIANT not in ("none", "observed", "pool"):
    raise ValueError(f"IGYM_BENCH_VARIANT must be none, observed or pool; got {VARIANT!r}")

WIDTH, HEIGHT = canvas_size(LAYOUT)
game = GymScene(
    scene_id="overcooked",
    env_factory=make_env,
    env_kwargs={"layout": LAYOUT, "max_steps": STEPS, "fps": FPS},
    action_mapping=KEYS,
    default_action=NOOP,
    fps=FPS,
    num_episodes=1,
    max_steps=STEPS,
    countdown_s=0,
    canvas_width=WIDTH,
    canvas_height=HEIGHT,
    background=BACKGROUND,
    human_seat="chef_0",
    policies={"chef_1": PlannerPolicy},
    render_fn=draw_you_chef_0,
    ready_timeout_s=120,
    **({"runtime_options": {"step_in_worker": True}} if VARIANT == "pool" else {}),
)

experiment = Experiment(
    experiment_id="bench_cogrid_games",
    seed=1,
    scenes=(game, EndScene(scene_id="end")),
)
