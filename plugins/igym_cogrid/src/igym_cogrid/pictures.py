"""Pictures for instruction pages: the kitchen as the game draws it, labelled, and the controls.

Both are SVG made from igym's render objects (the kitchen from :func:`igym_cogrid.render.draw`
itself, so the picture always matches the game's look, for any layout) and shown as ``<img>``
tags with ``data:`` URLs, which the participant page's Content-Security-Policy allows
(``img-src 'self' data:``): no file, route or network. In an instructions scene's Markdown::

    StaticScene(scene_id="instructions", body=f"... {kitchen_figure('cramped_room', you='chef_0')} ...")

- :func:`kitchen_picture`: the kitchen at the start of a round, with callouts (a name, a hint and a
  line to each thing) for the onion crates, pots, dish racks, serving hatches and both chefs;
- :func:`controls_picture`: the arrow keys ("move") and the space bar ("pick up, put down, use");
- :func:`kitchen_figure` / :func:`controls_figure`: those as HTML ``<figure>`` blocks with alt
  text and a caption, ready for a scene's body.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from html import escape
from typing import Any

import attrs

from igym_cogrid.env import AGENTS, DELIVERY, DISH_PILE, LAYOUTS, ONION_PILE, POT, make_env
from igym_cogrid.render import BACKGROUND, HUD_HEIGHT, canvas_size, draw, tile_size
from igym_core.rendering.objects import Circle, Line, Polygon, Rect, RenderObject, Text
from igym_core.rendering.svg import svg_data_url, to_svg

__all__ = [
    "CHEF_LABELS_HUMAN_AI",
    "CHEF_LABELS_TWO_PLAYERS",
    "Callout",
    "controls_figure",
    "controls_picture",
    "kitchen_figure",
    "kitchen_picture",
]

_FONT = "Trebuchet MS, Verdana, DejaVu Sans, sans-serif"
_NAME_SIZE = 17
_HINT_SIZE = 13
_PICTURE_TILE = 64  # pixels per cell in the picture (the game's are larger: the callouts need the room)
_CHAR_WIDTH = 0.56  # of the font size: a generous average width, so callouts never overlap
_GAP = 12  # between callouts, and between a callout and the kitchen
_INK, _HINT, _LINE, _CASING = "#f8fafc", "#cbd5e1", "#fef3c7", "#111827"
_LIGHT = {"chef_0": "#93c5fd", "chef_1": "#fca5a5"}  # the chef colours, light enough to read on dark

#: The things of the kitchen that get a callout: cell type -> (name, hint).
_THINGS: dict[int, tuple[str, str]] = {
    ONION_PILE: ("Onion crate", "take onions here"),
    POT: ("Pot", "3 onions cook a soup"),
    DISH_PILE: ("Dish rack", "take a dish here"),
    DELIVERY: ("Serving hatch", "bring soup here"),
}

#: The chefs' callouts when one participant plays the blue chef with a computer partner.
CHEF_LABELS_HUMAN_AI: Mapping[str, tuple[str, str]] = {
    "chef_0": ("You", 'the blue chef, marked "you"'),
    "chef_1": ("Your partner", "the red chef (a computer)"),
}
#: The chefs' callouts when two participants play (each learns their colour above the game).
CHEF_LABELS_TWO_PLAYERS: Mapping[str, tuple[str, str]] = {
    "chef_0": ("Blue chef", "you or your partner"),
    "chef_1": ("Red chef", "you or your partner"),
}


@attrs.frozen
class Callout:
    """One label of the picture: its name, a hint, and the points (canvas pixels) it points at."""

    name: str
    hint: str
    targets: tuple[tuple[float, float], ...]
    side: str  # left, right, top or bottom of the kitchen
    colour: str = _INK

    @property
    def width(self) -> float:
        return max(len(self.name) * _NAME_SIZE, len(self.hint) * _HINT_SIZE) * _CHAR_WIDTH

    @property
    def height(self) -> float:
        return (_NAME_SIZE + _HINT_SIZE) * 1.25


def _side(row: int, col: int, rows: int, cols: int, *, prefer_sides: bool) -> str:
    """The edge of the kitchen nearest to a cell (chefs, inside the kitchen, prefer left/right)."""
    distances = {"left": col, "right": cols - 1 - col, "top": row, "bottom": rows - 1 - row}
    order = ("left", "right", "top", "bottom") if prefer_sides else ("top", "bottom", "left", "right")
    return min(order, key=lambda side: distances[side])


def _callouts(layout: str, chef_labels: Mapping[str, tuple[str, str]], scale: float) -> list[Callout]:
    env = make_env(layout=layout, max_steps=1)
    env.reset(seed=0)
    types, _ = env.cells()
    rows, cols = types.shape
    tile = tile_size(layout)

    def centre(row: int, col: int) -> tuple[float, float]:
        return (col * tile + tile / 2) * scale, (HUD_HEIGHT + row * tile + tile / 2) * scale

    # Things of a kind side by side on one edge (two crates in a row) share one callout.
    groups: list[tuple[int, str, list[tuple[int, int]]]] = []
    for (row, col), kind in _cells(types):
        if kind not in _THINGS:
            continue
        side = _side(row, col, rows, cols, prefer_sides=False)
        for group_kind, group_side, cells in groups:
            if (
                group_kind == kind
                and group_side == side
                and any(abs(row - r) + abs(col - c) == 1 for r, c in cells)
            ):
                cells.append((row, col))
                break
        else:
            groups.append((kind, side, [(row, col)]))
    callouts = [
        Callout(*_THINGS[kind], targets=tuple(centre(r, c) for r, c in cells), side=side)
        for kind, side, cells in groups
    ]
    for agent, (row, col, _facing, _item) in zip(AGENTS, env.chefs(), strict=True):
        if agent in chef_labels:
            name, hint = chef_labels[agent]
            side = _side(row, col, rows, cols, prefer_sides=True)
            callouts.append(Callout(name, hint, (centre(row, col),), side, _LIGHT[agent]))
    return callouts


def _cells(types: Any) -> list[tuple[tuple[int, int], int]]:
    return [((r, c), int(kind)) for r, line in enumerate(types.tolist()) for c, kind in enumerate(line)]


def _spread(wanted: list[float], sizes: list[float], low: float, high: float) -> list[float]:
    """Positions (of box centres) as near ``wanted`` as they can be without overlapping, within
    ``low``..``high`` where there is room."""
    order = sorted(range(len(wanted)), key=lambda i: wanted[i])
    placed = [0.0] * len(wanted)
    edge = low
    for i in order:
        placed[i] = max(wanted[i], edge + sizes[i] / 2)
        edge = placed[i] + sizes[i] / 2 + _GAP
    overshoot = edge - _GAP - high
    if overshoot > 0:  # pushed past the end: slide the whole run back, never past the start
        shift = min(overshoot, min(placed[i] - sizes[i] / 2 for i in order) - low)
        placed = [p - max(0.0, shift) for p in placed]
    return placed


def _callout_objects(
    callouts: list[Callout], kitchen: tuple[float, float, float, float], tile: int
) -> tuple[list[RenderObject], tuple[float, float, float, float]]:
    """The callouts' text and leader lines around the kitchen box ``(x0, y0, x1, y1)``, and the
    picture's box (kitchen and margins)."""
    x0, y0, x1, y1 = kitchen
    by_side: dict[str, list[Callout]] = {side: [] for side in ("left", "right", "top", "bottom")}
    for callout in callouts:
        by_side[callout.side].append(callout)
    margin = {
        side: (
            (
                max((c.width for c in items), default=0)
                if side in ("left", "right")
                else max((c.height for c in items), default=0)
            )
            + (3 * _GAP if items else _GAP)
        )
        for side, items in by_side.items()
    }
    box = (x0 - margin["left"], y0 - margin["top"], x1 + margin["right"], y1 + margin["bottom"])
    objects: list[RenderObject] = []
    for side, items in by_side.items():
        if not items:
            continue
        vertical = side in ("left", "right")
        wanted = [sum(t[1 if vertical else 0] for t in c.targets) / len(c.targets) for c in items]
        sizes = [c.height if vertical else c.width for c in items]
        low, high = (box[1], box[3]) if vertical else (box[0], box[2])
        for index, (callout, position) in enumerate(
            zip(items, _spread(wanted, sizes, low, high), strict=True)
        ):
            ident = f"callout_{side}_{index}"
            if vertical:
                # Text right-aligned against the kitchen on the left, left-aligned on the right.
                tx = x0 - 2 * _GAP if side == "left" else x1 + 2 * _GAP
                ox = 1.0 if side == "left" else 0.0
                top = position - callout.height / 2
                anchor = (tx + (_GAP / 2 if side == "left" else -_GAP / 2), position)
            else:
                tx, ox = position, 0.5
                top = y0 - margin["top"] + _GAP if side == "top" else y1 + 2 * _GAP
                anchor = (tx, top + callout.height + 2 if side == "top" else top - 4)
            objects.append(_words(f"{ident}_name", tx, top, ox, callout.name, _NAME_SIZE, callout.colour))
            objects.append(
                _words(f"{ident}_hint", tx, top + _NAME_SIZE * 1.25, ox, callout.hint, _HINT_SIZE, _HINT)
            )
            for n, target in enumerate(callout.targets):
                objects += _leader(f"{ident}_line{n}", anchor, target, tile)
    return objects, box


def _words(ident: str, x: float, top: float, origin_x: float, text: str, size: int, colour: str) -> Text:
    return Text(
        id=ident,
        x=x,
        y=top,
        text=text,
        font_size=size,
        font_family=_FONT,
        color=colour,
        origin_x=origin_x,
        origin_y=0,
        depth=40,
    )


def _leader(
    ident: str, start: tuple[float, float], target: tuple[float, float], tile: int
) -> list[RenderObject]:
    """A line from a callout to the edge of the thing it names (a dark casing keeps it visible on
    any colour), ending in a dot."""
    (sx, sy), (tx, ty) = start, target
    dx, dy = sx - tx, sy - ty
    length = max(1e-6, (dx * dx + dy * dy) ** 0.5)
    reach = min(tile * 0.32, length / 2)
    ex, ey = tx + dx / length * reach, ty + dy / length * reach
    points = [(0.0, 0.0), (ex - sx, ey - sy)]
    return [
        Line(id=f"{ident}_casing", x=sx, y=sy, points=points, color=_CASING, line_width=5, depth=41),
        Line(id=ident, x=sx, y=sy, points=points, color=_LINE, line_width=2, depth=42),
        Circle(id=f"{ident}_dot", x=ex, y=ey, radius=4, fill=_LINE, stroke=_CASING, line_width=2, depth=43),
    ]


def _scaled(obj: RenderObject, scale: float) -> RenderObject:
    """``obj`` drawn ``scale`` times as large, about the canvas's top-left corner."""
    if scale == 1:
        return obj
    changes: dict[str, Any] = {"x": obj.x * scale, "y": obj.y * scale}
    for name in ("width", "height", "radius", "line_width", "font_size"):
        if hasattr(obj, name):
            changes[name] = getattr(obj, name) * scale
    if isinstance(obj, Line | Polygon):
        changes["points"] = [(px * scale, py * scale) for px, py in obj.points]
    return attrs.evolve(obj, **changes)


@functools.cache
def kitchen_picture(
    layout: str, you: str | None = "chef_0", chef_labels: tuple[tuple[str, str, str], ...] | None = None
) -> str:
    """The kitchen ``layout`` at the start of a round, as the game draws it (without the score
    bar), with each thing labelled: an SVG document.

    ``you``: the seat whose chef the game labels "you" (None: neither, as when two people play).
    ``chef_labels``: ``(seat, name, hint)`` triples for the chefs' callouts (default: "You" and
    "Your partner" when ``you`` is given, "Blue chef" and "Red chef" otherwise).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(sorted(LAYOUTS))}; got {layout!r}.")
    if you is not None and you not in AGENTS:
        raise ValueError(f"you must be one of {', '.join(AGENTS)} or None; got {you!r}.")
    if chef_labels is None:
        labels = CHEF_LABELS_HUMAN_AI if you is not None else CHEF_LABELS_TWO_PLAYERS
    else:
        labels = {seat: (name, hint) for seat, name, hint in chef_labels}
    env = make_env(layout=layout, max_steps=1)
    env.reset(seed=0)
    # The game's "you" tag sits above the chef, where a neighbour's chef may stand at the start: in a
    # still picture it could seem to name the wrong chef, so the callout names the chefs instead.
    tile = tile_size(layout)
    scale = min(1.0, _PICTURE_TILE / tile)  # a smaller kitchen leaves the callouts room to be read
    kitchen = [_scaled(obj, scale) for obj in draw(env) if not obj.id.startswith("hud_")]
    width, height = canvas_size(layout)
    callouts, (bx0, by0, bx1, by1) = _callout_objects(
        _callouts(layout, labels, scale), (0, HUD_HEIGHT * scale, width * scale, height * scale), tile * scale
    )
    return to_svg(
        kitchen + callouts,
        width=bx1 - bx0,
        height=by1 - by0,
        view_box=(bx0, by0, bx1 - bx0, by1 - by0),
        background=BACKGROUND,
        title=f"The kitchen ({layout.replace('_', ' ')}) with its parts labelled",
    )


# --- the controls -----------------------------------------------------------------------------
_KEY, _KEY_SIDE, _KEY_EDGE, _KEY_INK = "#f8fafc", "#94a3b8", "#475569", "#1e293b"
_KEY_SIZE = 54


def _key(ident: str, x: float, y: float, width: float, height: float) -> list[RenderObject]:
    return [
        Rect(id=f"{ident}_side", x=x, y=y + 4, width=width, height=height, fill=_KEY_SIDE, depth=1),
        Rect(
            id=ident, x=x, y=y, width=width, height=height, fill=_KEY, stroke=_KEY_EDGE, line_width=2, depth=2
        ),
    ]


def _arrow(ident: str, x: float, y: float, facing: str) -> Polygon:
    s = _KEY_SIZE * 0.22
    right = [
        (-s, -s * 0.35),
        (0, -s * 0.35),
        (0, -s * 0.8),
        (s, 0),
        (0, s * 0.8),
        (0, s * 0.35),
        (-s, s * 0.35),
    ]
    turn = {"right": (1, 0, 0, 1), "left": (-1, 0, 0, 1), "down": (0, -1, 1, 0), "up": (0, 1, -1, 0)}[facing]
    a, b, c, d = turn
    points = [(a * px + b * py, c * px + d * py) for px, py in right]
    return Polygon(id=ident, x=x, y=y, points=points, fill=_KEY_INK, depth=3)


@functools.cache
def controls_picture() -> str:
    """The arrow keys ("move") and the space bar ("pick up, put down, use"): an SVG document."""
    k, gap = _KEY_SIZE, 8
    objects: list[RenderObject] = []
    cx, top = 40 + 1.5 * k + gap, 20 + k / 2
    for facing, (x, y) in {
        "up": (cx, top),
        "left": (cx - k - gap, top + k + gap),
        "down": (cx, top + k + gap),
        "right": (cx + k + gap, top + k + gap),
    }.items():
        objects += _key(f"key_{facing}", x, y, k, k)
        objects.append(_arrow(f"key_{facing}_arrow", x, y, facing))
    label_y = top + 2 * k + gap + 16
    objects.append(_words("arrows_name", cx, label_y, 0.5, "Arrow keys", _NAME_SIZE, _INK))
    objects.append(_words("arrows_hint", cx, label_y + 22, 0.5, "move your chef", _HINT_SIZE, _HINT))
    space_x, space_w = cx + 1.5 * k + gap + 60 + 130, 260
    objects += _key("key_space", space_x, top + k + gap, space_w, k)
    objects.append(_words("key_space_word", space_x, top + k + gap - 9, 0.5, "Space", 16, _KEY_INK))
    objects.append(_words("space_name", space_x, label_y, 0.5, "Space bar", _NAME_SIZE, _INK))
    objects.append(
        _words("space_hint", space_x, label_y + 22, 0.5, "pick up, put down, use", _HINT_SIZE, _HINT)
    )
    width, height = space_x + space_w / 2 + 40, label_y + 50
    return to_svg(
        objects,
        width=width,
        height=height,
        background=BACKGROUND,
        title="The controls: arrow keys and space bar",
    )


# --- as HTML for a scene's body ---------------------------------------------------------------
def _figure(svg: str, alt: str, caption: str) -> str:
    # One line, so that Markdown keeps the block as HTML (a blank line would end it).
    return (
        f'<figure class="igym-picture" style="margin: 1.2em 0"><img src="{svg_data_url(svg)}" '
        f'alt="{escape(alt)}"><figcaption>{escape(caption)}</figcaption></figure>'
    )


def kitchen_figure(layout: str, you: str | None = "chef_0", caption: str = "") -> str:
    """:func:`kitchen_picture` as an HTML ``<figure>`` (alt text naming every labelled thing, and
    ``caption`` or a default one), to put on a line of its own in a scene's Markdown body."""
    chefs = "you (the blue chef) and your partner (the red chef)" if you else "the blue chef and the red chef"
    things = dict.fromkeys(c.name.lower() for c in _callouts(layout, {}, 1.0))  # those in this kitchen
    alt = f"The kitchen: {', '.join(things)}, {chefs}, each labelled."
    return _figure(kitchen_picture(layout, you), alt, caption or "The kitchen at the start of a round.")


def controls_figure(caption: str = "") -> str:
    """:func:`controls_picture` as an HTML ``<figure>``."""
    alt = "The controls: the arrow keys move your chef; the space bar picks up, puts down and uses."
    return _figure(
        controls_picture(),
        alt,
        caption or "Arrow keys move your chef; Space picks up, puts down or uses what it faces.",
    )
