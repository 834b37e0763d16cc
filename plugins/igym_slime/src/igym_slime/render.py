"""Render objects for Slime Volleyball: a sunny beach court drawn by the browser (Phaser).

``GymScene(render_fn="igym_slime.render:draw", canvas_width=WIDTH, canvas_height=HEIGHT,
background=SKY)``. The scenery (sky, clouds, sea, sand, net) is permanent, so after the first
frame only what moves goes over the wire: the slimes and their eyes, the ball and its shadow, and
the score when it changes. Shapes are drawn relative to their centre, so a moving slime changes
only its ``x`` and ``y``.

Each slime is a half disc (a polygon) with one eye on the side facing the net; the pupil looks at
the ball. Each side shows its points in large digits and its remaining lives as dots. When the ball
flies above the top of the picture, a small marker at the top edge shows where it is.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from igym_core.rendering.objects import Circle, Line, Polygon, Rect, Text
from igym_slime.env import (
    BALL_RADIUS,
    COURT_HALF_WIDTH,
    GROUND_Y,
    NET_HEIGHT,
    NET_WIDTH,
    SERVE_DELAY_STEPS,
    SLIME_RADIUS,
    SlimeVolleyEnv,
)

__all__ = ["COLOURS", "HEIGHT", "SCALE", "SKY", "WIDTH", "draw", "to_screen"]

WIDTH, HEIGHT = 768, 384
SCALE = WIDTH / (2 * COURT_HALF_WIDTH)  # pixels per court unit (16)
#: The court's y at the bottom edge of the picture (below the ground, so that the sand shows).
VIEW_BOTTOM = -1.0
VIEW_TOP = VIEW_BOTTOM + HEIGHT / SCALE

SKY = "#8fd3f4"
COLOURS = {"left": "#f97316", "right": "#16a34a"}
_OUTLINE = {"left": "#9a3412", "right": "#14532d"}
_SAND, _SAND_EDGE, _SEA, _SEA_FOAM = "#f3d89a", "#d9b46a", "#3b9fd1", "#e0f2fe"
_NET, _NET_DARK = "#f8fafc", "#475569"
_BALL, _BALL_EDGE = "#fde047", "#a16207"
_INK = "#1e293b"


def to_screen(x: float, y: float) -> tuple[float, float]:
    """Canvas pixels (origin top left, y down) of court point (x, y)."""
    return (x + COURT_HALF_WIDTH) * SCALE, HEIGHT - (y - VIEW_BOTTOM) * SCALE


def _arc(radius: float, start_deg: float, end_deg: float, n: int) -> list[tuple[float, float]]:
    return [
        (
            radius * math.cos(math.radians(start_deg + (end_deg - start_deg) * i / n)),
            -radius * math.sin(math.radians(start_deg + (end_deg - start_deg) * i / n)),
        )
        for i in range(n + 1)
    ]


_SLIME_R = SLIME_RADIUS * SCALE
_SLIME_SHAPE = tuple(_arc(_SLIME_R, 0, 180, 18))  # a half disc, flat side down, centred on the flat side
_EYE_R = _SLIME_R * 0.27
_PUPIL_R = _EYE_R * 0.5
_BALL_R = BALL_RADIUS * SCALE
_SHADOW = tuple(
    (_BALL_R * 1.3 * math.cos(a), _BALL_R * 0.35 * math.sin(a))
    for a in (2 * math.pi * i / 10 for i in range(10))
)


def _cloud(ident: str, x: float, y: float, size: float) -> list[Any]:
    puffs = ((-1.0, 0.25, 0.55), (-0.35, -0.1, 0.75), (0.4, 0.0, 0.65), (1.0, 0.3, 0.45))
    return [
        Circle(
            id=f"{ident}_{i}",
            x=x + dx * size,
            y=y + dy * size,
            radius=r * size,
            fill="#ffffff",
            alpha=0.9,
            depth=1,
            permanent=True,
        )
        for i, (dx, dy, r) in enumerate(puffs)
    ] + [
        Rect(
            id=f"{ident}_base",
            x=x,
            y=y + 0.35 * size,
            width=2.0 * size,
            height=0.5 * size,
            fill="#ffffff",
            alpha=0.9,
            depth=1,
            permanent=True,
        )
    ]


def _scenery() -> list[Any]:
    _, ground_y = to_screen(0, GROUND_Y)
    horizon = ground_y - 30
    net_x, net_top = to_screen(0, NET_HEIGHT)
    net_w = NET_WIDTH * SCALE
    objects: list[Any] = [
        Circle(id="sun", x=WIDTH * 0.5, y=58, radius=30, fill="#fff3b0", alpha=0.95, depth=0, permanent=True),
        *_cloud("cloud_a", 215, 105, 24),
        *_cloud("cloud_b", 600, 125, 20),
        *_cloud("cloud_c", 400, 190, 13),
        Rect(
            id="sea", x=WIDTH / 2, y=horizon + 15, width=WIDTH, height=30, fill=_SEA, depth=1, permanent=True
        ),
        Line(
            id="sea_foam",
            points=[(0, 0), (WIDTH, 0)],
            x=0,
            y=ground_y - 4,
            color=_SEA_FOAM,
            line_width=3,
            depth=2,
            permanent=True,
        ),
        Rect(
            id="sand",
            x=WIDTH / 2,
            y=(ground_y + HEIGHT) / 2,
            width=WIDTH,
            height=HEIGHT - ground_y,
            fill=_SAND,
            depth=2,
            permanent=True,
        ),
        Line(
            id="sand_edge",
            points=[(0, 0), (WIDTH, 0)],
            x=0,
            y=ground_y,
            color=_SAND_EDGE,
            line_width=2,
            depth=3,
            permanent=True,
        ),
        # The net: a post from the ground to NET_HEIGHT with a rounded top (the ball bounces off both).
        Rect(
            id="net",
            x=net_x,
            y=(net_top + ground_y) / 2,
            width=net_w,
            height=ground_y - net_top,
            fill=_NET,
            stroke=_NET_DARK,
            line_width=2,
            depth=4,
            permanent=True,
        ),
        Circle(
            id="net_top",
            x=net_x,
            y=net_top,
            radius=net_w / 2,
            fill=_NET,
            stroke=_NET_DARK,
            line_width=2,
            depth=4,
            permanent=True,
        ),
    ]
    return objects


_STATIC = _scenery()


@functools.lru_cache(maxsize=1024)
def _body(agent: str, x: float, y: float, tween: int | None) -> Polygon:
    """A slime's body. Cached: a polygon costs far more to build and encode than a circle, and a
    slime often stands still (an unchanged object costs the delta encoder one identity check)."""
    return Polygon(
        id=f"{agent}_slime",
        x=x,
        y=y,
        points=_SLIME_SHAPE,
        fill=COLOURS[agent],
        stroke=_OUTLINE[agent],
        line_width=2,
        depth=6,
        tween_ms=tween,
        owner=agent,
    )


@functools.lru_cache(maxsize=1024)
def _shadow(x: float, y: float, alpha: float, tween: int | None) -> Polygon:
    return Polygon(
        id="ball_shadow", x=x, y=y, points=_SHADOW, fill="#7c5a1e", alpha=alpha, depth=5, tween_ms=tween
    )


def _slime(agent: str, slime: list[float], ball: list[float], jump: bool) -> list[Any]:
    x, y = to_screen(slime[0], slime[1])
    facing = 1.0 if agent == "left" else -1.0  # towards the net
    tween = 0 if jump else None
    eye_x = x + facing * _SLIME_R * 0.5
    eye_y = y - _SLIME_R * 0.58
    bx, by = to_screen(ball[0], ball[1])
    dx, dy = bx - eye_x, by - eye_y
    distance = math.hypot(dx, dy) or 1.0
    reach = _EYE_R - _PUPIL_R - 0.5
    return [
        _body(agent, x, y, tween),
        Circle(
            id=f"{agent}_eye",
            x=eye_x,
            y=eye_y,
            radius=_EYE_R,
            fill="#ffffff",
            stroke=_OUTLINE[agent],
            line_width=1.5,
            depth=7,
            tween_ms=tween,
            owner=agent,
        ),
        Circle(
            id=f"{agent}_pupil",
            x=eye_x + dx / distance * reach,
            y=eye_y + dy / distance * reach,
            radius=_PUPIL_R,
            fill="#111827",
            depth=8,
            tween_ms=tween,
            owner=agent,
        ),
    ]


def _score(agent: str, points: int, lives: int, max_lives: int) -> list[Any]:
    left = agent == "left"
    x = 28 if left else WIDTH - 28
    objects: list[Any] = [
        Text(
            id=f"{agent}_score",
            x=x,
            y=14,
            text=str(points),
            font_size=40,
            color=COLOURS[agent],
            font_family="Trebuchet MS, Verdana, sans-serif",
            align="left" if left else "right",
            origin_x=0 if left else 1,
            origin_y=0,
            depth=10,
        ),
    ]
    for i in range(max_lives):
        cx = x + (i * 16 + 6 if left else -(i * 16 + 6))
        alive = i < lives
        objects.append(
            Circle(
                id=f"{agent}_life{i}",
                x=cx,
                y=68,
                radius=5,
                fill=COLOURS[agent] if alive else None,
                stroke=_OUTLINE[agent],
                line_width=1.5,
                alpha=1 if alive else 0.6,
                depth=10,
                tween_ms=0,
            )
        )
    return objects


_SCORES: dict[tuple[int, int, int], list[Any]] = {}


def _scores(lives: tuple[int, int], max_lives: int) -> list[Any]:
    """Both sides' points and lives; built once per distinct score (the same objects every frame
    cost the delta encoder one identity check)."""
    key = (lives[0], lives[1], max_lives)
    objects = _SCORES.get(key)
    if objects is None:
        if len(_SCORES) > 256:
            _SCORES.clear()
        objects = [
            *_score("left", max_lives - lives[1], lives[0], max_lives),
            *_score("right", max_lives - lives[0], lives[1], max_lives),
        ]
        _SCORES[key] = objects
    return objects


def draw(env: SlimeVolleyEnv) -> list[Any]:
    """The render objects of the current state of ``env``."""
    env = getattr(env, "unwrapped", env)
    ball = env.ball
    new_episode = env.steps == 0
    served = env.serve_delay == SERVE_DELAY_STEPS  # the ball just went back to the centre: no tween
    objects = list(_STATIC)
    for index, agent in enumerate(("left", "right")):
        objects += _slime(agent, env.slimes[index], ball, new_episode)
    objects += _scores((env.lives[0], env.lives[1]), env.lives_per_episode)
    bx, by = to_screen(ball[0], ball[1])
    _, ground_y = to_screen(0, GROUND_Y)
    tween = 0 if served else None
    height = max(0.0, ball[1] - GROUND_Y)
    objects.append(_shadow(bx, ground_y + 3, round(max(0.08, 0.35 - height * 0.02), 2), tween))
    objects.append(
        Circle(
            id="ball",
            x=bx,
            y=by,
            radius=_BALL_R,
            fill=_BALL,
            stroke=_BALL_EDGE,
            line_width=2,
            depth=9,
            tween_ms=tween,
        )
    )
    if ball[1] - BALL_RADIUS > VIEW_TOP:  # above the picture: show where it is
        objects.append(
            Polygon(
                id="ball_marker",
                x=bx,
                y=4,
                points=[(-7, 10), (7, 10), (0, 0)],
                fill=_BALL,
                stroke=_BALL_EDGE,
                line_width=1.5,
                depth=11,
                tween_ms=tween,
            )
        )
    return objects
