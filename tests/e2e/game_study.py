"""A short game study for browser tests: the demo's MountainCar, two quick rounds, then a page.

The header holds a text box, to check that typing into it never moves the car.

``long_rounds`` is the same study with rounds that outlast any test (50 minutes each): a test that
checks the page's input step by step (screenshots included, which take 10 s and more on a loaded
machine) plays in it, so the game cannot end under it while a check waits for the next frame.
"""

from __future__ import annotations

import attrs

from igym_core import EndScene, Experiment, GymScene, SlowConnection, StaticScene
from igym_core.examples.mountain_car import HEIGHT, WIDTH, draw, hud, make_env

experiment = Experiment(
    experiment_id="game_e2e",
    seed=3,
    scenes=(
        StaticScene(scene_id="intro", title="Ready?", body="Press continue to play."),
        GymScene(
            scene_id="car",
            env_factory=make_env,
            render_fn=draw,
            hud=hud,
            # Both arrows at once is an explicit combination: no push, but recorded as the player's.
            action_mapping={"ArrowLeft": 0, "ArrowRight": 2, "ArrowLeft+ArrowRight": 1},
            default_action=1,
            fps=30,
            num_episodes=2,
            max_steps=150,
            countdown_s=1,
            canvas_width=WIDTH,
            canvas_height=HEIGHT,
            background="#0c4a6e",
            header_html='<p>Notes: <input id="notes" aria-label="Notes" type="text"></p>',
            footer_html="<p>Footer text</p>",
        ),
        StaticScene(scene_id="after", title="Thanks", body="The game is over."),
        EndScene(scene_id="end"),
    ),
)

#: The same game with 50-minute rounds (90,000 steps at 30 fps): it never ends within a test.
long_rounds = attrs.evolve(
    experiment,
    experiment_id="game_e2e_long",
    scenes=tuple(
        attrs.evolve(scene, max_steps=90_000) if isinstance(scene, GymScene) else scene
        for scene in experiment.scenes
    ),
)

#: Long rounds with a round-trip probe every 0.5 s, a connection row every second, and a
#: slow-connection rule that warns after 1 s over 600 ms (and would end the game only after 60 s
#: more): for tests of what the page says of its own wait (``rtt_echo.page_delay_ms``).
probed = attrs.evolve(
    long_rounds,
    experiment_id="game_e2e_probed",
    scenes=tuple(
        attrs.evolve(
            scene,
            rtt_interval_s=0.5,
            connection_report_s=1.0,
            slow_connection=SlowConnection(max_rtt_ms=600, warn_after_s=1, end_after_s=60),
        )
        if isinstance(scene, GymScene)
        else scene
        for scene in long_rounds.scenes
    ),
)
