"""Slime Volleyball for the latency browser test: the participant (left) against a slime that stands
still, one long game straight away (no consent page), then the end."""

from __future__ import annotations

from typing import Any

from igym_core import EndScene, Experiment, GymScene
from igym_slime.env import make_env
from igym_slime.render import HEIGHT, SKY, WIDTH, draw

ACTION_MAPPING = {"ArrowLeft": 1, "ArrowRight": 2, "ArrowUp": 3}


def stand_still(observation: Any) -> int:
    return 0


experiment = Experiment(
    experiment_id="latency_e2e",
    seed=5,
    scenes=(
        GymScene(
            scene_id="slime",
            env_factory=make_env,
            env_kwargs={"lives": 50, "max_steps": 6000},
            human_seat="left",
            policies={"right": stand_still},
            render_fn=draw,
            action_mapping=ACTION_MAPPING,
            default_action=0,
            fps=30,
            num_episodes=1,
            countdown_s=1,
            canvas_width=WIDTH,
            canvas_height=HEIGHT,
            background=SKY,
        ),
        EndScene(scene_id="end"),
    ),
)
