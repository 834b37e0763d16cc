"""Studies for the admin dashboard's tests (tests/test_admin*.py, tests/e2e/test_admin_browser.py).

``pages``: two pages of text, then the end. ``game``: a long single-player game (a counter at
30 fps, 1,000 steps an episode) before the end, for ending a game from the dashboard.
"""

from __future__ import annotations

from igym_core import EndScene, Experiment, GymScene, StaticScene
from tests.studies.short_game import Counter

pages = Experiment(
    experiment_id="admin_pages",
    seed=3,
    scenes=(
        StaticScene(scene_id="intro", title="Welcome", body="The first page."),
        StaticScene(scene_id="middle", title="Halfway", body="The second page."),
        EndScene(scene_id="end", completion_code="auto"),
    ),
)

game = Experiment(
    experiment_id="admin_game",
    seed=4,
    scenes=(
        GymScene(
            scene_id="count",
            env_factory=Counter,
            action_mapping={"a": 1},
            default_action=0,
            fps=30,
            num_episodes=1,
            max_steps=1000,
            countdown_s=0,
            partner_left_message="The game was ended for you.",
        ),
        EndScene(scene_id="end", completion_code="auto"),
    ),
)
