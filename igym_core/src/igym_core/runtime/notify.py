"""What a runtime's game tells plugins and the researcher's scene callbacks, failure-proof.

A game announces its life (started, episode started/ended, ended) to every plugin through the
``igym_on_*`` hooks and to the scene's ``on_episode_start`` / ``on_episode_end`` / ``on_game_end``
callbacks. Neither may end anyone's game: a failing hook or callback is logged with the game's id
and the game goes on. Every runtime uses these two functions, so that they all behave alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog

__all__ = ["call_scene_callback", "notify_plugins"]

log = structlog.get_logger(__name__)


def notify_plugins(plugins: Any, method: str, game_id: str, *args: Any) -> None:
    """``plugins.<method>(*args)`` (a notification of the plugin manager's facade), logged if it fails."""
    try:
        getattr(plugins, method)(*args)
    except Exception:
        log.exception("game_hook_failed", game_id=game_id, hook=method)


def call_scene_callback(
    callbacks: Mapping[str, Callable[..., Any] | None], name: str, game_id: str, *args: Any
) -> None:
    """The scene's callback ``name`` (if it has one) with ``args``, logged if it fails."""
    callback = callbacks.get(name)
    if callback is None:
        return
    try:
        callback(*args)
    except Exception:
        log.exception("scene_callback_failed", game_id=game_id, callback=name)
