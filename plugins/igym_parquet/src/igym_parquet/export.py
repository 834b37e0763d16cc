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
_JSONL_CHUNK_ROWS = 50_000


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


def _jsonl_rows(path: Path) -> Iterator[list[dict[str, Any]]]:
    """The records of a JSONL file in chunks; lines torn by a crash are skipped, as the sink's reader does."""
    chunk: list[dict[str, Any]] = []
    for row in read_jsonl(path):
        if isinstance(row, dict):
            chunk.append(row)
        if len(chunk) >= _JSONL_CHUNK_ROWS:
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


def load_records(directory: Path, record_type: str, source: str) -> pa.Table | None:
    """The records of one type from one sink's files, as the sink stores them (see :mod:`codec`)."""
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
    if types <= {bool}:
        return pa.bool_()
    if types <= {int}:
        return pa.int64() if _INT64[0] <= min(values) and max(values) <= _INT64[1] else None
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
    fields, arrays, used = [], [], set[str]()
    for field, array in columns:
        name, suffix = field.name, 2
        while name in used:  # e.g. a top-level "info.x" next to info's key "x"
            name, suffix = f"{field.name}_{suffix}", suffix + 1
        used.add(name)
        fields.append(field.with_name(name))
        arrays.append(array)
    metadata = {"igym.record_type": record_type, "igym.export_format": FORMAT_VERSION}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


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


def _write_atomically(table: pa.Table, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary, compression="zstd")
    os.replace(temporary, path)


def export_experiment(
    directory: Path,
    *,
    out: Path | None = None,
    source: str = "auto",
    record_types: Sequence[str] = (),
    format: str = "parquet",
) -> list[ExportedDataset]:
    """Write one tidy Parquet file per record type of the experiment in ``directory``.

    Args:
        directory: the experiment's data directory, ``data/<experiment_id>``.
        out: where to write ``<record_type>.parquet``; ``directory / "export"`` by default.
        source: ``parquet`` or ``jsonl`` to read one sink's files only; ``auto`` prefers the parquet
            sink's files of a record type when an experiment used both sinks.
        record_types: export only these; every record type found by default.
        format: ``parquet`` (the only format for now).
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
        table = load_records(directory, record_type, chosen)
        if table is None or table.num_rows == 0:
            continue
        tidy_table = tidy(record_type, table)
        tidy_table = tidy_table.replace_schema_metadata(
            {**(tidy_table.schema.metadata or {}), b"igym.source": chosen.encode()}
        )
        path = out / f"{record_type}.parquet"
        _write_atomically(tidy_table, path)
        exported.append(ExportedDataset(record_type, chosen, tidy_table.num_rows, path))
    if not exported:
        raise NoDataError(
            f"{directory} has no records from the {source} sink. Run again with --source auto to export "
            "whichever sink's files there are."
        )
    return exported
