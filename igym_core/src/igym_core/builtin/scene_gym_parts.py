"""The values a game scene (:class:`~igym_core.builtin.scene_gym.GymScene`) is made of: the assets it
preloads, its bots, its waiting room, and what its ``hud`` function sees."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from igym_core.config.urls import check_url_template
from igym_core.config.validators import FieldError, one_of, positive


@attrs.frozen(kw_only=True)
class Asset:
    """A file to preload before the game starts, from the scene's ``assets_dir``.

    ``type`` is ``image``, ``spritesheet`` (give ``frame_width`` and ``frame_height``) or ``atlas``
    (give ``atlas_file``, the atlas JSON). Render objects refer to it by ``key``.
    """

    key: str = attrs.field(validator=attrs.validators.min_len(1))
    """The name render objects use for it (``Sprite(image=key)``); unique in the scene."""
    file: str = attrs.field(validator=attrs.validators.min_len(1))
    """The image file, relative to the scene's ``assets_dir``."""
    type: Literal["image", "spritesheet", "atlas"] = attrs.field(
        default="image", validator=one_of("image", "spritesheet", "atlas")
    )
    """``image``, ``spritesheet`` (frames of equal size in a grid) or ``atlas`` (frames described by a JSON
    file)."""
    frame_width: int | None = None
    """A spritesheet's frame width in pixels."""
    frame_height: int | None = None
    """A spritesheet's frame height in pixels."""
    atlas_file: str | None = None
    """An atlas's JSON file (Phaser's JSON hash or array format), relative to ``assets_dir``."""

    def __attrs_post_init__(self) -> None:
        if self.type == "spritesheet" and not (self.frame_width and self.frame_height):
            raise FieldError("frame_width", "a spritesheet needs frame_width and frame_height (pixels).")
        if self.type == "atlas" and not self.atlas_file:
            raise FieldError("atlas_file", "an atlas needs atlas_file, the JSON that describes its frames.")
        for name in ("file", "atlas_file"):
            value = getattr(self, name)
            if value and (value.startswith(("/", "\\")) or ".." in Path(value).parts):
                raise FieldError(name, f"must be a path inside assets_dir, without '..'; got {value!r}.")


@attrs.frozen(kw_only=True)
class Bot:
    """A seat filled by a policy, with frame skip.

    ``policy``: ``"random"``, a callable ``observation -> action``, a class, ``"module:attr"``, or a
    policy config of an installed kind (``{"kind": "onnx", ...}``). The bot chooses an action every
    ``act_every`` ticks; in between it repeats its last action (``between="repeat"``) or plays the
    scene's ``default_action`` (``between="default"``).
    """

    policy: Any
    act_every: int = attrs.field(default=1, validator=positive)
    between: Literal["repeat", "default"] = attrs.field(
        default="repeat", validator=one_of("repeat", "default")
    )


@attrs.frozen(kw_only=True)
class WaitingRoom:
    """Where the players of a multiplayer game scene wait until a group is formed.

    Participants see how many are waiting (unless ``show_count`` is off) and how long they have
    waited. After ``timeout_s`` without a group, ``on_timeout`` applies:

    - ``"continue"``: on to the scene after the game (the study goes on without this game);
    - ``"goto"``: on to the scene ``timeout_scene`` (later in the sequence), e.g. a solo version;
    - ``"message"``: the study ends for them with ``timeout_message`` (no completion code);
    - ``"redirect"``: the page goes to ``timeout_redirect_url`` once their data is on disk, e.g.
      Prolific's "timed out" return link. Placeholders as in an end scene's ``redirect_url``:
      ``{participant_id}`` and the URL parameters the experiment declares (``url_params``), such as
      ``{PROLIFIC_PID}``.
    """

    timeout_s: float = attrs.field(default=300.0, validator=positive)
    """How long a participant waits for a group before ``on_timeout`` applies."""
    show_count: bool = True
    """Show how many participants are waiting ("1 of 2 participants here")."""
    message: str = "Waiting for other participants to join. Please keep this page open."
    """The text of the waiting panel."""
    on_timeout: Literal["continue", "goto", "message", "redirect"] = attrs.field(
        default="continue", validator=one_of("continue", "goto", "message", "redirect")
    )
    """What happens when nobody came in time: ``continue``, ``goto``, ``message`` or ``redirect`` (see
    above)."""
    timeout_scene: str | None = None
    """With ``on_timeout="goto"``: the id of the (later) scene to go to."""
    timeout_message: str | None = None
    """Shown for ``message`` and ``redirect``; by default a text that fits the action."""
    timeout_redirect_url: str | None = None
    """With ``on_timeout="redirect"``: where to send them, with placeholders as in an end scene's
    ``redirect_url``."""

    def timeout_text(self) -> str:
        """What a participant who timed out reads (``timeout_message`` or the default for the action)."""
        if self.timeout_message is not None:
            return self.timeout_message
        if self.on_timeout == "redirect":
            return "No other participant joined in time. Thank you for waiting; we are taking you back now."
        return (
            "No other participant joined in time, so this part of the study cannot go ahead. "
            "Thank you for waiting; you may close this page."
        )

    def __attrs_post_init__(self) -> None:
        if self.on_timeout == "goto" and not self.timeout_scene:
            raise FieldError("timeout_scene", 'on_timeout="goto" needs timeout_scene, the scene to go to.')
        if self.on_timeout == "redirect" and not self.timeout_redirect_url:
            raise FieldError(
                "timeout_redirect_url",
                'on_timeout="redirect" needs timeout_redirect_url, where to send them.',
            )
        if self.timeout_redirect_url:
            check_url_template("timeout_redirect_url", self.timeout_redirect_url)


@attrs.frozen(kw_only=True)
class HudView:
    """What a ``hud`` function sees each tick."""

    episode: int
    num_episodes: int
    step: int
    max_steps: int | None
    seat: str
    returns: Mapping[str, float]
    """Total reward so far this episode, by agent."""
    rewards: Mapping[str, float]
    """Reward of the last step, by agent."""
    env: Any
    """The env the factory returned (not the adapter)."""
