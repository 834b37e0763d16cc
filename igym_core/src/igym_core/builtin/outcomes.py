"""Core's outcomes (``Participant.outcome``), declared like any plugin's (see docs/recruitment.md).

Each says which platform outcome it is reported as and, where ``igym check`` should look for it,
which scenes can end a participant's study with it.
"""

from __future__ import annotations

from igym_core.builtin.scene_gym import GymScene
from igym_core.builtin.scene_screening import ScreeningScene
from igym_core.plugins.markers import hookimpl
from igym_core.recruitment import Outcome
from igym_core.scenes.interface import SceneConfig


def _screens(scene: SceneConfig) -> str | None:
    return "screens participants out" if isinstance(scene, ScreeningScene) else None


def _browser_game(scene: SceneConfig) -> str | None:
    if isinstance(scene, GymScene) and scene.runtime != "server":
        return f"runs its game in the browser (runtime {scene.runtime!r}), which may fail to load"
    return None


def _waiting_room(scene: SceneConfig) -> str | None:
    return "has a waiting room" if isinstance(scene, GymScene) and len(scene.human_seats) > 1 else None


def _partner_left(scene: SceneConfig) -> str | None:
    if isinstance(scene, GymScene) and len(scene.human_seats) > 1 and scene.on_partner_left == "end":
        return "ends when a partner leaves"
    return None


def _slow_connection(scene: SceneConfig) -> str | None:
    if isinstance(scene, GymScene) and scene.slow_connection is not None:
        return "ends a game on a slow connection"
    return None


CORE_OUTCOMES: tuple[Outcome, ...] = (
    Outcome(name="completed", platform="completed", meaning="Reached the end scene the ordinary way."),
    Outcome(
        name="screened_out",
        platform="screened_out",
        meaning="An entry screening (ScreeningScene) excluded them.",
        reached_in=_screens,
    ),
    Outcome(
        name="runtime_load_failed",
        platform="screened_out",
        meaning="Their browser could not load a browser-run game: a technical exclusion, like screening.",
        reached_in=_browser_game,
    ),
    Outcome(
        name="waiting_timeout",
        platform="no_partner",
        meaning="A waiting room timed out before a game of several people could start.",
        reached_in=_waiting_room,
    ),
    Outcome(
        name="partner_left",
        platform="partner_left",
        meaning="A partner left their game and the scene ended it (on_partner_left='end').",
        reached_in=_partner_left,
    ),
    Outcome(
        name="game_abandoned",
        platform="timed_out",
        meaning="Nobody played their game for the scene's abandon_after_s: the participant went away.",
    ),
    Outcome(
        name="slow_connection",
        platform="timed_out",
        meaning="The scene's slow-connection rule ended their game (GymScene(slow_connection=...)).",
        reached_in=_slow_connection,
    ),
    # The platform outcomes themselves, for a plugin that reports one directly.
    Outcome(name="no_partner", platform="no_partner", meaning="No partner could be found for them."),
    Outcome(name="timed_out", platform="timed_out", meaning="They ran out of time or went away."),
)


@hookimpl
def igym_register_outcomes() -> list[Outcome]:
    return list(CORE_OUTCOMES)
