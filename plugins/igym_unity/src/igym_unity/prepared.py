"""A ``UnityScene`` checked at start: its build found, its callback imported (``PreparedUnity``).

The core reads a game scene only through :class:`~igym_core.runtime.interface.PreparedGame`; a Unity
scene is a one-person game with no env, so the env-side fields say so (no seats for bots, no frames).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from igym_core.envs import derive_seed, resolve_callable
from igym_core.errors import ConfigError, IgymError
from igym_core.scenes.interface import PrepareContext
from igym_unity.build import UnityBuild, UnityBuildError, discover_build
from igym_unity.scoring import check_score_callback

__all__ = ["HUMAN_SEAT", "PreparedUnity", "prepare_unity_scene"]

#: The one seat of a Unity game (its ``seat`` in ``game_status`` and records).
HUMAN_SEAT = "player"


@attrs.frozen(kw_only=True)
class _NoWaitingRoom:
    """A Unity scene seats its one participant at once: the waiting-room rules never apply."""

    message: str = ""
    show_count: bool = False
    timeout_s: float = 1.0
    on_timeout: str = "continue"
    timeout_scene: str | None = None
    timeout_redirect_url: str | None = None

    def timeout_text(self) -> str:
        return ""


@attrs.frozen(kw_only=True)
class PreparedUnity:
    """What the core and the ``unity`` runtime read of a Unity scene (a ``PreparedGame``)."""

    scene_id: str
    scene: Any
    """The ``UnityScene``."""
    build: UnityBuild
    on_episode_start: Callable[..., Any] | None
    score_episode: Callable[..., Any] | None = None
    runtime: str = "unity"
    runtime_options: Mapping[str, Any] = attrs.field(factory=dict)
    human_seats: tuple[str, ...] = (HUMAN_SEAT,)
    bot_seats: Mapping[str, str] = attrs.field(factory=dict)
    partner_description: str | None = None
    num_episodes: int = 1
    on_restart: str = "resume"
    on_abandon: str = "continue"
    abandon_message: str = ""
    same_group_as: str | None = None
    same_group_fallback: str = "rematch"
    matchmaker: str = "fifo"
    waiting_room: _NoWaitingRoom = attrs.field(factory=_NoWaitingRoom)
    reconnect_grace_s: float = 0.0
    fps: int = 0
    max_steps: int | None = None
    countdown_s: float = 0.0
    input_mode: str = "press"
    action_table: Any = None

    def episode_seed(self, instance: int, participant_ids: Sequence[str], episode: int) -> int:
        return derive_seed("unity_episode", self.scene_id, instance, *participant_ids, episode)

    def make_env(self) -> tuple[Any, Any]:
        raise IgymError("A Unity scene has no Python environment: the game runs in the browser.")

    def make_renderer(self) -> Any:
        raise IgymError("A Unity scene has no renderer: the build draws its own canvas.")

    def load_policy(self, name: str, env: Any) -> Any:
        raise IgymError("A Unity scene has no bot seats.")

    def load_partner_policy(self, name: str, env: Any) -> Any:
        raise IgymError("A Unity scene has no partner bot.")


def prepare_unity_scene(scene: Any, ctx: PrepareContext) -> PreparedUnity:
    """Find the scene's build and import its callback; every problem is a ``ConfigError`` line."""
    problems: list[str] = []
    build = None
    try:
        build = discover_build(scene.resolved_build_dir(ctx.base_dir))
    except UnityBuildError as exc:
        problems.extend(f"$.build_dir: {problem}" for problem in exc.problems)
    callback = None
    if scene.on_episode_start is not None:
        try:
            callback = resolve_callable(
                scene.on_episode_start, what="$.on_episode_start", base_dir=ctx.base_dir
            )
        except IgymError as exc:
            problems.append(str(exc))
    scorer = None
    if scene.score_episode is not None:
        try:
            scorer = resolve_callable(scene.score_episode, what="$.score_episode", base_dir=ctx.base_dir)
        except IgymError as exc:
            problems.append(str(exc))
        else:
            problem = check_score_callback(scorer)
            if problem is not None:
                problems.append(f"$.score_episode: {problem}")
    if problems or build is None:
        raise ConfigError(problems, title="The Unity scene cannot be served")
    return PreparedUnity(
        scene_id=scene.scene_id,
        scene=scene,
        build=build,
        on_episode_start=callback,
        score_episode=scorer,
        num_episodes=scene.num_episodes,
    )
