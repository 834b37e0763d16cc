"""The ``pyodide`` runtime's scene options: ``GymScene(runtime="pyodide", runtime_options={...})``.

::

    GymScene(
        scene_id="slime", runtime="pyodide", ...,
        runtime_options={
            "load_timeout_s": 90,              # Pyodide + packages + env must load within this
            "on_load_timeout": "skip",         # ... else skip the game ("skip") or end the study ("end")
            "load_timeout_scene": "survey_2",  # skip: to this later scene (default: the next one)
            "on_reload": "restart",            # a reload mid-episode: play it again with its seed,
                                               # or go on to the next episode ("next")
            "hash_every_steps": 30,            # the page hashes the env's state every 30 steps
        },
    )

A participant whose game could not load is marked with the outcome ``runtime_load_failed``: an
``EndScene(codes_by_outcome={"runtime_load_failed": "C1234"})`` gives them a code of its own (with
``on_load_timeout="end"`` they go straight to the study's end scene).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import attrs

from igym_core.config.validators import FieldError, one_of

__all__ = ["LOAD_FAILED_OUTCOME", "PyodideOptions", "between", "options_from_mapping", "whole"]

T = TypeVar("T")

#: The participant's outcome (``finished`` record, ``EndScene.codes_by_outcome``) when their game's
#: runtime did not load in time or failed to load.
LOAD_FAILED_OUTCOME = "runtime_load_failed"


def between(low: float, high: float) -> Any:
    """An attrs validator: a number (not a bool) from ``low`` to ``high`` (both runtimes' options)."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise FieldError(attribute.name, f"expected a number from {low:g} to {high:g}; got {value!r}.")

    return check


def whole(low: int, high: int) -> Any:
    """An attrs validator: a whole number (not a bool) from ``low`` to ``high``."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise FieldError(attribute.name, f"expected a whole number from {low} to {high}; got {value!r}.")

    return check


@attrs.frozen(kw_only=True)
class PyodideOptions:
    """How a game runs in the participant's browser, and what the server accepts from it."""

    load_timeout_s: float = attrs.field(default=120.0, validator=between(5, 3600))
    """From the game's start, how long the page may take to load Pyodide, the packages, the env and
    the bots' models (``runtime_loaded``) before the timeout rule applies. A page that reports a
    failed load (``runtime_load_failed``) gets the same rule at once, and so does a connected page
    that sends no steps of its episode for this long (the episode ends ``stalled``)."""
    on_load_timeout: Literal["skip", "end"] = attrs.field(default="skip", validator=one_of("skip", "end"))
    """``skip``: the participant moves on to ``load_timeout_scene`` (or the next scene); ``end``: to
    the study's last scene (its end scene). Either way their outcome is ``runtime_load_failed``."""
    load_timeout_scene: str | None = None
    """With ``skip``: the scene to go to (a later scene of the participant's sequence); None: the next."""
    on_reload: Literal["restart", "next"] = attrs.field(
        default="restart", validator=one_of("restart", "next")
    )
    """A reload (or a new page) in the middle of an episode records it ``interrupted``; then
    ``restart`` plays the same episode again with the same seed, ``next`` goes on to the next one
    (the interrupted episode counts as played)."""
    hash_every_steps: int = attrs.field(default=30, validator=whole(1, 100_000))
    """The page hashes the env's full state every this many steps (``state_hashes`` records, checked
    by ``igym verify``)."""
    batch_interval_ms: int = attrs.field(default=500, validator=whole(50, 1000))
    """How often the page sends its step records (and at each episode's end). At most 1000: a closed
    tab loses at most this much."""
    ack_interval_ms: int = attrs.field(default=1000, validator=whole(0, 5000))
    """A game acknowledges stored batches at most this often: a batch stored within this time of the
    game's last ``batch_ack`` is acknowledged by the next one, which covers every batch up to its
    number (an identical re-send and an episode's last batch are acknowledged at once; 0: every batch
    at once). Fewer socket writes for the server; the page keeps a batch until it is acknowledged."""
    max_batch_steps: int = attrs.field(default=240, validator=whole(1, 10_000))
    """A batch with more steps is refused (``bad_batch``)."""
    max_batch_bytes: int = attrs.field(default=48 * 1024, validator=whole(1024, 16 * 1024 * 1024))
    """A batch message larger than this (msgpack bytes) is refused. The server's
    ``IGYM_MAX_MESSAGE_BYTES`` (64 KiB by default) closes the socket on anything larger still."""
    max_info_bytes: int = attrs.field(default=1024, validator=whole(0, 1024 * 1024))
    """A step whose ``infos`` for one agent take more than this (as JSON) is refused."""
    future_tolerance_s: float = attrs.field(default=2.0, validator=between(0, 60))
    """A batch claiming a step further into the episode than its elapsed time at the scene's fps
    allows, plus this much, is refused (steps from the future are made up)."""

    def __attrs_post_init__(self) -> None:
        if self.load_timeout_scene is not None and self.on_load_timeout != "skip":
            raise FieldError(
                "load_timeout_scene",
                f"is {self.load_timeout_scene!r}, but on_load_timeout is {self.on_load_timeout!r}; "
                "a scene to skip to applies only with on_load_timeout='skip'.",
            )
        if self.load_timeout_scene is not None and not (
            isinstance(self.load_timeout_scene, str) and self.load_timeout_scene
        ):
            raise FieldError("load_timeout_scene", f"expected a scene id; got {self.load_timeout_scene!r}.")

    @classmethod
    def from_mapping(cls, value: Any) -> PyodideOptions:
        """The options from a scene's ``runtime_options`` map; a ``FieldError`` names a wrong key."""
        return options_from_mapping(cls, value, "pyodide")


def options_from_mapping(cls: type[T], value: Any, runtime: str) -> T:
    """An options class ``cls`` (frozen attrs) from a scene's ``runtime_options`` map of the ``runtime``
    runtime: None gives the defaults, an instance is kept, an unknown key is a ``FieldError`` naming it
    (with a close match) and the known ones. Both runtimes' options are read through this."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise FieldError("runtime_options", f"expected a map of option names to values; got {value!r}.")
    known = {a.name for a in attrs.fields(cls)}  # type: ignore[misc]
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        from igym_core.config.validators import did_you_mean

        raise FieldError(
            f"runtime_options.{unknown[0]}",
            f"is not an option of the {runtime} runtime.{did_you_mean(unknown[0], known)} "
            f"Options: {', '.join(sorted(known))}.",
        )
    return cls(**value)
