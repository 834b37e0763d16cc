"""The fast encoders on the hot paths write exactly what the reference encoders write.

JSONL lines go through msgspec when every value is of a type it writes as ``json.dumps`` does, and
frames are packed with msgspec instead of ``msgpack.packb``; the delta encoder compares objects with
compiled per-class code. Each must agree, byte for byte or field for field, with the plain version.
"""

from __future__ import annotations

import json
import math

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core.builtin.sink_jsonl import encode_line
from igym_core.protocol.server_messages import pack as _pack
from igym_core.rendering.delta import _changed_fields
from igym_core.rendering.objects import Circle, Rect, Text, wire_changes

_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
_row = st.dictionaries(st.text(max_size=10), _json, max_size=8)


def _reference_line(row: dict) -> bytes:
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(_row)
def test_jsonl_lines_are_byte_for_byte_what_json_dumps_writes(row):
    assert encode_line(row) == _reference_line(row)


def test_values_msgspec_would_write_differently_take_the_json_path():
    # Non-str keys, tuples and floats json writes its own way: same bytes as json.dumps anyway.
    for row in ({"a": (1, 2)}, {1: "x"}, {"x": 1e16}, {"x": 1e-7}, {"x": -0.0}, {"x": 123456789.125}):
        assert encode_line(row) == _reference_line(row)
    assert encode_line({"x": math.inf}) == b'{"x":Infinity}\n'  # as json.dumps (readable by json.loads)


_frame_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.binary(max_size=12)
)
_frame_value = st.recursive(
    _frame_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _frame_value, max_size=10))
def test_frames_are_byte_for_byte_what_msgpack_packb_writes(message):
    assert _pack(message) == msgpack.packb(message, use_bin_type=True)


_number = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.integers(-1000, 1000)


@st.composite
def _object_pair(draw):
    kind = draw(st.sampled_from([Rect, Circle, Text]))
    common = {
        "x": draw(_number),
        "y": draw(_number),
        "angle": draw(_number),
        "alpha": draw(st.floats(min_value=0, max_value=1)),
        "depth": draw(st.integers(-5, 5)),
    }
    if kind is Rect:
        extra = {"width": draw(st.floats(0, 500)), "height": draw(st.floats(0, 500))}
    elif kind is Circle:
        extra = {"radius": draw(st.floats(0, 500))}
    else:
        extra = {"text": draw(st.text(max_size=8))}
    old = kind(id="o", **common, **extra)
    changes = draw(st.dictionaries(st.sampled_from(sorted(common)), _number | st.just(0), max_size=3))
    if "alpha" in changes:
        changes["alpha"] = min(1, max(0, abs(changes["alpha"]) % 1))
    if kind is Rect:
        extra_changes = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "width": st.floats(0, 500),
                    "fill": st.sampled_from(["#ffffff", "#ef4444", None]),
                    "stroke": st.sampled_from(["#000000", None]),
                },
            )
        )
    elif kind is Circle:
        extra_changes = draw(st.fixed_dictionaries({}, optional={"radius": st.floats(0, 500)}))
    else:
        extra_changes = draw(st.fixed_dictionaries({}, optional={"text": st.text(max_size=8)}))
    new = kind(id="o", **{**common, **changes}, **{**extra, **extra_changes})
    return old, new


@settings(max_examples=300, deadline=None)
@given(_object_pair())
def test_compiled_wire_changes_agree_with_comparing_wire_dicts(pair):
    old, new = pair
    old_wire, new_wire = old.to_wire(), new.to_wire()
    assert wire_changes(old, new, old_wire, new_wire) == _changed_fields(old_wire, new_wire)


@settings(max_examples=300, deadline=None)
@given(_object_pair())
def test_incremental_wire_update_equals_converting_the_whole_object(pair):
    from igym_core.rendering.objects import wire_update

    old, new = pair
    old_wire, new_wire = old.to_wire(), new.to_wire()
    changed, wire = wire_update(old, new, old_wire)
    assert wire == new_wire
    assert changed == _changed_fields(old_wire, new_wire)
    assert old.to_wire() == old_wire  # the previous wire dict is not modified


# Every branch of the sink's exactness check (``_fast_ok_dict`` / ``_fast_ok_values``): values it
# must send to json.dumps (NaN, ±inf, floats printed with an exponent or at the 1e-4 / 1e16 bounds,
# int / float / str subclasses, bytes, sets, non-str keys) mixed with the step-row shapes it lets
# through (lists of key names, nested infos, tuples). The line must be json.dumps's either way.
class _Level(int):
    pass


class _Ratio(float):
    pass


class _Name(str):
    pass


_edge_float = (
    st.sampled_from(
        [0.0, -0.0, 1e-4, -1e-4, 9.999999e-5, -9.999999e-5, 1e16, -1e16, 9.999999999999998e15, 1e-7, 1e22]
    )
    | st.floats()
)
_edge_leaf = (
    _json_leaf
    | _edge_float
    | st.builds(_Level, st.integers(-5, 5))
    | st.builds(_Ratio, st.floats(allow_nan=False))
    | st.builds(_Name, st.text(max_size=4))
    | st.binary(max_size=4)
    | st.frozensets(st.integers(0, 3), max_size=2)
)
_edge_key = st.text(max_size=6) | st.integers(-3, 3) | st.booleans() | st.none()
_edge = st.recursive(
    _edge_leaf,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.lists(st.text(max_size=8), max_size=3)  # keys held
        | st.dictionaries(_edge_key, inner, max_size=4)
    ),
    max_leaves=20,
)


def _json_dumps_line(row: dict) -> bytes:
    from igym_core.data.interface import json_default

    line = json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=json_default)
    return (line + "\n").encode("utf-8")


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=10) | _edge_key, _edge, max_size=10))
def test_every_kind_of_value_is_written_as_json_dumps_writes_it(row):
    assert encode_line(row) == _json_dumps_line(row)


_EDGE_VALUES = [
    0.0, -0.0, 1e-4, -1e-4, 9.999999e-5, -9.999999e-5, 1e-5, 1e16, -1e16, 9.999999999999998e15,
    1.5e-7, 1e22, math.nan, math.inf, -math.inf, _Level(3), _Ratio(0.5), _Name("a"), b"\x01",
    frozenset({1}), (1, "a"), ["ArrowUp", 2.5e-5], {"a": 1e-5}, True, None, 2**70,
]  # fmt: skip


def test_edge_values_at_every_depth_are_written_as_json_dumps_writes_them():
    for value in _EDGE_VALUES:
        for row in (
            {"x": value},  # a row's own column
            {"keys_held": ["ArrowUp", value]},  # a list (after a string)
            {"x": [value]},
            {"x": (1, value)},
            {"info": {"a.b": value}},  # a nested dict
            {"x": [[value]]},
        ):
            assert encode_line(row) == _json_dumps_line(row), row
    for key in (1, True, None, 1.5, _Name("k")):
        assert encode_line({key: 1}) == _json_dumps_line({key: 1})
        assert encode_line({"info": {key: 1}}) == _json_dumps_line({"info": {key: 1}})
