"""Render objects as an SVG picture: a game's look, drawn once, for a page (instructions, a paper).

``to_svg(objects, width=..., height=...)`` draws the shapes and text a renderer returns
(:class:`~igym_core.rendering.objects.Rect`, ``Circle``, ``Line``, ``Polygon``, ``Text``) the way
the browser's Phaser view draws them: centred shapes, points relative to ``x``, ``y``, text
anchored by ``origin_x`` / ``origin_y``, ``angle`` clockwise in degrees, ``alpha``, and ``depth``
ordering (ties keep the given order). A picture made this way always matches the game, because it
is made from the objects the game sends. ``Sprite`` needs the scene's image assets and is refused.

:func:`svg_data_url` turns the picture into a ``data:`` URL for an ``<img>`` in a scene's HTML (the
participant page's Content-Security-Policy allows ``img-src data:``), so no file or route is needed.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

from igym_core.rendering.interface import RenderError
from igym_core.rendering.objects import Circle, Line, Polygon, Rect, RenderObject, Text

__all__ = ["svg_data_url", "to_svg"]

#: Line height of text of several lines, in font sizes (close to Phaser's text metrics).
_LINE_HEIGHT = 1.2
#: Where a line's baseline sits below the top of its line box, in font sizes.
_BASELINE = 0.93


# Characters XML 1.0 cannot carry (most control characters; \r, which a parser turns into \n).
_NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff]")


def _clean(text: str) -> str:
    """``text`` with the characters XML cannot hold replaced by U+FFFD, so the document parses."""
    return _NOT_XML.sub("\ufffd", text)


def _num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _paint(fill: str | None, stroke: str | None, line_width: float) -> str:
    parts = [f"fill={quoteattr(fill or 'none')}"]
    if stroke is not None and line_width > 0:
        parts.append(f'stroke="{stroke}" stroke-width="{_num(line_width)}"')
    return " ".join(parts)


def _common(obj: RenderObject) -> str:
    parts = []
    if obj.alpha < 1:
        parts.append(f'opacity="{_num(obj.alpha)}"')
    if obj.angle:
        parts.append(f'transform="rotate({_num(obj.angle)} {_num(obj.x)} {_num(obj.y)})"')
    return (" " + " ".join(parts)) if parts else ""


def _points(obj: Line | Polygon) -> str:
    return " ".join(f"{_num(obj.x + px)},{_num(obj.y + py)}" for px, py in obj.points)


def _text(obj: Text) -> str:
    lines = _clean(obj.text).split("\n")
    size = obj.font_size
    box_height = len(lines) * size * _LINE_HEIGHT
    first_baseline = obj.y - obj.origin_y * box_height + size * _BASELINE
    anchor = "start" if obj.origin_x < 0.25 else "end" if obj.origin_x > 0.75 else "middle"
    attrs = (
        f'x="{_num(obj.x)}" y="{_num(first_baseline)}" font-size="{_num(size)}" '
        f"font-family={quoteattr(_clean(obj.font_family))} fill={quoteattr(obj.color)} "
        f'text-anchor="{anchor}"'
    )
    if len(lines) == 1:
        return f"<text {attrs}{_common(obj)}>{escape(lines[0])}</text>"
    spans = "".join(
        f'<tspan x="{_num(obj.x)}" dy="{_num(0 if i == 0 else size * _LINE_HEIGHT)}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return f"<text {attrs}{_common(obj)}>{spans}</text>"


def _element(obj: RenderObject) -> str:
    if isinstance(obj, Rect):
        return (
            f'<rect x="{_num(obj.x - obj.width / 2)}" y="{_num(obj.y - obj.height / 2)}" '
            f'width="{_num(obj.width)}" height="{_num(obj.height)}" '
            f"{_paint(obj.fill, obj.stroke, obj.line_width)}{_common(obj)}/>"
        )
    if isinstance(obj, Circle):
        return (
            f'<circle cx="{_num(obj.x)}" cy="{_num(obj.y)}" r="{_num(obj.radius)}" '
            f"{_paint(obj.fill, obj.stroke, obj.line_width)}{_common(obj)}/>"
        )
    if isinstance(obj, Polygon):
        if len(obj.points) < 3:
            return ""
        return (
            f'<polygon points="{_points(obj)}" {_paint(obj.fill, obj.stroke, obj.line_width)}{_common(obj)}/>'
        )
    if isinstance(obj, Line):
        if len(obj.points) < 2 or obj.line_width <= 0:
            return ""
        return (
            f'<polyline points="{_points(obj)}" fill="none" stroke="{obj.color}" '
            f'stroke-width="{_num(obj.line_width)}" stroke-linecap="round" stroke-linejoin="round"'
            f"{_common(obj)}/>"
        )
    if isinstance(obj, Text):
        return _text(obj)
    raise RenderError(
        f"to_svg draws rect, circle, line, polygon and text objects; {obj.id!r} is a "
        f"{obj.object_type}, which needs the scene's image assets. Draw that picture from shapes, or "
        "leave the object out."
    )


def to_svg(
    objects: Iterable[RenderObject],
    *,
    width: float,
    height: float,
    background: str | None = None,
    view_box: tuple[float, float, float, float] | None = None,
    title: str = "",
) -> str:
    """An SVG document of ``objects``, ``width`` × ``height`` pixels.

    Args:
        objects: render objects, drawn in ``depth`` order (ties in the given order).
        width, height: the picture's size in pixels (an ``<img>``'s natural size).
        background: a colour filling the whole picture first, or None (transparent).
        view_box: ``(x, y, w, h)``, the part of the canvas shown (default ``(0, 0, width,
            height)``): e.g. a game's canvas without its score bar.
        title: the picture's accessible name (an SVG ``<title>``), or none.
    """
    box = view_box if view_box is not None else (0.0, 0.0, float(width), float(height))
    ordered = sorted(objects, key=lambda obj: obj.depth)
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" '
        f'width="{_num(width)}" height="{_num(height)}" viewBox="{" ".join(_num(v) for v in box)}">'
    ]
    if title:
        parts.append(f"<title>{escape(_clean(title))}</title>")
    if background is not None:
        parts.append(
            f'<rect x="{_num(box[0])}" y="{_num(box[1])}" width="{_num(box[2])}" height="{_num(box[3])}" '
            f"fill={quoteattr(background)}/>"
        )
    parts.extend(filter(None, (_element(obj) for obj in ordered)))
    parts.append("</svg>")
    return "".join(parts)


def svg_data_url(svg: str) -> str:
    """``data:image/svg+xml;base64,...``: the picture as a URL for ``<img src=...>``."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
