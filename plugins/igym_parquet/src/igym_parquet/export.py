"""``igym export``: an experiment's records, from either sink, as one tidy Parquet file per record type.

Input: an experiment's data directory (``data/<experiment_id>``) as the server wrote it: the JSONL
sink's ``<record_type>.jsonl`` files and/or the parquet sink's ``parquet/<record_type>/`` parts
(open or crashed streams included, read up to their last complete batch; nothing is changed).

Output: ``<out>/<record_type>.parquet`` (``out`` is ``data/<experiment_id>/export`` unless told),
one row per record, in the order the records were written, with one type per column:

- a column whose values all have one type keeps it; ints mixed with floats become floats;
- a list of scalars of one type becomes a list column (``keys_held``, ``participant_ids``, a flat
  ``observation``);
- ``info``, ``params`` and ``returns`` (dicts of named values) are spread into one column per key:
  ``info.position``, ``params.PROLIFIC_PID``, ``returns.agent_0``;
- anything else (other dicts, nested lists, values of mixed types) is JSON text; such columns carry
  the field metadata ``igym.encoding = json``;
- text columns of UTC times (``timestamp`` and names ending in ``_at``, ISO 8601 with ``Z``)
  become timestamps (milliseconds, UTC);
- ``responses`` keep ``value`` as JSON text always (answers differ in type from question to
  question) and add ``value_number`` (the answer if it is a number) and ``value_text`` (the answer
  if it is text).

See docs/data.md for the record types and the snippet that loads the result.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from igym_core.builtin.sink_jsonl import read_jsonl
from igym_core.data.interface import RECORD_TYPE_PATTERN
from igym_parquet import codec
from igym_parquet.errors import ExportError, NoDataError
from igym_parquet.files import list_parts, read_part_table
from igym_parquet.sink import SUBDIRECTORY

__all__ = [
    "EXPANDED_COLUMNS",
    "ExportedDataset",
    "export_experiment",
    "find_record_types",
    "load_records",
    "tidy",
]

#: Dict-valued columns spread into one column per key (``info.position``).
EXPANDED_COLUMNS = frozenset({"info", "params", "returns"})
SOURCES = ("auto", "jsonl", "parquet")
FORMAT_VERSION = "1"
_RECORD_TYPE = re.compile(RECORD_TYPE_PATTERN)
#: Records per batch that ``igym export`` reads, tidies and writes at a time: its memory is bounded by
#: a batch (and by the largest open stream of the parquet sink), never by the size of a file.
BATCH_ROWS = 10_000
#: Tidy batches are written together as one row group (small row groups compress worse) of this many
#: batches, or fewer if they reach this many bytes (in Arrow's memory).
ROW_GROUP_BATCHES = 8
ROW_GROUP_BYTES = 32 * 1024 * 1024


@attrs.frozen
class ExportedDataset:
    record_type: str
    source: str
    """``jsonl`` or ``parquet``: which sink's files the records came from."""
    rows: int
    path: Path


# --- finding and loading ------------------------------------------------------------------------


def find_record_types(directory: Path) -> dict[str, list[str]]:
    """Record type -> the sinks (``parquet``, ``jsonl``) that hold records of it in ``directory``."""
    found: dict[str, list[str]] = {}
    parquet_root = directory / SUBDIRECTORY
    if parquet_root.is_dir():
        for entry in sorted(parquet_root.iterdir()):
            if entry.is_dir() and _RECORD_TYPE.match(entry.name) and list_parts(entry):
                found.setdefault(entry.name, []).append("parquet")
    for path in sorted(directory.glob("*.jsonl")):
        if _RECORD_TYPE.match(path.stem) and path.stat().st_size > 0:
            found.setdefault(path.stem, []).append("jsonl")
    return dict(sorted(found.items()))


def _jsonl_rows(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[list[dict[str, Any]]]:
    """The records of a JSONL file in chunks; lines torn by a crash are skipped, as the sink's reader does."""
    chunk: list[dict[str, Any]] = []
    for row in read_jsonl(path):
        if isinstance(row, dict):
            chunk.append(row)
        if len(chunk) >= batch_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _rows_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    rows = codec.normalise_keys(rows)
    kinds = codec.infer_kinds(rows)
    if codec.needs_absent(rows, kinds):
        kinds[codec.ABSENT_COLUMN] = "absent"
    return pa.Table.from_batches([codec.build_batch(rows, kinds, codec.schema_for(kinds))])


def _record_chunks(directory: Path, record_type: str, source: str, batch_rows: int) -> Iterator[pa.Table]:
    """The records of one type from one sink's files, a bounded chunk at a time, as the sink stores them.

    :func:`codec.unify_tables` of the chunks is :func:`load_records`. A closed Parquet part is read
    ``batch_rows`` at a time; an open stream of the parquet sink is read whole (it is one part, at most
    the sink's ``max_file_bytes``) and handed on ``batch_rows`` at a time.
    """
    if source == "parquet":
        for part in list_parts(directory / SUBDIRECTORY / record_type):
            if part.stream:
                table = read_part_table(part)
                if table is not None:  # its columns count even without rows
                    yield from (
                        table.slice(at, batch_rows) for at in range(0, table.num_rows or 1, batch_rows)
                    )
                continue
            file = pq.ParquetFile(part.path)
            schema = file.schema_arrow
            if file.metadata.num_rows == 0:
                yield schema.empty_table()
                continue
            for batch in file.iter_batches(batch_size=batch_rows):
                yield pa.Table.from_batches([batch], schema=schema)
    elif source == "jsonl":
        for rows in _jsonl_rows(directory / f"{record_type}.jsonl", batch_rows):
            yield _rows_table(rows)
    else:
        raise ValueError(f"unknown source {source!r}")


def load_records(directory: Path, record_type: str, source: str) -> pa.Table | None:
    """The records of one type from one sink's files, as the sink stores them (see :mod:`codec`).

    The whole table: ``igym export`` streams instead (:func:`export_experiment`); this is for small
    data and for checking the streamed export against the whole-table one.
    """
    if source == "parquet":
        tables = (read_part_table(part) for part in list_parts(directory / SUBDIRECTORY / record_type))
        return codec.unify_tables(table for table in tables if table is not None)
    if source == "jsonl":
        path = directory / f"{record_type}.jsonl"
        return codec.unify_tables(_rows_table(rows) for rows in _jsonl_rows(path))
    raise ValueError(f"unknown source {source!r}")


# --- tidying ------------------------------------------------------------------------------------

_INT64 = (-(2**63), 2**63 - 1)
_TIMESTAMP = pa.timestamp("ms", tz="UTC")


def _scalar_type(types: set[type], values: Sequence[Any]) -> pa.DataType | None:
    """The Arrow type of scalars of ``types`` (``values`` excludes ``None``), or ``None`` if there is none."""
    if types <= {int}:
        return _scalar_type_in(types, min(values), max(values))
    return _scalar_type_in(types, 0, 0)


def _scalar_type_in(types: set[type], low: int, high: int) -> pa.DataType | None:
    """:func:`_scalar_type` of values whose ints (if ``types`` is ``{int}``) lie in ``low..high``."""
    if types <= {bool}:
        return pa.bool_()
    if types <= {int}:
        return pa.int64() if _INT64[0] <= low and high <= _INT64[1] else None
    if types <= {int, float}:
        return pa.float64()
    if types <= {str}:
        return pa.string()
    return None


def _json_field(name: str) -> pa.Field:
    return pa.field(name, pa.string(), metadata=codec.JSON_METADATA)


def _json_array(values: Sequence[Any]) -> pa.Array:
    return pa.array([None if v is None else codec.dumps(v) for v in values], type=pa.string())


def _typed_column(name: str, values: Sequence[Any]) -> tuple[pa.Field, pa.Array]:
    """A column of the narrowest type that holds ``values``; JSON text if they have none in common."""
    present = [v for v in values if v is not None]
    types = set(map(type, present))
    if not types:
        return pa.field(name, pa.null()), pa.nulls(len(values))
    if types == {list}:
        items = [item for value in present for item in value if item is not None]
        item_types = set(map(type, items))
        item_type = pa.null() if not item_types else _scalar_type(item_types, items)
        if item_type is not None:
            list_type = pa.list_(item_type)
            if pa.types.is_floating(item_type):
                values = [None if v is None else [None if i is None else float(i) for i in v] for v in values]
            return pa.field(name, list_type), pa.array(values, type=list_type)
    else:
        scalar = _scalar_type(types, present)
        if scalar is not None:
            if pa.types.is_floating(scalar):
                values = [None if v is None else float(v) for v in values]
            return pa.field(name, scalar), pa.array(values, type=scalar)
    return _json_field(name), _json_array(values)


def _python_values(column: pa.ChunkedArray, kind: str | None) -> list[Any]:
    values = column.to_pylist()
    if kind == "json":
        return [None if v is None else json.loads(v) for v in values]
    return values


def _response_value_columns(values: Sequence[Any]) -> list[tuple[pa.Field, pa.Array]]:
    numbers = [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None for v in values]
    texts = [v if isinstance(v, str) else None for v in values]
    return [
        (_json_field("value"), _json_array(values)),
        (pa.field("value_number", pa.float64()), pa.array(numbers, type=pa.float64())),
        (pa.field("value_text", pa.string()), pa.array(texts, type=pa.string())),
    ]


def _is_time_column(name: str) -> bool:
    return name == "timestamp" or name.endswith("_at")


def _as_timestamps(field: pa.Field, column: Any) -> tuple[pa.Field, Any]:
    """A text column of ISO 8601 UTC times as timestamps; unchanged if any value is not one."""
    try:
        converted = pc.cast(column, _TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return field, column
    return pa.field(field.name, _TIMESTAMP), converted


def tidy(record_type: str, table: pa.Table) -> pa.Table:
    """The tidy form of a record type's table (as :func:`load_records` returns it); see the module."""
    columns: list[tuple[pa.Field, Any]] = []
    for index, field in enumerate(table.schema):
        kind = codec.field_kind(field)
        column = table.column(index)
        if kind == "absent":
            continue  # a missing key and a None value are both null in a table
        if record_type == "responses" and field.name == "value":
            columns.extend(_response_value_columns(_python_values(column, kind)))
        elif kind == "string" and _is_time_column(field.name):
            columns.append(_as_timestamps(field, column))
        elif kind != "json":
            columns.append((pa.field(field.name, column.type), column))
        else:
            values = _python_values(column, kind)
            if field.name in EXPANDED_COLUMNS and all(v is None or isinstance(v, dict) for v in values):
                keys: dict[str, None] = {}
                for value in values:
                    keys.update(dict.fromkeys(value or ()))
                for key in keys:
                    sub = [None if value is None else value.get(key) for value in values]
                    columns.append(_typed_column(f"{field.name}.{key}", sub))
            else:
                columns.append(_typed_column(field.name, values))
    fields = _unique_names([field for field, _ in columns])
    arrays = [array for _, array in columns]
    metadata = {"igym.record_type": record_type, "igym.export_format": FORMAT_VERSION}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


# --- streaming: the same tidy table, a batch at a time -------------------------------------------

_PYTHON_TYPES = {"bool": bool, "int": int, "float": float, "string": str}


@attrs.define
class _ValueTypes:
    """What :func:`_typed_column` chooses a column's type from, gathered batch by batch.

    The types of the present values; for lists, the types of their present items; the range of the
    ints (of the values, and of the items) that decides whether int64 holds them.
    """

    types: set[type] = attrs.field(factory=set)
    item_types: set[type] = attrs.field(factory=set)
    ints: tuple[int, int] | None = None
    item_ints: tuple[int, int] | None = None

    @staticmethod
    def _widen(known: tuple[int, int] | None, low: int, high: int) -> tuple[int, int]:
        return (low, high) if known is None else (min(known[0], low), max(known[1], high))

    def add_values(self, values: Sequence[Any]) -> None:
        present = [v for v in values if v is not None]
        types = set(map(type, present))
        self.types |= types
        if int in types:
            ints = [v for v in present if type(v) is int]
            self.ints = self._widen(self.ints, min(ints), max(ints))
        if list in types:
            items = [item for value in present if type(value) is list for item in value if item is not None]
            item_types = set(map(type, items))
            self.item_types |= item_types
            if int in item_types:
                ints = [i for i in items if type(i) is int]
                self.item_ints = self._widen(self.item_ints, min(ints), max(ints))

    def add_column(self, column: Any, kind: str) -> None:
        """A column of a kind other than ``json``, read in Arrow (its values are what Python would see)."""
        if kind == "null" or column.null_count == len(column):
            return
        item_kind = kind.removeprefix("list_")
        if item_kind == kind:
            self.types.add(_PYTHON_TYPES[kind])
            if kind == "int":
                low, high = pc.min_max(column).values()
                self.ints = self._widen(self.ints, low.as_py(), high.as_py())
            return
        self.types.add(list)
        if item_kind == "null":
            return
        items = pc.list_flatten(column)
        if items.null_count == len(items):
            return
        self.item_types.add(_PYTHON_TYPES[item_kind])
        if item_kind == "int":
            low, high = pc.min_max(items).values()
            self.item_ints = self._widen(self.item_ints, low.as_py(), high.as_py())

    def arrow_type(self) -> pa.DataType | None:
        """The column's type as :func:`_typed_column` chooses it; ``None`` for JSON text."""
        if not self.types:
            return pa.null()
        if self.types == {list}:
            if not self.item_types:
                return pa.list_(pa.null())
            low, high = self.item_ints or (0, 0)
            item_type = _scalar_type_in(self.item_types, low, high)
            return None if item_type is None else pa.list_(item_type)
        low, high = self.ints or (0, 0)
        return _scalar_type_in(self.types, low, high)


def _typed_batch_column(
    name: str, arrow_type: pa.DataType | None, values: Sequence[Any]
) -> tuple[pa.Field, Any]:
    """:func:`_typed_column` of a batch of a column whose type was chosen from all its values."""
    if arrow_type is None:
        return _json_field(name), _json_array(values)
    if arrow_type == pa.null():
        return pa.field(name, pa.null()), pa.nulls(len(values))
    if pa.types.is_list(arrow_type) and pa.types.is_floating(arrow_type.value_type):
        values = [None if v is None else [None if i is None else float(i) for i in v] for v in values]
    elif pa.types.is_floating(arrow_type):
        values = [None if v is None else float(v) for v in values]
    return pa.field(name, arrow_type), pa.array(values, type=arrow_type)


@attrs.define
class _ColumnSurvey:
    """One column of a record type over all its batches: what :func:`tidy` decides from the whole column."""

    values: _ValueTypes = attrs.field(factory=_ValueTypes)
    keys: dict[str, _ValueTypes] | None = None
    """For :data:`EXPANDED_COLUMNS`: each key of the dict values, first seen first."""
    timestamps: bool = True
    """For time columns: every value so far is an ISO 8601 UTC time."""


@attrs.define
class _Survey:
    """The first, cheap pass over a record type's batches: the kinds of the columns and their types."""

    record_type: str
    kinds: codec.Kinds = attrs.field(factory=dict)
    columns: dict[str, _ColumnSurvey] = attrs.field(factory=dict)
    rows: int = 0

    def add(self, table: pa.Table, kinds: codec.Kinds) -> None:
        """One prepared (:func:`codec.prepare_table`) batch."""
        self.kinds = codec.merge_kinds(self.kinds, kinds)
        self.rows += table.num_rows
        for name, kind in kinds.items():
            if kind == "absent" or (self.record_type == "responses" and name == "value"):
                continue
            survey = self.columns.setdefault(name, _ColumnSurvey())
            column = table.column(name)
            if kind == "string" and _is_time_column(name) and survey.timestamps:
                try:
                    pc.cast(column, _TIMESTAMP)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    survey.timestamps = False
            if kind != "json":
                survey.values.add_column(column, kind)
                continue
            values = _python_values(column, kind)
            survey.values.add_values(values)
            if name in EXPANDED_COLUMNS:
                survey.keys = survey.keys if survey.keys is not None else {}
                dicts = [v for v in values if isinstance(v, dict)]
                found: dict[str, None] = {}
                for value in dicts:
                    found.update(dict.fromkeys(value))
                for key in found:
                    sub = [value.get(key) for value in dicts]
                    survey.keys.setdefault(key, _ValueTypes()).add_values(sub)


@attrs.frozen
class _Plan:
    """How each batch of a record type becomes the tidy table's columns, decided from the :class:`_Survey`."""

    record_type: str
    kinds: codec.Kinds
    survey: _Survey
    schema: pa.Schema

    def columns(self, table: pa.Table, kinds: codec.Kinds) -> list[tuple[pa.Field, Any]]:
        """The tidy columns of one prepared batch (its own names: the schema renames clashes)."""
        columns: list[tuple[pa.Field, Any]] = []
        for name, kind in self.kinds.items():
            if kind == "absent":
                continue
            column = codec.conform_column(table, kinds, name, kind)
            if self.record_type == "responses" and name == "value":
                columns.extend(_response_value_columns(_python_values(column, kind)))
                continue
            survey = self.survey.columns.get(name, _ColumnSurvey())
            field = codec.schema_for({name: kind}).field(0)
            if kind == "string" and _is_time_column(name):
                columns.append(_as_timestamps(field, column) if survey.timestamps else (field, column))
            elif kind != "json":
                columns.append((pa.field(name, column.type), column))
            else:
                values = _python_values(column, kind)
                if name in EXPANDED_COLUMNS and survey.values.types <= {dict}:
                    for key, value_types in (survey.keys or {}).items():
                        sub = [None if value is None else value.get(key) for value in values]
                        columns.append(_typed_batch_column(f"{name}.{key}", value_types.arrow_type(), sub))
                else:
                    columns.append(_typed_batch_column(name, survey.values.arrow_type(), values))
        return columns

    @classmethod
    def of(cls, survey: _Survey, source: str) -> _Plan:
        empty = pa.table({})
        plan = cls(survey.record_type, survey.kinds, survey, pa.schema([]))
        fields = [field for field, _ in plan.columns(empty, {})]
        metadata = {
            "igym.record_type": survey.record_type,
            "igym.export_format": FORMAT_VERSION,
            "igym.source": source,
        }
        schema = pa.schema(_unique_names(fields), metadata=metadata)
        return cls(survey.record_type, survey.kinds, survey, schema)

    def batch(self, table: pa.Table, kinds: codec.Kinds) -> pa.Table:
        arrays = [array for _, array in self.columns(table, kinds)]
        return pa.Table.from_arrays(arrays, schema=self.schema)


def _unique_names(fields: Sequence[pa.Field]) -> list[pa.Field]:
    renamed, used = [], set[str]()
    for field in fields:
        name, suffix = field.name, 2
        while name in used:  # e.g. a top-level "info.x" next to info's key "x"
            name, suffix = f"{field.name}_{suffix}", suffix + 1
        used.add(name)
        renamed.append(field.with_name(name))
    return renamed


def _export_streamed(
    directory: Path, record_type: str, source: str, path: Path, batch_rows: int
) -> int | None:
    """Write the tidy table of one record type to ``path`` (atomically), a batch at a time; its rows.

    Two passes over the files: the first decides each column's type from all its values (as
    :func:`tidy` does from the whole table), the second tidies and writes each batch.
    """
    survey = _Survey(record_type)
    for table in _record_chunks(directory, record_type, source, batch_rows):
        survey.add(*codec.prepare_table(table))
    if survey.rows == 0:  # no record at all: no file, as before
        return None
    plan = _Plan.of(survey, source)
    temporary = path.with_name(f".{path.name}.tmp")
    rows = 0  # not survey.rows: records without any column make a table of no columns and no rows
    try:
        with pq.ParquetWriter(temporary, plan.schema, compression="zstd") as writer:
            group: list[pa.Table] = []  # tidy batches gathered into one row group: small ones compress worse
            for table in _record_chunks(directory, record_type, source, batch_rows):
                if table.num_rows:
                    batch = plan.batch(*codec.prepare_table(table))
                    group.append(batch)
                    rows += batch.num_rows
                    if len(group) >= ROW_GROUP_BATCHES or sum(t.nbytes for t in group) >= ROW_GROUP_BYTES:
                        writer.write_table(pa.concat_tables(group))
                        group = []
            if group:
                writer.write_table(pa.concat_tables(group))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return rows


# --- the command's work -------------------------------------------------------------------------


def _experiments_under(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    entries = sorted(directory.iterdir())
    return [entry.name for entry in entries if entry.is_dir() and find_record_types(entry)]


def _check_directory(directory: Path) -> dict[str, list[str]]:
    if not directory.is_dir():
        parent = directory.parent
        nearby = _experiments_under(parent)
        hint = (
            f" The experiments with data in {parent} are: {', '.join(nearby)}."
            if nearby
            else " Give the directory the server wrote: data/<experiment_id> (data is `igym run --data-dir`)."
        )
        raise NoDataError(f"There is no directory {directory}.{hint}")
    found = find_record_types(directory)
    if not found:
        nearby = _experiments_under(directory)
        if nearby:
            examples = ", ".join(f"`igym export {directory / name}`" for name in nearby[:3])
            raise NoDataError(
                f"{directory} holds experiments, not one experiment's records. Export one: {examples}."
            )
        raise NoDataError(
            f"{directory} holds no igym records: no <record_type>.jsonl files and no "
            f"{SUBDIRECTORY}/<record_type>/ Parquet parts. Give the directory of one experiment, "
            "data/<experiment_id>; it fills as participants take part."
        )
    return found


def _choose_source(record_type: str, available: list[str], source: str) -> str | None:
    if source == "auto":
        return "parquet" if "parquet" in available else "jsonl"
    return source if source in available else None


def export_experiment(
    directory: Path,
    *,
    out: Path | None = None,
    source: str = "auto",
    record_types: Sequence[str] = (),
    format: str = "parquet",
    batch_rows: int = BATCH_ROWS,
) -> list[ExportedDataset]:
    """Write one tidy Parquet file per record type of the experiment in ``directory``.

    Args:
        directory: the experiment's data directory, ``data/<experiment_id>``.
        out: where to write ``<record_type>.parquet``; ``directory / "export"`` by default.
        source: ``parquet`` or ``jsonl`` to read one sink's files only; ``auto`` prefers the parquet
            sink's files of a record type when an experiment used both sinks.
        record_types: export only these; every record type found by default.
        format: ``parquet`` (the only format for now).
        batch_rows: records read, tidied and written at a time (memory is bounded by a batch).
    """
    if format != "parquet":
        raise ExportError(f"igym export writes Parquet only; got --format {format!r}. Use --format parquet.")
    if source not in SOURCES:
        raise ExportError(f"--source must be one of {', '.join(SOURCES)}; got {source!r}.")
    directory = Path(directory)
    found = _check_directory(directory)
    wanted = list(record_types) or list(found)
    unknown = [rt for rt in wanted if rt not in found]
    if unknown:
        raise NoDataError(
            f"{directory} has no records of type {', '.join(map(repr, unknown))}. It has: {', '.join(found)}."
        )
    out = Path(out) if out is not None else directory / "export"
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; give --out a directory (it is created if missing).")
    out.mkdir(parents=True, exist_ok=True)
    exported = []
    for record_type in wanted:
        chosen = _choose_source(record_type, found[record_type], source)
        if chosen is None:
            continue  # only the other sink has this record type
        path = out / f"{record_type}.parquet"
        rows = _export_streamed(directory, record_type, chosen, path, batch_rows)
        if rows is not None:
            exported.append(ExportedDataset(record_type, chosen, rows, path))
    if not exported:
        raise NoDataError(
            f"{directory} has no records from the {source} sink. Run again with --source auto to export "
            "whichever sink's files there are."
        )
    return exported
