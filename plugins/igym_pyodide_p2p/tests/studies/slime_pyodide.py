"""A short Slime Volleyball study whose game runs in the participant's browser (``runtime="pyodide"``).

Used by the plugin's tests: the server runtime's rules with short episodes, no countdown, and a
random bot, so that a test can play it from Python as a page would.
"""

from __future__ import annotations

import attrs

from igym_core import EndScene, Experiment, GymScene, StartScene
from igym_slime.examples.vs_ai import ACTION_MAPPING  # the arrow keys and their combinations

game = GymScene(
    scene_id="slime",
    runtime="pyodide",
    env_factory="igym_slime.env:make_env",
    env_kwargs={"lives": 2, "max_steps": 90},
    human_seat="left",
    policies={"right": "random"},
    render_fn="igym_slime.render:draw",
    action_mapping=ACTION_MAPPING,
    default_action=0,
    fps=30,
    num_episodes=2,
    max_steps=90,
    countdown_s=0,
    abandon_after_s=3,
    # Each batch acknowledged at once: the tests' pages wait for each acknowledgement (the default,
    # one acknowledgement a second covering several batches, has its own test).
    runtime_options={"ack_interval_ms": 0},
)

experiment = Experiment(
    experiment_id="slime_pyodide",
    seed=7,
    scenes=[
        StartScene(scene_id="welcome", title="Welcome", body="A short game."),
        game,
        EndScene(
            scene_id="end",
            completion_code="DONE1",
            codes_by_outcome={"runtime_load_failed": "NOLOAD", "episodes_cut_short": "CUT1"},
        ),
    ],
)


def _with_options() -> Experiment:
    """The game with the pyodide runtime's options from ``IGYM_TEST_PYODIDE_OPTIONS`` (JSON), and two
    pages between the game and the end (to tell "the next scene" from "a named one" and "the end")."""
    import json
    import os

    import attrs

    from igym_core import StaticScene

    options = json.loads(os.environ.get("IGYM_TEST_PYODIDE_OPTIONS", "{}"))
    return Experiment(
        experiment_id="slime_pyodide",
        seed=7,
        scenes=[
            StartScene(scene_id="welcome", title="Welcome", body="A short game."),
            attrs.evolve(game, runtime_options=options),
            StaticScene(scene_id="after_game", title="Thanks", body="Next: a few questions."),
            StaticScene(scene_id="questions", title="Questions", body="A page."),
            EndScene(
                scene_id="end", completion_code="DONE1", codes_by_outcome={"runtime_load_failed": "NOLOAD"}
            ),
        ],
    )


#: ``IGYM_TEST_PYODIDE_OPTIONS='{"on_reload": "next"}' igym run …/slime_pyodide.py:with_options``
with_options = _with_options()


#: The game with a 1.5 s countdown before each episode.
with_countdown = Experiment(
    experiment_id="slime_pyodide",
    seed=7,
    scenes=[
        StartScene(scene_id="welcome", title="Welcome", body="A short game."),
        attrs.evolve(game, countdown_s=1.5),
        EndScene(scene_id="end", completion_code="DONE1"),
    ],
)


#: Two people in one browser-run game: ``igym check`` refuses it (the pyodide runtime plays one).
two_humans = Experiment(
    experiment_id="slime_pyodide_two",
    seed=7,
    scenes=[
        GymScene(
            scene_id="slime_two",
            runtime="pyodide",
            env_factory="igym_slime.env:make_env",
            human_seats=("left", "right"),
            render_fn="igym_slime.render:draw",
            action_mapping=ACTION_MAPPING,
            default_action=0,
        ),
        EndScene(scene_id="end"),
    ],
)


#: The game with five episodes (a test that ends episodes early has enough of them).
five_episodes = Experiment(
    experiment_id="slime_pyodide",
    seed=7,
    scenes=[
        StartScene(scene_id="welcome", title="Welcome", body="A short game."),
        attrs.evolve(game, num_episodes=5),
        EndScene(scene_id="end", completion_code="DONE1"),
    ],
)


def _monitored(slow_connection: object = None) -> Experiment:
    """The game with probes every 0.1 s, a ``connection_stats`` row every half second and, if given,
    a slow-connection rule (the monitoring tests answer the round-trip probes on time, or late)."""
    from igym_core import StaticScene

    return Experiment(
        experiment_id="slime_pyodide",
        seed=7,
        scenes=[
            StartScene(scene_id="welcome", title="Welcome", body="A short game."),
            attrs.evolve(
                game,
                num_episodes=1,
                rtt_interval_s=0.1,
                connection_report_s=0.5,
                slow_connection=slow_connection,
            ),
            StaticScene(scene_id="after_game", title="Thanks", body="Next: the end."),
            EndScene(scene_id="end", completion_code="DONE1"),
        ],
    )


def _slow_rule() -> Experiment:
    from igym_core import SlowConnection

    return _monitored(SlowConnection(max_rtt_ms=300, warn_after_s=0.4, end_after_s=0.4))


#: Probes every 0.1 s and a ``connection_stats`` row every 0.5 s, no slow-connection rule.
monitored = _monitored()
#: The same with a slow-connection rule (300 ms for 0.4 s warns, 0.4 s more ends).
slow_rule = _slow_rule()
