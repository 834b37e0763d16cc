"""The renderer interface: how an environment's state becomes a frame the browser draws.

A renderer is a plugin type (hook ``igym_register_renderers``), selected by a game scene through its
``kind`` (``renderer="objects"``). Two are built in (``igym_core.builtin.renderers``):

- ``objects``: the environment (or the scene's ``render_fn``) returns render objects
  (:mod:`igym_core.rendering.objects`); the server sends only what changed since the last frame and
  the browser draws them with Phaser. Small frames, smooth motion, crisp at any window size.
- ``rgb_array``: the environment draws pixels; each frame is sent as a PNG image. Works with any
  Gymnasium env created with ``render_mode="rgb_array"``, at a much higher cost in CPU and bandwidth.

A plugin renderer derives from :class:`Renderer`, sets a unique ``kind``, and returns a
:class:`RenderedFrame` from :meth:`Renderer.render`. The browser needs a client renderer registered
under the same ``kind`` unless the frame uses the built-in fields (``objects`` or ``image_png``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from igym_core.errors import IgymError

if TYPE_CHECKING:
    from igym_core.rendering.objects import RenderObject

__all__ = ["RenderError", "RenderedFrame", "Renderer"]


class RenderError(IgymError):
    """A frame could not be rendered: the env or ``render_fn`` returned something a renderer cannot
    draw, or the render objects of one frame are inconsistent (e.g. two share an id)."""


@attrs.frozen
class RenderedFrame:
    """One frame's payload. Object renderers fill ``objects``; pixel renderers fill ``image_png``."""

    objects: tuple[RenderObject, ...] | None = None
    image_png: bytes | None = None


class Renderer(ABC):
    """Turns an environment into one frame's payload (render objects or an image).

    One instance is made per game, so a renderer may keep state between frames (e.g. the last
    image, to skip re-encoding an unchanged one).

    :meth:`render` is called once per tick, after the environment has stepped, on the server's event
    loop: it must be fast and must not block (no I/O, no sleeping). Anything slow holds up every
    game on the server.

    ``render_fn``, when the scene gives one, is called with the env instead of ``env.render()``:
    it lets a researcher draw an existing env without changing its code.
    """

    kind: ClassVar[str]

    def __init__(self, *, render_fn: Callable[[Any], Any] | None = None) -> None:
        self.render_fn = render_fn

    @abstractmethod
    def render(self, env: Any) -> RenderedFrame:
        """Return this frame's payload for ``env``; raise :class:`RenderError` with a clear message
        (what was returned, what was expected, how to fix it) when the env's output is unusable."""
