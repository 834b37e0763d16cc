"""The HUDs of Slime Volleyball: against the computer (``Game 2 of 5 · You 3 – 1 Computer``) and
against another participant (``Game 1 of 3 · You (orange, left) 2 – 1 Partner``).

In a module of its own that imports nothing, so that a game run in the participant's browser
(``runtime="pyodide"``) can import it there as well.
"""

from __future__ import annotations

from typing import Any

__all__ = ["vs_computer", "vs_partner"]


def vs_computer(view: Any) -> str:
    """``Game 2 of 5 · You 3 – 1 Computer`` (points won this game), for the player's seat."""
    env = view.env
    mine = 0 if view.seat == "left" else 1
    won = env.lives_per_episode - env.lives[1 - mine]
    lost = env.lives_per_episode - env.lives[mine]
    return f"Game {view.episode} of {view.num_episodes} · You {won} – {lost} Computer"


def vs_partner(view: Any) -> str:
    """``Game 1 of 3 · You (orange, left) 2 – 1 Partner``: each player sees their own side first."""
    env = view.env
    left = env.lives_per_episode - env.lives[1]
    right = env.lives_per_episode - env.lives[0]
    if view.seat == "right":
        return f"Game {view.episode} of {view.num_episodes} · You (green, right) {right} – {left} Partner"
    return f"Game {view.episode} of {view.num_episodes} · You (orange, left) {left} – {right} Partner"
