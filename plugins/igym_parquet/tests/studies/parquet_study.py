"""A short study whose data goes to the parquet sink: consent, a survey, MountainCar, an end scene."""

from __future__ import annotations

from igym_core import EndScene, Experiment, GymScene, StartScene, SurveyScene, TextQuestion
from igym_core.builtin.questions import ChoiceQuestion
from igym_core.examples.mountain_car import draw, make_env
from igym_parquet import ParquetSinkConfig

experiment = Experiment(
    experiment_id="parquet_e2e",
    seed=5,
    sinks=(ParquetSinkConfig(flush_interval_s=0.5),),
    scenes=(
        StartScene(scene_id="consent", body="Agree?"),
        SurveyScene(
            scene_id="about",
            questions=(
                TextQuestion(id="nickname", prompt="Nickname?", max_length=20),
                ChoiceQuestion(id="hand", prompt="Hand", choices=("left", "right")),
            ),
        ),
        GymScene(
            scene_id="car",
            env_factory=make_env,
            render_fn=draw,
            action_mapping={"ArrowLeft": 0, "ArrowRight": 2},
            default_action=1,
            fps=30,
            num_episodes=1,
            max_steps=3000,
            countdown_s=0,
            record_observations=True,
        ),
        EndScene(scene_id="end"),
    ),
)
