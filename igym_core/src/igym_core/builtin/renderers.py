"""The built-in renderers: ``objects`` (render objects, sent as deltas) and ``rgb_array`` (PNG frames)."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from igym_core.plugins.markers import hookimpl
from igym_core.rendering.interface import RenderedFrame, Renderer, RenderError
from igym_core.rendering.objects import RenderObject
from igym_core.rendering.png import encode_png

__all__ = ["ObjectRenderer", "RgbArrayRenderer"]


@hookimpl(trylast=True)
def igym_register_renderers() -> list[type[Renderer]]:
    return [ObjectRenderer, RgbArrayRenderer]


_COLLECTIONS = (list, tuple, types.GeneratorType)
#: Classes whose instances were checked to be render objects: every class a renderer returned
#: that passed the check (the built-ins and any subclasses). Bounded by _KNOWN_LIMIT in case a
#: renderer makes classes on the fly.
_KNOWN_OBJECT_CLASSES: set[type] = set()
_KNOWN_LIMIT = 256


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"a {type(value).__name__} of shape {tuple(shape)} and dtype {getattr(value, 'dtype', '?')}"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"a {type(value).__name__} ({text})"


_OBJECTS_HOW = (
    "The renderer 'objects' draws igym render objects (Rect, Circle, Line, Polygon, Text, Sprite "
    "from igym_core.rendering.objects): give the scene render_fn=draw, a function env -> list of "
    "them, or make env.render() return them. If the env draws pixels (render_mode='rgb_array'), "
    "use renderer='rgb_array' instead."
)
_PIXELS_HOW = (
    "The renderer 'rgb_array' shows an (height, width, 3) uint8 array: create the env with "
    "render_mode='rgb_array', or give the scene render_fn=draw, a function env -> such an array."
)


def _draw(kind: str, render_fn: Any, env: Any) -> Any:
    """What ``render_fn(env)`` or, without one, ``env.render()`` returns; an env that cannot draw
    raises an error that says what to implement."""
    if render_fn is not None:
        return render_fn(env)
    try:
        return env.render()
    except NotImplementedError as exc:
        raise _not_drawable(kind, exc) from exc


def _not_drawable(renderer: str, exc: NotImplementedError) -> RenderError:
    """What to say when ``env.render()`` is not implemented (Gymnasium's default raises this)."""
    detail = f" ({exc})" if str(exc).strip() else ""
    how = _OBJECTS_HOW if renderer == "objects" else _PIXELS_HOW
    return RenderError(
        f"env.render() raised NotImplementedError{detail}: this env does not draw itself. {how}"
    )


class ObjectRenderer(Renderer):
    """Draws what ``render_fn(env)`` (or else ``env.render()``) returns: igym render objects.

    The result may be a list, tuple or generator of :class:`~igym_core.rendering.objects.RenderObject`.
    """

    kind: ClassVar[str] = "objects"

    def render(self, env: Any) -> RenderedFrame:
        result = _draw(self.kind, self.render_fn, env)
        if not isinstance(result, _COLLECTIONS):
            source = "render_fn(env)" if self.render_fn is not None else "env.render()"
            raise RenderError(self._wrong_result(source, result))
        objects = tuple(result)
        # Every tick: the classes seen so far are checked in one pass, the items one by one only
        # when a class is new (or not a render object, which then gets its error message).
        if not _KNOWN_OBJECT_CLASSES.issuperset(map(type, objects)):
            self._check_objects(objects)
        return RenderedFrame(objects=objects)

    def _check_objects(self, objects: tuple[Any, ...]) -> None:
        source = "render_fn(env)" if self.render_fn is not None else "env.render()"
        for index, obj in enumerate(objects):
            if not isinstance(obj, RenderObject):
                raise RenderError(
                    f"{source} returned a collection whose item {index} is {_describe(obj)}, not an igym "
                    "render object. Return only Rect, Circle, Line, Polygon, Text or Sprite objects "
                    "(from igym_core.rendering.objects)."
                )
            if len(_KNOWN_OBJECT_CLASSES) >= _KNOWN_LIMIT:
                _KNOWN_OBJECT_CLASSES.clear()
            _KNOWN_OBJECT_CLASSES.add(type(obj))

    def _wrong_result(self, source: str, result: Any) -> str:
        found = f"{source} returned {_describe(result)}"
        if isinstance(result, RenderObject):
            return f"{found}, a single render object; return a list of them instead: [obj]."
        fix = (
            "The renderer 'objects' expects a list (or tuple, or generator) of igym render objects "
            "(Rect, Circle, Line, Polygon, Text, Sprite). Give the scene a render_fn(env) that "
            "returns them, or make env.render() return them (e.g. for a render_mode your env "
            "defines for igym)."
        )
        if getattr(result, "ndim", None) == 3:
            fix += " This env draws pixels: to show them as they are, use renderer='rgb_array'."
        elif result is None:
            fix += " (env.render() returns None when the env was created without a render_mode.)"
        return f"{found}. {fix}"


class RgbArrayRenderer(Renderer):
    """Sends each frame as a PNG of what ``render_fn(env)`` (or else ``env.render()``) returns: an
    ``(height, width, 3)`` or ``(height, width, 4)`` uint8 array, as Gymnasium envs created with
    ``render_mode="rgb_array"`` do.

    ``compression`` is the zlib level (0..9); 1 is the best trade at game frame rates. An image
    identical to the previous frame's is not encoded again.
    """

    kind: ClassVar[str] = "rgb_array"

    def __init__(self, *, render_fn: Callable[[Any], Any] | None = None, compression: int = 1) -> None:
        super().__init__(render_fn=render_fn)
        if not (isinstance(compression, int) and 0 <= compression <= 9):
            raise ValueError(f"compression must be a zlib level from 0 to 9; got {compression!r}.")
        self.compression = compression
        self._last: tuple[np.ndarray, bytes] | None = None  # the previous frame's pixels and PNG

    def render(self, env: Any) -> RenderedFrame:
        source = "render_fn(env)" if self.render_fn is not None else "env.render()"
        result = _draw(self.kind, self.render_fn, env)
        pixels = self._check(source, result)
        if self._last is not None:
            last_pixels, last_png = self._last
            if last_pixels.shape == pixels.shape and np.array_equal(last_pixels, pixels):
                return RenderedFrame(image_png=last_png)
        png = encode_png(pixels, compression=self.compression)
        # A copy: envs often hand out the same buffer every frame and draw into it in place.
        self._last = (pixels.copy(), png)
        return RenderedFrame(image_png=png)

    @staticmethod
    def _check(source: str, result: Any) -> np.ndarray:
        how = (
            "The renderer 'rgb_array' needs an (height, width, 3) or (height, width, 4) uint8 array: "
            "create the env with render_mode='rgb_array', or give the scene a render_fn(env) that "
            "returns such an array."
        )
        if result is None or not hasattr(result, "__array__"):
            extra = ""
            if isinstance(result, list | tuple) and result and isinstance(result[0], RenderObject):
                extra = " This env returns render objects: use renderer='objects'."
            raise RenderError(f"{source} returned {_describe(result)}. {how}{extra}")
        pixels = np.asarray(result)
        if pixels.ndim == 4:
            raise RenderError(
                f"{source} returned {_describe(pixels)}: a list of frames (render_mode='rgb_array_list'?). "
                f"{how}"
            )
        if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or 0 in pixels.shape:
            raise RenderError(f"{source} returned {_describe(pixels)}. {how}")
        if pixels.dtype != np.uint8:
            raise RenderError(
                f"{source} returned {_describe(pixels)}. {how} Convert it, e.g. "
                "(np.clip(frame, 0, 1) * 255).astype(np.uint8) for floats in 0..1."
            )
        return pixels
