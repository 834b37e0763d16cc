"""Records to Arrow and back: exact values, stable and widening schemas, absent keys."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core.testing.sink_conformance import assert_same_records
from igym_parquet import codec

_leaves = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text()
_json = st.recursive(
    _leaves,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from("abcdef") | st.text(max_size=5)
_rows = st.lists(st.dictionaries(_keys, _json, max_size=5), max_size=10)


def _round_trip(rows: list[dict]) -> list[dict]:
    kinds = codec.infer_kinds(rows)
    if codec.needs_absent(rows, kinds):
        kinds[codec.ABSENT_COLUMN] = "absent"
    batch = codec.build_batch(rows, kinds, codec.schema_for(kinds))
    return list(codec.batch_rows(batch))


@settings(max_examples=100, deadline=None)
@given(rows=_rows)
def test_any_json_rows_round_trip_exactly(rows):
    assert_same_records(_round_trip(rows), rows)


@settings(max_examples=40, deadline=None)
@given(first=_rows, second=_rows)
def test_tables_of_different_schemas_unify_without_losing_values(first, second):
    tables = []
    for rows in (first, second):
        kinds = codec.infer_kinds(rows)
        if codec.needs_absent(rows, kinds):
            kinds[codec.ABSENT_COLUMN] = "absent"
        tables.append(pa.Table.from_batches([codec.build_batch(rows, kinds, codec.schema_for(kinds))]))
    unified = codec.unify_tables(tables)
    assert unified is not None
    assert_same_records(codec.batch_rows(unified), first + second)


def test_kinds_are_native_where_they_can_be_and_json_otherwise():
    rows = [
        {
            "i": 1,
            "f": 1.5,
            "b": True,
            "s": "x",
            "n": None,
            "keys": ["a"],
            "obs": [0.5],
            "empty": [],
            "nested": [[1]],
            "d": {"k": 1},
            "mixed": 1,
            "big": 2**64,
            "mixed_list": [1],
        },
        {
            "i": 2,
            "f": 2.0,
            "b": False,
            "s": "y",
            "n": None,
            "keys": None,
            "obs": [1.0, None],
            "empty": [],
            "nested": None,
            "d": None,
            "mixed": "one",
            "big": 1,
            "mixed_list": [1.5],
        },
    ]
    kinds = codec.infer_kinds(rows)
    assert kinds == {
        "i": "int",
        "f": "float",
        "b": "bool",
        "s": "string",
        "n": "null",
        "keys": "list_string",
        "obs": "list_float",
        "empty": "list_null",
        "nested": "json",
        "d": "json",
        "mixed": "json",
        "big": "json",
        "mixed_list": "json",
    }
    schema = codec.schema_for(kinds)
    assert schema.field("i").type == pa.int64() and schema.field("f").type == pa.float64()
    assert schema.field("keys").type == pa.list_(pa.string())
    assert schema.field("d").metadata == codec.JSON_METADATA
    assert [codec.field_kind(f) for f in schema] == list(kinds.values())
    assert _round_trip(rows) == rows


def test_kinds_only_widen():
    assert codec.merge_kinds({"a": "null", "b": "int"}, {"a": "float", "b": "int", "c": "string"}) == {
        "a": "float",
        "b": "int",
        "c": "string",
    }
    assert codec.merge_kinds({"a": "int"}, {"a": "float"}) == {"a": "json"}  # 1 and 1.0 stay apart
    assert codec.merge_kinds({"a": "json"}, {"a": "int"}) == {"a": "json"}
    assert codec.merge_kinds({"a": "string"}, {"a": "null"}) == {"a": "string"}
    assert codec.merge_kinds({"a": "list_null"}, {"a": "list_string"}) == {"a": "list_string"}
    assert codec.merge_kinds({"a": "list_float"}, {"a": "list_null"}) == {"a": "list_float"}
    assert codec.merge_kinds({"a": "list_float"}, {"a": "list_int"}) == {"a": "json"}


def test_a_missing_key_comes_back_missing_and_a_none_comes_back_none():
    rows = [{"a": 1, "b": None}, {"a": 2}, {}]
    assert _round_trip(rows) == rows
    kinds = codec.infer_kinds(rows)
    assert codec.needs_absent(rows, kinds)
    assert not codec.needs_absent([{"a": 1}], {"a": "int"})


def test_nan_infinities_numpy_tuples_and_bytes_are_stored_as_the_jsonl_sink_stores_them():
    rows = [
        {
            "f": float("nan"),
            "g": float("inf"),
            "np": np.float32(0.5),
            "arr": np.arange(3),
            "t": (1, 2),
            "raw": b"\x01\xff",
            "nested": {"x": [float("-inf")]},
        }
    ]
    (back,) = _round_trip(rows)
    assert math.isnan(back["f"]) and back["g"] == math.inf
    assert back["np"] == 0.5 and back["arr"] == [0, 1, 2] and back["t"] == [1, 2] and back["raw"] == "01ff"
    assert back["nested"] == {"x": [-math.inf]}


def test_non_string_keys_become_the_strings_json_makes_of_them():
    assert codec.normalise_keys([{1: "a", 2.5: "b", None: "c", False: "d", "s": "e"}]) == [
        {"1": "a", "2.5": "b", "null": "c", "false": "d", "s": "e"}
    ]
    with pytest.raises(TypeError):
        codec.normalise_keys([{(1, 2): "tuple keys cannot be JSON"}])


def test_the_absent_column_name_is_reserved():
    with pytest.raises(ValueError, match="reserved"):
        codec.infer_kinds([{codec.ABSENT_COLUMN: 1}])
