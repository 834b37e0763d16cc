"""Render objects for Overcooked: a kitchen drawn by the browser (Phaser) from shapes.

``GymScene(render_fn="igym_cogrid.render:draw", canvas_width=w, canvas_height=h)`` with
``w, h = canvas_size(layout)``. Everything is drawn with igym's shape objects, no image files:

- floor: light tiles; counters: wooden worktops (the kitchen's walls are counters too);
- onion crate: a wooden crate of onions, labelled "onions"; dish rack: a stack of white dishes,
  labelled "dishes"; serving counter: a green hatch with an arrow, labelled "serve";
- pot: a dark pot showing 0–3 onions; once full it cooks (a bar under it fills up) and when the
  soup is ready the pot shows orange soup, a green bar and "ready!";
- chefs: a round body in the seat's colour (:data:`CHEF_COLOURS`: blue for ``chef_0``, red for
  ``chef_1``) with a white chef's hat, eyes looking the way the chef faces, and what it holds (an
  onion, a dish or a bowl of soup) held out in front; a label above says "you" for the
  participant's own chef when ``draw`` is given the seat (see :func:`draw_you_chef_0`);
- a bar at the top with the score, the soups served and the time left.

The kitchen is permanent (sent once); only chefs, items, pots and the bar change. Chefs glide
from cell to cell over one frame interval (``tween_ms=None``), and jump at an episode's start. A
chef's objects are owned by its seat (``owner``), so the participant's own chef is drawn where each
frame puts it at once (no glide delay after a key) while the partner's chef still glides.
"""

from __future__ import annotations

import functools
from typing import Any

from igym_cogrid.env import (
    AGENTS,
    COOK_STEPS,
    COUNTER,
    DELIVERY,
    DISH,
    DISH_PILE,
    LAYOUTS,
    ONION,
    ONION_PILE,
    ONIONS_PER_SOUP,
    POT,
    SOUP,
    OvercookedEnv,
    make_env,
)
from igym_core.rendering.objects import Circle, Line, Polygon, Rect, Text

__all__ = ["BACKGROUND", "CHEF_COLOURS", "HUD_HEIGHT", "canvas_size", "draw", "draw_you_chef_0", "tile_size"]

HUD_HEIGHT = 44
BACKGROUND = "#1f2937"
#: Each seat's colour: the body of its chef (and its name in the bar).
CHEF_COLOURS = {"chef_0": "#2563eb", "chef_1": "#dc2626"}
_CHEF_DARK = {"chef_0": "#1e3a8a", "chef_1": "#7f1d1d"}
_FLOOR, _FLOOR_ALT, _FLOOR_LINE = "#f1e7d0", "#eadcc0", "#d8c7a3"
_COUNTER, _COUNTER_EDGE, _COUNTER_TOP = "#a16207", "#713f12", "#ca8a04"
_ONION, _ONION_EDGE, _SPROUT = "#e9b949", "#92400e", "#16a34a"
_DISH, _DISH_EDGE = "#ffffff", "#64748b"
_SOUP = "#f97316"
_POT, _POT_EDGE = "#374151", "#111827"
_SERVE, _SERVE_EDGE = "#15803d", "#14532d"
_INK = "#f8fafc"
_LABEL = "#fef3c7"
_FONT = "Trebuchet MS, Verdana, sans-serif"


def tile_size(layout: str) -> int:
    """Pixels per cell: 96, less for wide kitchens (the picture is at most 720 pixels wide)."""
    width = _layout_shape(layout)[1]
    return min(96, 720 // width)


def canvas_size(layout: str) -> tuple[int, int]:
    """``(width, height)`` of the picture of ``layout``: the kitchen and the bar above it."""
    height, width = _layout_shape(layout)
    tile = tile_size(layout)
    return width * tile, height * tile + HUD_HEIGHT


@functools.cache
def _layout_shape(layout: str) -> tuple[int, int]:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(sorted(LAYOUTS))}; got {layout!r}.")
    env = make_env(layout=layout, max_steps=1)
    return env.height, env.width


def _centre(tile: int, row: int, col: int) -> tuple[float, float]:
    return col * tile + tile / 2, HUD_HEIGHT + row * tile + tile / 2


# --- small pictures (relative to a centre) ----------------------------------------------------
def _onion(ident: str, x: float, y: float, r: float, depth: int, **kw: Any) -> list[Any]:
    return [
        Circle(
            id=f"{ident}",
            x=x,
            y=y,
            radius=r,
            fill=_ONION,
            stroke=_ONION_EDGE,
            line_width=1.5,
            depth=depth,
            **kw,
        ),
        Line(
            id=f"{ident}_sprout",
            x=x,
            y=y - r * 0.8,
            points=[(0, 0), (-r * 0.25, -r * 0.6), (0, -r * 0.45), (r * 0.3, -r * 0.7)],
            color=_SPROUT,
            line_width=max(1.5, r * 0.22),
            depth=depth + 1,
            **kw,
        ),
    ]


def _dish(ident: str, x: float, y: float, r: float, depth: int, soup: bool = False, **kw: Any) -> list[Any]:
    objects: list[Any] = [
        Circle(id=ident, x=x, y=y, radius=r, fill=_DISH, stroke=_DISH_EDGE, line_width=1.5, depth=depth, **kw)
    ]
    if soup:
        objects.append(
            Circle(id=f"{ident}_soup", x=x, y=y, radius=r * 0.68, fill=_SOUP, depth=depth + 1, **kw)
        )
    else:
        objects.append(
            Circle(
                id=f"{ident}_rim",
                x=x,
                y=y,
                radius=r * 0.62,
                fill=None,
                stroke="#cbd5e1",
                line_width=1,
                depth=depth + 1,
                **kw,
            )
        )
    return objects


def _item(ident: str, item: int, x: float, y: float, tile: int, depth: int, **kw: Any) -> list[Any]:
    if item == ONION:
        return _onion(ident, x, y, tile * 0.14, depth, **kw)
    if item == DISH:
        return _dish(ident, x, y, tile * 0.17, depth, **kw)
    if item == SOUP:
        return _dish(ident, x, y, tile * 0.17, depth, soup=True, **kw)
    return []


# --- the kitchen (permanent) ------------------------------------------------------------------
def _counter(ident: str, x: float, y: float, tile: int) -> list[Any]:
    return [
        Rect(
            id=ident,
            x=x,
            y=y,
            width=tile,
            height=tile,
            fill=_COUNTER,
            stroke=_COUNTER_EDGE,
            line_width=2,
            depth=1,
            permanent=True,
        ),
        Rect(
            id=f"{ident}_top",
            x=x,
            y=y - tile * 0.04,
            width=tile * 0.84,
            height=tile * 0.76,
            fill=_COUNTER_TOP,
            depth=2,
            permanent=True,
        ),
    ]


def _label(ident: str, x: float, y: float, tile: int, text: str) -> Text:
    return Text(
        id=ident,
        x=x,
        y=y + tile * 0.47,
        text=text,
        font_size=max(10, round(tile * 0.15)),
        font_family=_FONT,
        color=_LABEL,
        origin_x=0.5,
        origin_y=1,
        depth=5,
        permanent=True,
    )


def _kitchen(layout: str, types: Any) -> list[Any]:
    tile = tile_size(layout)
    objects: list[Any] = []
    for r, row in enumerate(types):
        for c, kind in enumerate(row):
            x, y = _centre(tile, r, c)
            ident = f"cell_{r}_{c}"
            kind = int(kind)
            if kind == 0:
                objects.append(
                    Rect(
                        id=ident,
                        x=x,
                        y=y,
                        width=tile,
                        height=tile,
                        fill=_FLOOR if (r + c) % 2 == 0 else _FLOOR_ALT,
                        stroke=_FLOOR_LINE,
                        line_width=1,
                        depth=0,
                        permanent=True,
                    )
                )
                continue
            objects += _counter(ident, x, y, tile)
            if kind == ONION_PILE:
                objects.append(
                    Rect(
                        id=f"{ident}_crate",
                        x=x,
                        y=y - tile * 0.06,
                        width=tile * 0.7,
                        height=tile * 0.5,
                        fill="#7c2d12",
                        stroke="#431407",
                        line_width=2,
                        depth=3,
                        permanent=True,
                    )
                )
                for i, (dx, dy) in enumerate(((-0.17, -0.1), (0.17, -0.1), (0.0, 0.02))):
                    objects += _onion(
                        f"{ident}_onion{i}", x + dx * tile, y + dy * tile, tile * 0.12, 4, permanent=True
                    )
                objects.append(_label(f"{ident}_label", x, y, tile, "onions"))
            elif kind == DISH_PILE:
                for i in range(3):
                    objects += _dish(
                        f"{ident}_dish{i}",
                        x,
                        y - tile * (0.02 + 0.07 * i),
                        tile * 0.22,
                        3 + 2 * i,
                        permanent=True,
                    )
                objects.append(_label(f"{ident}_label", x, y, tile, "dishes"))
            elif kind == DELIVERY:
                objects.append(
                    Rect(
                        id=f"{ident}_hatch",
                        x=x,
                        y=y - tile * 0.04,
                        width=tile * 0.76,
                        height=tile * 0.62,
                        fill=_SERVE,
                        stroke=_SERVE_EDGE,
                        line_width=2,
                        depth=3,
                        permanent=True,
                    )
                )
                s = tile * 0.16
                objects.append(
                    Polygon(
                        id=f"{ident}_arrow",
                        x=x,
                        y=y - tile * 0.08,
                        points=[
                            (-s, -s * 0.4),
                            (0, -s * 0.4),
                            (0, -s),
                            (s * 1.1, 0),
                            (0, s),
                            (0, s * 0.4),
                            (-s, s * 0.4),
                        ],
                        fill="#bbf7d0",
                        depth=4,
                        permanent=True,
                    )
                )
                objects.append(_label(f"{ident}_label", x, y, tile, "serve"))
            elif kind == POT:
                objects.append(
                    Rect(
                        id=f"{ident}_handles",
                        x=x,
                        y=y - tile * 0.08,
                        width=tile * 0.8,
                        height=tile * 0.1,
                        fill=_POT_EDGE,
                        depth=3,
                        permanent=True,
                    )
                )
                objects.append(
                    Circle(
                        id=f"{ident}_pot",
                        x=x,
                        y=y - tile * 0.08,
                        radius=tile * 0.3,
                        fill=_POT,
                        stroke=_POT_EDGE,
                        line_width=3,
                        depth=4,
                        permanent=True,
                    )
                )
    return objects


@functools.cache
def _static(layout: str) -> tuple[Any, ...]:
    env = make_env(layout=layout, max_steps=1)
    env.reset(seed=0)
    types, _ = env.cells()
    width, _height = canvas_size(layout)
    bar = Rect(
        id="hud_bar",
        x=width / 2,
        y=HUD_HEIGHT / 2,
        width=width,
        height=HUD_HEIGHT,
        fill="#111827",
        depth=20,
        permanent=True,
    )
    return (*_kitchen(layout, types.tolist()), bar)


# --- what changes -----------------------------------------------------------------------------
def _pot(tile: int, row: int, col: int, onions: int, left: int) -> list[Any]:
    x, y = _centre(tile, row, col)
    y -= tile * 0.08
    ident = f"pot_{row}_{col}"
    objects: list[Any] = []
    full = onions >= ONIONS_PER_SOUP
    if full and left == 0:
        objects.append(Circle(id=f"{ident}_soup", x=x, y=y, radius=tile * 0.24, fill=_SOUP, depth=5))
    else:
        spots = ((-0.11, 0.05), (0.11, 0.05), (0.0, -0.1))
        for i in range(min(onions, 3)):
            dx, dy = spots[i]
            objects += _onion(f"{ident}_onion{i}", x + dx * tile, y + dy * tile, tile * 0.1, 5)
    if full:
        done = 1.0 if left == 0 else 1 - left / COOK_STEPS
        bar_w = tile * 0.8
        bar_y = y + tile * 0.38
        objects.append(
            Rect(
                id=f"{ident}_bar",
                x=x,
                y=bar_y,
                width=bar_w,
                height=tile * 0.1,
                fill="#1f2937",
                stroke="#0f172a",
                depth=7,
            )
        )
        if done > 0:
            objects.append(
                Rect(
                    id=f"{ident}_fill",
                    x=x - bar_w / 2 + bar_w * done / 2,
                    y=bar_y,
                    width=bar_w * done,
                    height=tile * 0.08,
                    fill="#22c55e" if left == 0 else "#f59e0b",
                    depth=8,
                    tween_ms=0,
                )
            )
        objects.append(
            Text(
                id=f"{ident}_state",
                x=x,
                y=y - tile * 0.33,
                text="ready!" if left == 0 else "cooking",
                font_size=max(11, round(tile * 0.16)),
                font_family=_FONT,
                color="#bbf7d0" if left == 0 else "#fde68a",
                origin_x=0.5,
                origin_y=0.5,
                depth=8,
            )
        )
    return objects


_EYE_OFFSET = ((1, 0), (0, 1), (-1, 0), (0, -1))  # right, down, left, up (x, y)


def _chef(
    agent: str, tile: int, row: int, col: int, facing: int, item: int, tween: int | None, you: bool
) -> list[Any]:
    x, y = _centre(tile, row, col)
    fx, fy = _EYE_OFFSET[facing]
    body_r = tile * 0.3
    kw: dict[str, Any] = {"tween_ms": tween, "owner": agent}  # its player's page never makes it glide
    objects: list[Any] = [
        Circle(
            id=f"{agent}_shadow",
            x=x,
            y=y + body_r * 0.85,
            radius=body_r * 0.8,
            fill="#000000",
            alpha=0.15,
            depth=9,
            **kw,
        ),
        Circle(
            id=f"{agent}_body",
            x=x,
            y=y,
            radius=body_r,
            fill=CHEF_COLOURS[agent],
            stroke=_CHEF_DARK[agent],
            line_width=3,
            depth=10,
            **kw,
        ),
        # The chef's hat: a white puff on a band, at the top of the head.
        Rect(
            id=f"{agent}_hat_band",
            x=x,
            y=y - body_r * 0.78,
            width=body_r * 1.0,
            height=body_r * 0.3,
            fill="#ffffff",
            stroke="#94a3b8",
            depth=12,
            **kw,
        ),
        Circle(
            id=f"{agent}_hat",
            x=x,
            y=y - body_r * 1.08,
            radius=body_r * 0.45,
            fill="#ffffff",
            stroke="#94a3b8",
            depth=11,
            **kw,
        ),
    ]
    # Eyes look the way the chef faces (both eyes shift; facing up shows them high, as if from behind).
    spread = body_r * 0.32
    ex, ey = x + fx * body_r * 0.42, y + fy * body_r * 0.42 - body_r * 0.05
    if fx == 0:
        eyes = ((ex - spread, ey), (ex + spread, ey))
    else:
        eyes = ((ex, ey - spread * 0.7), (ex - fx * spread * 0.9, ey - spread * 0.7))
    if facing != 3:  # facing away (up): no eyes, the back of the head
        for i, (px, py) in enumerate(eyes):
            objects.append(
                Circle(id=f"{agent}_eye{i}", x=px, y=py, radius=body_r * 0.16, fill="#ffffff", depth=13, **kw)
            )
            objects.append(
                Circle(
                    id=f"{agent}_pupil{i}",
                    x=px + fx * body_r * 0.06,
                    y=py + fy * body_r * 0.06,
                    radius=body_r * 0.08,
                    fill="#0f172a",
                    depth=14,
                    **kw,
                )
            )
    # What it holds, held out in front.
    if facing == 3:  # facing up, the hat is in the way: hold it up beside the head, in view
        hx, hy = x + tile * 0.3, y - tile * 0.24
    else:
        hx, hy = x + fx * tile * 0.32, y + fy * tile * 0.32
    objects += _item(f"{agent}_held", item, hx, hy, tile, 15, **kw)
    if you:
        objects.append(
            Text(
                id=f"{agent}_you",
                x=x,
                y=y - body_r * 1.55,
                text="you",
                font_size=max(11, round(tile * 0.16)),
                font_family=_FONT,
                color="#ffffff",
                origin_x=0.5,
                origin_y=1,
                depth=16,
                **kw,
            )
        )
    return objects


def _hud(env: OvercookedEnv, width: int) -> list[Any]:
    seconds = max(0, env.max_steps - env.steps) / env.fps
    minutes, secs = divmod(int(seconds + 0.999), 60)
    soups = env.soups_delivered
    return [
        Text(
            id="hud_score",
            x=14,
            y=HUD_HEIGHT / 2,
            text=f"Score {env.score}   ({soups} soup{'s' if soups != 1 else ''} served)",
            font_size=20,
            font_family=_FONT,
            color=_INK,
            origin_x=0,
            origin_y=0.5,
            depth=21,
        ),
        Text(
            id="hud_time",
            x=width - 14,
            y=HUD_HEIGHT / 2,
            text=f"Time {minutes}:{secs:02d}",
            font_size=20,
            font_family=_FONT,
            color="#fde68a" if seconds <= 10 else _INK,
            origin_x=1,
            origin_y=0.5,
            depth=21,
        ),
    ]


def draw(env: OvercookedEnv, you: str | None = None) -> list[Any]:
    """The render objects of the current state of ``env`` (``you``: the seat whose chef is
    labelled "you", or None)."""
    env = getattr(env, "unwrapped", env)
    layout = env.layout
    tile = tile_size(layout)
    width, _ = canvas_size(layout)
    objects: list[Any] = list(_static(layout))
    types, on_top = env.cells()
    for r, row in enumerate(on_top.tolist()):
        for c, item in enumerate(row):
            if item and int(types[r][c]) == COUNTER:
                x, y = _centre(tile, r, c)
                objects += _item(f"on_{r}_{c}", int(item), x, y - tile * 0.04, tile, 6)
    for row, col, onions, left in env.pots():
        objects += _pot(tile, row, col, onions, left)
    tween = 0 if env.steps == 0 else None
    for agent, (row, col, facing, item) in zip(AGENTS, env.chefs(), strict=True):
        objects += _chef(agent, tile, row, col, facing, item, tween, agent == you)
    objects += _hud(env, width)
    return objects


def draw_you_chef_0(env: OvercookedEnv) -> list[Any]:
    """:func:`draw` with the blue chef (``chef_0``) labelled "you": the ``render_fn`` of a scene
    where one participant plays ``chef_0`` (with a bot or alone)."""
    return draw(env, you="chef_0")
