"""The HUD of a game against the computer: ``Game 2 of 5 · You 3 – 1 Computer``.

In a module of its own that imports nothing, so that a game run in the participant's browser
(``runtime="pyodide"``) can import it there as well.
"""

from __future__ import annotations

from typing import Any

__all__ = ["vs_computer"]


def vs_computer(view: Any) -> str:
    """``Game 2 of 5 · You 3 – 1 Computer`` (points won this game), for the player's seat."""
    env = view.env
    mine = 0 if view.seat == "left" else 1
    won = env.lives_per_episode - env.lives[1 - mine]
    lost = env.lives_per_episode - env.lives[mine]
    return f"Game {view.episode} of {view.num_episodes} · You {won} – {lost} Computer"
