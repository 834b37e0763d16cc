"""``Recorder.write_many`` (a batch of rows in one call, as the pyodide runtime stores a batch of
steps) stores exactly what ``write`` row by row stores: the same lines in the same files, and the
same handling of rows a sink refuses."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core.builtin.sink_jsonl import JsonlSink, JsonlSinkConfig
from igym_core.data.recorder import Recorder

_STAMP = "2026-12-05T04:00:00.000Z"

_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()  # NaN, ±inf and exponent floats go through json.dumps
    | st.text(max_size=6)
    | st.binary(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
_rows = st.lists(st.dictionaries(st.text(max_size=8), _value, max_size=5), max_size=6)


class _StoppedClock:
    def now(self) -> str:
        return _STAMP


def _recorder(directory: Path) -> Recorder:
    recorder = Recorder([JsonlSink(JsonlSinkConfig(), directory)], base={"experiment_id": "e", "run_id": "r"})
    recorder._clock = _StoppedClock()  # type: ignore[assignment]  # both ways get the same timestamp
    return recorder


def _stored(recorder: Recorder, directory: Path) -> dict[str, bytes]:
    asyncio.run(recorder.sinks[0].close())
    return {path.name: path.read_bytes() for path in sorted(directory.glob("*.jsonl"))}


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.tuples(st.sampled_from(["steps", "state_hashes"]), _rows), max_size=5))
def test_write_many_stores_the_bytes_write_stores_row_by_row(tmp_path_factory: Any, batches: Any) -> None:
    one_by_one, together = tmp_path_factory.mktemp("write"), tmp_path_factory.mktemp("write_many")
    a, b = _recorder(one_by_one), _recorder(together)
    for record_type, rows in batches:
        for row in rows:
            a.write(record_type, row)
        b.write_many(record_type, rows)
    assert b.records_written == a.records_written
    assert _stored(b, together) == _stored(a, one_by_one)


def _circular() -> dict[str, Any]:
    row: dict[str, Any] = {"n": 2}
    row["self"] = row  # neither msgspec nor json.dumps can write it: the sink's write raises
    return row


def test_a_row_the_sink_refuses_is_kept_with_every_later_row_as_write_keeps_them(tmp_path: Path) -> None:
    rows = [{"n": 1, "x": 0.5}, _circular(), {"n": 3, "x": math.inf}]
    a, b = _recorder(tmp_path / "write"), _recorder(tmp_path / "write_many")
    for row in rows:
        a.write("steps", row)
    b.write_many("steps", rows)
    for recorder in (a, b):
        sink = recorder.sinks[0]
        health = recorder._health[id(sink)]
        assert [r["n"] for _type, r, _size in health.held] == [2, 3]  # kept, in order, for a retry
        assert sink._buffers["steps"] == [
            b'{"experiment_id":"e","run_id":"r","timestamp":"%s","n":1,"x":0.5}\n' % _STAMP.encode()
        ]
        assert not recorder.saving  # a required sink that refused a record counts as failing
    assert a._health[id(a.sinks[0])].held_bytes == b._health[id(b.sinks[0])].held_bytes


def test_an_empty_batch_writes_nothing(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    recorder.write_many("steps", [])
    assert recorder.records_written == 0
    assert _stored(recorder, tmp_path) == {}


# Values a caller may vouch for with ``json_plain=True`` (see ``DataSink.write_many``).
_plain_float = st.just(0.0) | st.floats(1e-4, 1e16, exclude_max=True).flatmap(
    lambda x: st.sampled_from([x, -x])
)
_plain_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _plain_float | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
_plain_rows = st.lists(st.dictionaries(st.text(max_size=8), _plain_value, max_size=5), max_size=6)


@settings(max_examples=80, deadline=None)
@given(batches=st.lists(st.tuples(st.sampled_from(["steps", "state_hashes"]), _plain_rows), max_size=5))
def test_json_plain_rows_are_stored_as_the_same_bytes_without_the_check(
    tmp_path_factory: Any, batches: Any
) -> None:
    one_by_one, vouched = tmp_path_factory.mktemp("write"), tmp_path_factory.mktemp("json_plain")
    a, b = _recorder(one_by_one), _recorder(vouched)
    for record_type, rows in batches:
        for row in rows:
            a.write(record_type, row)
        b.write_many(record_type, rows, json_plain=True)
    assert b.records_written == a.records_written
    assert _stored(b, vouched) == _stored(a, one_by_one)


def test_json_plain_reaches_only_a_sink_that_takes_it_and_skips_the_check(tmp_path: Path) -> None:
    """The JSONL sink skips its per-row check for rows vouched for (here a value it would otherwise
    have sent to json.dumps shows the skip); the vouching is not passed on when the recorder's own
    fields are not all strings."""
    row = {"x": 1e-05}  # not plain: json.dumps writes 1e-05, msgspec 0.00001
    recorder = _recorder(tmp_path / "a")
    recorder.write_many("steps", [row], json_plain=True)
    assert recorder.sinks[0]._buffers["steps"][0].endswith(b'"x":0.00001}\n')
    recorder.write_many("steps", [row])
    assert recorder.sinks[0]._buffers["steps"][1].endswith(b'"x":1e-05}\n')
    numbered = Recorder([JsonlSink(JsonlSinkConfig(), tmp_path / "b")], base={"experiment_id": "e", "n": 1})
    numbered.write_many("steps", [row], json_plain=True)
    assert numbered.sinks[0]._buffers["steps"][0].endswith(b'"x":1e-05}\n')
    for r in (recorder, numbered):
        asyncio.run(r.sinks[0].close())
