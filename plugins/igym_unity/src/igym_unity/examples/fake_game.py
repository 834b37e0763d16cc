"""A Unity scene in a study, with igym's fake Unity build (``fake_build/``) standing in for a game.

Serve it with ``igym run igym_unity.examples.fake_game:experiment``. The participant reads a short
introduction, plays three episodes of the (fake) game, whose bridge calls are recorded in
``unity_events``, and gets a completion code; a browser that cannot load the game is sent on with
the outcome ``unity_load_failed`` and a code of its own. Replace ``build_dir`` with your own WebGL
export (see docs/unity.md), ``condition_for`` with what your game should receive at each
episode start, and ``score_from_events`` with your scoring rule.

The fake build is written from igym-unity's sources into your cache folder
(``~/.cache/igym/unity-fake-build/<digest>``) when this file is loaded
(:func:`igym_unity.testing.example_build_dir`); for your study, ``build_dir`` is your export folder.
"""

from __future__ import annotations

from typing import Any

from igym_core import EndScene, Experiment, StaticScene
from igym_unity import EpisodeEvents, UnityScene
from igym_unity.testing import example_build_dir


def condition_for(game: Any, episode: int) -> dict[str, Any]:
    """What the game receives at each episode start (through SendMessage as JSON)."""
    return {"episode": episode, "difficulty": min(episode, 3), "partner": 'Ana "the quick" 🐇'}


def score_from_events(episode: EpisodeEvents) -> dict[str, Any]:
    """The episode's score, computed on the server from the events it recorded: one point per
    ``Igym.Log`` call, and a bonus of 0.05 per point. The ``score`` the game claims in its
    ``EpisodeEnded`` payload is ignored."""
    points = sum(1 for event in episode.events if event.event == "log")
    return {"score": points, "bonus": round(0.05 * points, 2), "seconds": episode.duration_ms / 1000}


experiment = Experiment(
    experiment_id="unity_fake_game",
    title="A Unity game",
    seed=2026,
    url_params=("PROLIFIC_PID", "STUDY_ID", "SESSION_ID"),
    scenes=(
        StaticScene(
            scene_id="intro",
            title="A short game",
            body="You will play three short rounds of a game. It loads in your browser.",
        ),
        UnityScene(
            scene_id="game",
            build_dir=str(example_build_dir()),  # your study: your WebGL export, e.g. "builds/maze"
            num_episodes=3,
            title="The game",
            load_timeout_s=60,
            timeout_s=600,
            min_width_px=800,
            min_height_px=500,
            send_message_object="GameManager",
            send_message_method="Configure",
            on_episode_start=condition_for,
            score_episode=score_from_events,
        ),
        EndScene(
            scene_id="end",
            completion_code="auto",
            codes_by_outcome={"unity_load_failed": "NOUNITY1", "unity_timeout": "LATEUNITY"},
        ),
    ),
)
