"""What the browser tests read of a game page: the client's game state, a wait for a phase, and
the objects it draws (`window.igym`, the test hooks of `frontend/src`)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from tests.e2e.test_survey_browser import poll, state


def game(page: Page) -> dict[str, Any]:
    """The page's game state now (``{}`` outside a game scene)."""
    return (state(page) or {}).get("game") or {}


def wait_phase(page: Page, *phases: str, timeout_s: float = 20) -> dict[str, Any]:
    """Wait until the game is in one of ``phases``; its state then."""
    return poll(
        lambda: game(page).get("phase") in phases and game(page),
        page=page,
        timeout_s=timeout_s,
        what=f"game phase {phases} (now {game(page)})",
    )


def objects(page: Page) -> dict[str, Any]:
    """The objects the page draws now, by id."""
    return page.evaluate("() => window.igym.gameObjects()")
