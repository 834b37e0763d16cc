"""Render objects: validation, colour normalisation, the wire form (defaults left out, rounding) and back."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, ClassVar

import attrs
import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from igym_core.config.validators import FieldError
from igym_core.rendering.interface import RenderError
from igym_core.rendering.objects import (
    OBJECT_TYPES,
    Circle,
    Line,
    Polygon,
    Rect,
    RenderObject,
    Sprite,
    Text,
    object_from_wire,
    wire_defaults,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "game-protocol.md"

# --- strategies ----------------------------------------------------------------------------------

coords = st.floats(-1e7, 1e7, allow_nan=False)
sizes = st.floats(0, 1e5, allow_nan=False)
colours = st.from_regex(r"#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3}", fullmatch=True)
points = st.lists(st.tuples(coords, coords), max_size=8)


def common() -> dict[str, Any]:
    return {
        "id": st.text(min_size=1, max_size=12),
        "x": coords,
        "y": coords,
        "angle": st.floats(-720, 720),
        "alpha": st.floats(0, 1),
        "depth": st.integers(-100, 100),
        "permanent": st.booleans(),
        "tween_ms": st.none() | st.integers(0, 5000),
    }


render_objects = st.one_of(
    st.builds(Rect, **common(), width=sizes, height=sizes, fill=st.none() | colours,
              stroke=st.none() | colours, line_width=sizes),
    st.builds(Circle, **common(), radius=sizes, fill=st.none() | colours, stroke=st.none() | colours),
    st.builds(Line, **common(), points=points, color=colours, line_width=sizes),
    st.builds(Polygon, **common(), points=points, fill=st.none() | colours, stroke=st.none() | colours),
    st.builds(Text, **common(), text=st.text(max_size=20), font_size=sizes,
              font_family=st.sampled_from(["sans-serif", "monospace"]), color=colours,
              align=st.sampled_from(["left", "center", "right"]), origin_x=st.floats(0, 1),
              origin_y=st.floats(0, 1)),
    st.builds(Sprite, **common(), image=st.text(min_size=1, max_size=8),
              frame=st.none() | st.integers(0, 64) | st.text(max_size=6), width=st.none() | sizes,
              height=st.none() | sizes, tint=st.none() | colours, flip_x=st.booleans()),
)  # fmt: skip


# --- the wire form -------------------------------------------------------------------------------


def test_to_wire_sends_id_type_and_only_non_default_fields():
    assert Rect(id="r", width=10, height=20).to_wire() == {
        "id": "r",
        "object_type": "rect",
        "width": 10,
        "height": 20,
    }
    assert Circle(id="c", radius=3, x=5, alpha=0.5, fill=None, stroke="#000000").to_wire() == {
        "id": "c",
        "object_type": "circle",
        "radius": 3,
        "x": 5,
        "alpha": 0.5,
        "fill": None,
        "stroke": "#000000",
    }
    assert Sprite(id="s", image="car", tween_ms=0, frame=0, flip_x=True).to_wire() == {
        "id": "s",
        "object_type": "sprite",
        "image": "car",
        "tween_ms": 0,
        "frame": 0,
        "flip_x": True,
    }


def test_permanent_never_goes_on_the_wire():
    wire = Rect(id="wall", width=1, height=1, permanent=True).to_wire()
    assert "permanent" not in wire
    assert wire == Rect(id="wall", width=1, height=1).to_wire()


def test_numbers_are_rounded_and_integral_values_sent_as_ints():
    wire = Line(
        id="l", x=1.23456, y=2.0, angle=89.999, alpha=0.12345, points=[(0.004, 1.5), (3, 4.126)]
    ).to_wire()
    assert wire["x"] == 1.23
    assert wire["y"] == 2 and type(wire["y"]) is int
    assert wire["angle"] == 90 and type(wire["angle"]) is int
    assert wire["alpha"] == 0.123
    assert wire["points"] == [[0, 1.5], [3, 4.13]]
    assert [type(v) for p in wire["points"] for v in p] == [int, float, int, float]
    # A value that rounds to its default is left out like the default.
    assert "x" not in Rect(id="r", width=1, height=1, x=0.001).to_wire()


def test_numpy_numbers_become_plain_python_numbers():
    wire = Rect(id="r", x=np.float32(1.5), y=np.int64(3), depth=np.int64(2), width=1, height=1).to_wire()
    assert (type(wire["x"]), type(wire["y"]), type(wire["depth"])) == (float, int, int)
    msgpack.packb(wire)  # would raise for numpy scalars


def test_huge_numbers_stay_floats_msgpack_can_pack():
    wire = Rect(id="r", x=1e20, width=1, height=1).to_wire()
    assert wire["x"] == 1e20 and type(wire["x"]) is float
    msgpack.packb(wire)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_raise_a_render_error_naming_object_and_field(bad):
    with pytest.raises(RenderError, match=r"'ball' \(circle\) has x=(nan|inf|-inf).*finite number"):
        Circle(id="ball", radius=1, x=bad).to_wire()


@given(render_objects)
def test_wire_round_trip_is_exact_and_msgpack_safe(obj):
    wire = obj.to_wire()
    assert set(wire) >= {"id", "object_type"} and "permanent" not in wire
    decoded = msgpack.unpackb(msgpack.packb(wire))
    back = object_from_wire(decoded)
    assert type(back) is type(obj)
    assert back.to_wire() == wire
    # Every field that is left out is at its default; every field that is sent is not.
    defaults = wire_defaults(obj.object_type)
    for name, default in defaults.items():
        if name in wire:
            assert wire[name] != default
        else:
            assert getattr(back, name) == getattr(type(obj)(**_required(obj)), name)


def _required(obj: RenderObject) -> dict[str, Any]:
    required = {f.name for f in attrs.fields(type(obj)) if f.default is attrs.NOTHING}
    return {name: getattr(obj, name) for name in required}


@given(render_objects)
def test_objects_with_wire_precision_values_come_back_equal(obj):
    exact = object_from_wire(obj.to_wire())
    # Values already at wire precision survive a second trip unchanged, as equal objects.
    assert object_from_wire(exact.to_wire()) == exact
    assert hash(object_from_wire(exact.to_wire())) == hash(exact)


def test_object_from_wire_rejects_unknown_types_and_fields():
    with pytest.raises(RenderError, match=r"Unknown render object_type 'hexagon'.*rect"):
        object_from_wire({"id": "h", "object_type": "hexagon"})
    with pytest.raises(RenderError, match="Cannot build a rect"):
        object_from_wire({"id": "r", "object_type": "rect", "width": 1, "height": 1, "colour": "#fff"})


# --- construction and validation -----------------------------------------------------------------


def test_objects_are_frozen_hashable_and_compared_by_value():
    a = Polygon(id="p", points=[[0, 0], [1, 0], [1, 1]])
    b = Polygon(id="p", points=((0.0, 0.0), (1.0, 0.0), (1.0, 1.0)))
    assert a == b and hash(a) == hash(b)
    assert a.points == ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0))
    assert all(type(v) is float for p in a.points for v in p)
    assert a != Polygon(id="p", points=[[0, 0], [1, 0], [1, 2]])
    assert Rect(id="x", width=1, height=1) != Circle(id="x", radius=1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        a.x = 3  # type: ignore[misc]
    assert len({a, b}) == 1


def test_points_accept_numpy_arrays_and_reject_non_pairs():
    line = Line(id="l", points=np.array([[0, 1], [2, 3.5]]))
    assert line.points == ((0.0, 1.0), (2.0, 3.5))
    for bad in ([(0, 1, 2)], [0, 1], "ab", None, [("a", 1)]):
        with pytest.raises(FieldError, match=r"points: must be a sequence of \(x, y\) pairs") as info:
            Line(id="l", points=bad)
        assert info.value.field == "points"


@pytest.mark.parametrize(
    ("given_colour", "stored"),
    [("#FF8800", "#ff8800"), ("#f80", "#ff8800"), ("#ABC", "#aabbcc"), ("#0a0b0c", "#0a0b0c")],
)
def test_colours_are_normalised_to_lower_case_rrggbb(given_colour, stored):
    assert Rect(id="r", width=1, height=1, fill=given_colour).fill == stored
    assert Text(id="t", text="hi", color=given_colour).color == stored
    assert Sprite(id="s", image="car", tint=given_colour).tint == stored


@pytest.mark.parametrize("bad", ["red", "#ff88", "#gg0000", "ff0000", "#ff00001", "", 0xFF0000, ["#fff"]])
@pytest.mark.parametrize(
    ("cls", "field", "extra"),
    [
        (Rect, "fill", {"width": 1, "height": 1}),
        (Rect, "stroke", {"width": 1, "height": 1}),
        (Circle, "fill", {"radius": 1}),
        (Line, "color", {"points": []}),
        (Polygon, "stroke", {"points": []}),
        (Text, "color", {"text": ""}),
        (Sprite, "tint", {"image": "car"}),
    ],
)
def test_bad_colours_name_the_field_and_the_expected_form(cls, field, extra, bad):
    with pytest.raises(FieldError) as info:
        cls(id="o", **extra, **{field: bad})
    assert info.value.field == field
    assert "'#rrggbb'" in str(info.value) and repr(bad) in str(info.value)


def test_none_means_no_colour_only_where_that_makes_sense():
    assert Rect(id="r", width=1, height=1, fill=None, stroke=None).fill is None
    with pytest.raises(FieldError, match=r"color: .*'#rrggbb'") as info:
        Text(id="t", text="hi", color=None)
    assert "None for none" not in str(info.value)
    with pytest.raises(FieldError, match="or None for none"):
        Rect(id="r", width=1, height=1, fill="nope")


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Rect(id="", width=1, height=1), "id"),
        (lambda: Rect(id=3, width=1, height=1), "id"),
        (lambda: Rect(id="r", width=1, height=1, alpha=1.5), "alpha"),
        (lambda: Rect(id="r", width=1, height=1, alpha=-0.1), "alpha"),
        (lambda: Rect(id="r", width=1, height=1, alpha=math.nan), "alpha"),
        (lambda: Rect(id="r", width=1, height=1, tween_ms=-1), "tween_ms"),
        (lambda: Text(id="t", text="x", align="middle"), "align"),
        (lambda: Sprite(id="s", image=""), "image"),
    ],
)
def test_cheap_checks_raise_field_errors(make, field):
    with pytest.raises(FieldError) as info:
        make()
    assert info.value.field == field


def test_required_fields_are_required_and_text_is_stringified():
    with pytest.raises(TypeError):
        Rect(id="r", width=1)  # type: ignore[call-arg]
    assert Text(id="score", text=42).text == "42"


def test_the_base_class_cannot_be_drawn():
    with pytest.raises(TypeError, match=r"base class.*Rect, Circle"):
        RenderObject(id="x")


# --- consistency with docs/game-protocol.md ------------------------------------------------------


def test_defaults_are_the_ones_the_protocol_documents():
    base = {"x": 0, "y": 0, "angle": 0, "alpha": 1, "depth": 0, "tween_ms": None, "owner": None}
    filled = {"fill": "#ffffff", "stroke": None, "line_width": 1}
    expected = {
        "rect": base | filled,
        "circle": base | filled,
        "line": base | {"color": "#ffffff", "line_width": 2},
        "polygon": base | filled,
        "text": base
        | {
            "font_size": 16,
            "font_family": "sans-serif",
            "color": "#ffffff",
            "align": "left",
            "origin_x": 0,
            "origin_y": 0,
        },
        "sprite": base | {"frame": None, "width": None, "height": None, "tint": None, "flip_x": False},
    }
    assert set(OBJECT_TYPES) == set(expected)
    for object_type, defaults in expected.items():
        assert dict(wire_defaults(object_type)) == defaults, object_type


def test_the_protocol_table_lists_exactly_each_types_own_fields():
    doc = DOC.read_text()
    base = {f.name for f in attrs.fields(RenderObject)}
    for object_type, cls in OBJECT_TYPES.items():
        row = re.search(rf"^\| `{object_type}` \| (.*) \|$", doc, re.MULTILINE)
        assert row is not None, f"docs/game-protocol.md has no row for {object_type}"
        documented = set(re.findall(r"`([a-z_]+)`", row.group(1))) - {"x", "y"}
        own = {f.name for f in attrs.fields(cls)} - base
        assert documented == own, object_type
    for name in base - {"permanent", "id"}:
        assert f"`{name}`" in doc


def test_a_plugins_own_object_type_puts_its_plain_fields_on_the_wire():
    @attrs.frozen(kw_only=True)
    class Star(RenderObject):
        object_type: ClassVar[str] = "star"
        spikes: int = 5
        label: str = attrs.field()

    assert Star(id="s", label="north", spikes=7, permanent=True).to_wire() == {
        "id": "s",
        "object_type": "star",
        "spikes": 7,
        "label": "north",
    }
    assert Star(id="s", label="north").to_wire() == {"id": "s", "object_type": "star", "label": "north"}
