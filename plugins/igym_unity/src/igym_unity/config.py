"""``UnityScene``: a Unity WebGL build played as one scene of a study.

::

    UnityScene(
        scene_id="maze",
        build_dir="builds/maze",            # the WebGL export (its Build folder, or the folder above)
        num_episodes=3,                     # the scene ends after 3 episodes the game reported ended
        load_timeout_s=120,                 # the build must load within 2 minutes ...
        timeout_s=900,                      # ... and the scene ends after 15 minutes of play at most
        on_failure="skip",                  # either way out: on to failure_scene (or the next scene)
        failure_scene="survey",
        send_message_object="GameManager",  # at each episode start igym calls
        send_message_method="Configure",    #   SendMessage("GameManager", "Configure", json)
        on_episode_start="my_study.unity:condition_for",  # (game, episode) -> a JSON value
        score_episode="my_study.unity:score_maze",  # (EpisodeEvents) -> {"score": .., "bonus": ..}
        min_width_px=1024, min_height_px=700,
    )

The participant's outcome when the build could not be loaded in time or failed to load is
``unity_load_failed``, and ``unity_timeout`` when ``timeout_s`` ran out: an ``EndScene``'s
``codes_by_outcome`` gives either a code of its own (with ``on_failure="end"`` they go straight to the
study's end scene).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

from igym_core.config.validators import FieldError, one_of
from igym_core.recruitment import Outcome
from igym_core.scenes.interface import PrepareContext, SceneConfig

if TYPE_CHECKING:
    from cattrs import Converter

__all__ = ["LOAD_FAILED_OUTCOME", "TIMEOUT_OUTCOME", "UNITY_OUTCOMES", "UnityScene"]

#: The participant's outcome when the build did not load (failed, or not within ``load_timeout_s``).
LOAD_FAILED_OUTCOME = "unity_load_failed"
#: The participant's outcome when ``timeout_s`` ended the scene before its episodes were played.
TIMEOUT_OUTCOME = "unity_timeout"

_CALLBACKS = ("on_episode_start", "score_episode")


def score_values(scene_id: str, score: float, bonus: float) -> dict[str, float]:
    """The participant's values a Unity scene with ``score_episode`` sets: ``<scene_id>_score``
    and ``<scene_id>_bonus``."""
    return {f"{scene_id}_score": score, f"{scene_id}_bonus": bonus}


def _number(low: float, high: float, *, optional: bool = False) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value is None and optional:
            return
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            raise FieldError(attribute.name, f"expected a number from {low:g} to {high:g}; got {value!r}.")

    return check


def _whole(low: int, high: int) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise FieldError(attribute.name, f"expected a whole number from {low} to {high}; got {value!r}.")

    return check


def _unity_name(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A GameObject or method name for ``SendMessage`` (letters, digits, ``_``, ``/``, ``-``, space)."""
    if value is None:
        return
    if not isinstance(value, str) or not 0 < len(value) <= 200 or not value.strip():
        raise FieldError(attribute.name, f"expected the name of a GameObject or method; got {value!r}.")


def _callable_or_ref(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None or callable(value) or (isinstance(value, str) and ":" in value):
        return
    raise FieldError(
        attribute.name,
        f"expected a function or a 'module:function' string; got {value!r}. Example: "
        "'my_study.unity:condition_for'.",
    )


@attrs.frozen(kw_only=True)
class UnityScene(SceneConfig):
    """A Unity WebGL build as a scene: igym serves the build, counts its episodes and records every
    bridge event (see docs/unity.md)."""

    kind: ClassVar[str] = "unity"

    build_dir: str = attrs.field()
    """The build's folder, relative to the experiment file's folder (or absolute): the folder with
    the ``*.loader.js``, or the WebGL export folder that holds it in ``Build/``."""
    num_episodes: int = attrs.field(default=1, validator=_whole(1, 10_000))
    """The scene ends once the game has reported this many episodes ended (``Igym.EpisodeEnded``),
    or earlier when an ``EpisodeEnded`` payload says ``"done": true``."""
    title: str = ""
    """A heading above the game (none by default)."""
    width_px: int = attrs.field(default=960, validator=_whole(100, 8192))
    """The game canvas's width; it shrinks to fit a smaller window, keeping its aspect ratio."""
    height_px: int = attrs.field(default=600, validator=_whole(100, 8192))
    """The game canvas's height."""
    min_width_px: int = attrs.field(default=0, validator=_whole(0, 8192))
    """The browser window must be at least this wide before the build loads (the page asks the
    participant to enlarge it and waits); 0: no minimum."""
    min_height_px: int = attrs.field(default=0, validator=_whole(0, 8192))
    """The browser window must be at least this high before the build loads; 0: no minimum."""
    load_timeout_s: float = attrs.field(default=120.0, validator=_number(5, 3600))
    """From the scene's start, how long the page may take to load the build (including waiting for
    a window large enough) before ``on_failure`` applies. A page that reports a failed load (no
    WebGL, a file that did not load, ``createUnityInstance`` rejected) gets the same rule at once."""
    timeout_s: float | None = attrs.field(default=None, validator=_number(1, 86_400, optional=True))
    """Once loaded, the longest the scene may last; then ``on_failure`` applies with the outcome
    ``unity_timeout``. None: no limit."""
    on_failure: Literal["skip", "end"] = attrs.field(default="skip", validator=one_of("skip", "end"))
    """Where a participant whose build could not load, or whose ``timeout_s`` ran out, goes:
    ``skip`` to ``failure_scene`` (or the next scene); ``end`` to the study's end scene."""
    failure_scene: str | None = None
    """With ``on_failure="skip"``: a later scene to go to; None: the next scene."""
    failure_message: str = "The game could not be loaded in this browser."
    """Shown on the page when the build failed to load or took too long, with the way out."""
    send_message_object: str | None = attrs.field(default=None, validator=_unity_name)
    """The GameObject that receives ``on_episode_start``'s value through ``SendMessage``."""
    send_message_method: str | None = attrs.field(default=None, validator=_unity_name)
    """The method of ``send_message_object`` that receives it (one string argument: the value as JSON)."""
    on_episode_start: Any = attrs.field(default=None, validator=_callable_or_ref)
    """``(game: GameInfo, episode: int) -> JSON value``: called on the server when the game reports
    an episode started (``Igym.EpisodeStarted``); the value goes to the game as JSON through
    ``SendMessage(send_message_object, send_message_method, json)``. Return None to send nothing."""
    score_episode: Any = attrs.field(default=None, validator=_callable_or_ref)
    """``(episode: EpisodeEvents) -> {"score": number, "bonus": number, ...} | None``: called on the
    server when the game reports an episode ended, with the server's copies of the episode's bridge
    events (``igym_unity.scoring``). Its ``score`` replaces the ``score`` of the game's
    ``EpisodeEnded`` payload, which is then ignored; its ``bonus`` and other keys are recorded in the
    episode's row, and the scene's totals become the participant's values ``<scene_id>_score`` and
    ``<scene_id>_bonus``. A callback that raises or returns a wrong type scores the episode 0 and
    the error is recorded (``score_error``); the game goes on. None: the game's claimed scores count."""
    max_payload_bytes: int = attrs.field(default=8192, validator=_whole(2, 1_000_000))
    """A bridge payload (the JSON text the game passes to ``Igym.*``) longer than this (UTF-8 bytes)
    is refused and the refusal recorded."""
    max_events_per_s: float = attrs.field(default=20.0, validator=_number(0.1, 1000))
    """Bridge events a page may send per second (a burst of 2 s worth is allowed); more are refused."""
    max_events: int = attrs.field(default=20_000, validator=_whole(10, 10_000_000))
    """Bridge events one game may record in all; later ones are refused."""
    abandon_after_s: float = attrs.field(default=600.0, validator=_number(10, 86_400))
    """A game whose participant has had no page open this long ends ``abandoned`` (they move on to
    the next scene if they come back)."""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.build_dir, str) or not self.build_dir.strip():
            raise FieldError(
                "build_dir", f"expected the path of a WebGL build folder; got {self.build_dir!r}."
            )
        if (self.send_message_object is None) != (self.send_message_method is None):
            raise FieldError(
                "send_message_method" if self.send_message_method is None else "send_message_object",
                "send_message_object and send_message_method go together: give both (the GameObject "
                "and its method that receive on_episode_start's value) or neither.",
            )
        if self.on_episode_start is not None and self.send_message_object is None:
            raise FieldError(
                "on_episode_start",
                "its value is sent with SendMessage, so the scene needs send_message_object and "
                "send_message_method (the GameObject and method that receive it).",
            )
        if self.failure_scene is not None and self.on_failure != "skip":
            raise FieldError(
                "failure_scene",
                f"is {self.failure_scene!r}, but on_failure is {self.on_failure!r}; a scene to skip to "
                "applies only with on_failure='skip'.",
            )

    @classmethod
    def configure_converter(cls, converter: Converter) -> None:
        """The scene as data that loads back into an equal scene: callbacks by import path."""
        from cattrs.gen import make_dict_structure_fn

        from igym_core.envs import callable_data, not_loadable_problem

        def unstructure(scene: UnityScene) -> dict[str, Any]:
            data: dict[str, Any] = {"kind": cls.kind}
            for field in attrs.fields(type(scene)):
                value = getattr(scene, field.name)
                if field.name in _CALLBACKS and value is not None and callable(value):
                    value = callable_data(value)
                data[field.name] = value
            return data

        from_table = make_dict_structure_fn(UnityScene, converter, _cattrs_forbid_extra_keys=True)

        def structure(value: Any, _type: Any) -> UnityScene:
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if k != "kind"}
                for name in _CALLBACKS:
                    problem = not_loadable_problem(value.get(name))
                    if problem is not None:
                        raise FieldError(name, problem)
            return from_table(value, UnityScene)

        converter.register_unstructure_hook(UnityScene, unstructure)
        converter.register_structure_hook_func(lambda t: t is UnityScene, structure)

    def resolved_build_dir(self, base_dir: Path) -> Path:
        path = Path(self.build_dir)
        return path if path.is_absolute() else base_dir / path

    def participant_values(self) -> dict[str, Any]:
        # With score_episode the game's end gives <scene_id>_score and _bonus (summed over plays).
        return score_values(self.scene_id, 0.0, 0.0) if self.score_episode is not None else {}

    def scene_references(self) -> dict[str, str]:
        return {"failure_scene": self.failure_scene} if self.failure_scene else {}

    def game_runtime(self) -> str | None:
        return "unity"

    def prepare(self, ctx: PrepareContext) -> Any:
        from igym_unity.prepared import prepare_unity_scene

        return prepare_unity_scene(self, ctx)

    def client_view(self, converter: Converter, base_dir: Path) -> dict[str, Any]:
        """What the page needs: the build's URLs and the loading rules, never server-side fields."""
        from igym_unity.build import UnityBuildError, discover_build
        from igym_unity.serving import file_url, streaming_assets_url

        try:
            build = discover_build(self.resolved_build_dir(base_dir))
        except UnityBuildError:
            build = None  # prepare() reports it, under the scene's path
        return {
            "kind": self.kind,
            "scene_id": self.scene_id,
            "schema_version": 1,
            "title": self.title,
            "width_px": self.width_px,
            "height_px": self.height_px,
            "min_width_px": self.min_width_px,
            "min_height_px": self.min_height_px,
            "failure_message": self.failure_message,
            "way_out_label": "Continue" if self.on_failure == "skip" else "Finish the study",
            "max_payload_bytes": self.max_payload_bytes,
            "build": None
            if build is None
            else {
                "loader_url": file_url(self.scene_id, build.loader),
                "framework_url": file_url(self.scene_id, build.framework),
                "code_url": file_url(self.scene_id, build.code),
                "data_url": file_url(self.scene_id, build.data),
                "streaming_assets_url": streaming_assets_url(self.scene_id),
            },
        }


def _load_can_fail(scene: SceneConfig) -> str | None:
    return "plays a Unity build, which may fail to load" if isinstance(scene, UnityScene) else None


def _time_limited(scene: SceneConfig) -> str | None:
    if isinstance(scene, UnityScene) and scene.timeout_s is not None:
        return f"ends a Unity game after timeout_s={scene.timeout_s:g}"
    return None


UNITY_OUTCOMES: tuple[Outcome, ...] = (
    Outcome(
        name=LOAD_FAILED_OUTCOME,
        platform="screened_out",
        meaning="The Unity build could not load in their browser (failed, or not within load_timeout_s).",
        reached_in=_load_can_fail,
    ),
    Outcome(
        name=TIMEOUT_OUTCOME,
        platform="timed_out",
        meaning="A Unity scene's timeout_s ran out before its episodes were played.",
        reached_in=_time_limited,
    ),
)
"""The outcomes igym-unity ends studies with (registered by ``igym_register_outcomes``)."""
