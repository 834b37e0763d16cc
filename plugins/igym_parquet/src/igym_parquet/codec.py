"""Records (JSON-compatible dicts) to Arrow record batches and back, without losing anything.

Each top-level key of a record type becomes a column, of one of these kinds:

===============  ======================  =======================================================
kind             Arrow type              holds
===============  ======================  =======================================================
``null``         ``null``                only ``None`` so far
``bool``         ``bool``                ``True``/``False``
``int``          ``int64``               integers of 64 bits
``float``        ``float64``             floats (NaN and infinities included)
``string``       ``string``              text
``list_null``    ``list<null>``          lists, all empty (or of ``None``) so far
``list_<kind>``  ``list<...>``           lists of one scalar kind: ``list_string`` (``keys_held``,
                                         ``participant_ids``), ``list_float`` (an
                                         ``observation``), ``list_int``, ``list_bool``
``json``         ``string`` + metadata   anything else: dicts, nested lists, integers beyond 64
                                         bits, and any column whose values have more than one
                                         type (``1`` and ``"one"``, or ``1`` and ``1.5``), each
                                         value as JSON text
===============  ======================  =======================================================

A column's kind only widens (``null`` to anything, ``list_null`` to any list kind, anything else
to ``json``), so a file's schema is stable once its columns have been seen. A ``json`` column's
field carries the metadata ``igym.encoding = json``. Reading gives back exactly the values
written: ``1`` stays an int and ``1.0`` a float, and a key that a record did not have is absent
again rather than ``None``; the column ``_igym_absent`` (a list of column names, only in files that
need it) says which keys a row lacked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from igym_core.data.interface import json_default

__all__ = [
    "ABSENT_COLUMN",
    "JSON_METADATA",
    "Columns",
    "Kinds",
    "batch_rows",
    "build_batch",
    "collect_columns",
    "column_kind",
    "conform_column",
    "dumps",
    "field_kind",
    "infer_kinds",
    "kinds_of",
    "merge_kinds",
    "needs_absent",
    "normalise_keys",
    "prepare_table",
    "schema_for",
    "unify_tables",
]

#: The column that lists, per row, the columns the record did not have (``None``: it had them all).
ABSENT_COLUMN = "_igym_absent"
JSON_METADATA = {b"igym.encoding": b"json"}

#: Column name -> kind, in the order the columns were first seen. ``ABSENT_COLUMN`` has kind ``absent``.
Kinds = dict[str, str]
#: Column name -> the values of each row (``None`` where a row lacks the key), first-seen order.
Columns = dict[str, list[Any]]

_SCALAR_TYPES: dict[str, pa.DataType] = {
    "null": pa.null(),
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
}
_ARROW_TYPES: dict[str, pa.DataType] = {
    **_SCALAR_TYPES,
    **{f"list_{kind}": pa.list_(arrow_type) for kind, arrow_type in _SCALAR_TYPES.items()},
    "json": pa.string(),
    "absent": pa.list_(pa.string()),
}
_KIND_OF_TYPE: dict[type, str] = {bool: "bool", float: "float", str: "string", int: "int"}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NONE = type(None)


# One encoder for every value: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=json_default)


def dumps(value: Any) -> str:
    """``value`` as JSON text; NaN and infinities are kept (``NaN``, ``Infinity``, as Python writes them)."""
    return _ENCODER.encode(value)


def _json_key(key: Any) -> str:
    """A non-string key as ``json.dumps`` writes it (``1`` -> ``"1"``, ``True`` -> ``"true"``).

    Keys that JSON cannot have (tuples, ...) raise ``TypeError``, as they do in the JSONL sink.
    """
    return next(iter(json.loads(json.dumps({key: 0}))))


def normalise_keys(rows: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """The rows, with every key a string (rebuilt only if some key is not one)."""
    names: dict[Any, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    if all(type(key) is str for key in names):
        return rows
    return [{k if type(k) is str else _json_key(k): value for k, value in row.items()} for row in rows]


def collect_columns(rows: Sequence[Mapping[str, Any]]) -> Columns:
    """The values of each column of ``rows`` (whose keys are strings), read once."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    if ABSENT_COLUMN in names:
        raise ValueError(f"{ABSENT_COLUMN!r} is reserved by the parquet sink; rename that key")
    return {name: [row.get(name) for row in rows] for name in names}


def _scalar_kind(types: set[type], values: Iterable[Any]) -> str | None:
    """The kind of scalars of one of ``types`` (``None`` excluded); ``None`` if they need JSON."""
    if len(types) != 1:
        return None
    (kind_type,) = types
    kind = _KIND_OF_TYPE.get(kind_type)
    if kind == "int":
        present = [v for v in values if v is not None]
        if min(present) < _INT64_MIN or max(present) > _INT64_MAX:
            return None
    return kind


def column_kind(values: Sequence[Any]) -> str:
    """The narrowest kind that holds every value of ``values`` exactly."""
    types = set(map(type, values))
    types.discard(_NONE)
    if not types:
        return "null"
    if types == {list}:
        items: list[Any] = []
        for value in values:
            if value is not None:
                items.extend(value)
        item_types = set(map(type, items))
        item_types.discard(_NONE)
        if not item_types:
            return "list_null"
        item_kind = _scalar_kind(item_types, items)
        return "json" if item_kind is None else f"list_{item_kind}"
    return _scalar_kind(types, values) or "json"


def kinds_of(columns: Columns) -> Kinds:
    return {name: column_kind(values) for name, values in columns.items()}


def infer_kinds(rows: Sequence[Mapping[str, Any]]) -> Kinds:
    """The kinds of the columns of ``rows`` (whose keys are strings), in the order first seen."""
    return kinds_of(collect_columns(rows))


def _merge_kind(before: str, kind: str) -> str:
    if kind == before or kind == "null":
        return before
    if before == "null":
        return kind
    if before == "list_null" and kind.startswith("list_"):
        return kind
    if kind == "list_null" and before.startswith("list_"):
        return before
    return "json"


def merge_kinds(old: Kinds, new: Kinds) -> Kinds:
    """The kinds that hold both: new columns are appended, differing kinds widen (see the module)."""
    merged = dict(old)
    for name, kind in new.items():
        before = merged.get(name)
        merged[name] = kind if before is None else _merge_kind(before, kind)
    if ABSENT_COLUMN in merged:  # always last, where a reader of the raw files looks least
        merged[ABSENT_COLUMN] = merged.pop(ABSENT_COLUMN)
    return merged


def needs_absent(rows: Sequence[Mapping[str, Any]], kinds: Kinds) -> bool:
    """Whether a file of ``kinds`` needs ``ABSENT_COLUMN`` for ``rows``: some row lacks a column.

    A file without data columns needs it too: the column carries the number of rows.
    """
    width = len(kinds) - (ABSENT_COLUMN in kinds)
    return width == 0 or any(len(row) != width for row in rows)


def schema_for(kinds: Kinds, metadata: Mapping[bytes, bytes] | None = None) -> pa.Schema:
    fields = [
        pa.field(name, _ARROW_TYPES[kind], metadata=JSON_METADATA if kind == "json" else None)
        for name, kind in kinds.items()
    ]
    return pa.schema(fields, metadata=metadata)


def field_kind(field: pa.Field) -> str | None:
    """The kind of a column written by this module; ``None`` for a type it does not write."""
    if field.name == ABSENT_COLUMN:
        return "absent"
    if field.metadata and field.metadata.get(b"igym.encoding") == b"json":
        return "json"
    for kind, arrow_type in _ARROW_TYPES.items():
        if kind not in ("json", "absent") and field.type == arrow_type:
            return kind
    return None


def build_batch(
    rows: Sequence[Mapping[str, Any]], kinds: Kinds, schema: pa.Schema, columns: Columns | None = None
) -> pa.RecordBatch:
    """One record batch of ``schema`` (made by :func:`schema_for` from ``kinds``) holding ``rows``.

    ``kinds`` must hold every column of ``rows`` with a kind at least as wide as the rows need
    (:func:`merge_kinds` of the file's kinds and :func:`infer_kinds` of the rows). ``columns``:
    :func:`collect_columns` of ``rows``, if the caller has it already.
    """
    if columns is None:
        columns = collect_columns(rows)
    arrays = []
    width = len(kinds) - (ABSENT_COLUMN in kinds)
    for name, kind in kinds.items():
        values = columns.get(name)
        if kind == "absent":
            absent = [
                None if len(row) == width else [n for n in kinds if n != ABSENT_COLUMN and n not in row]
                for row in rows
            ]
            arrays.append(pa.array(absent, type=_ARROW_TYPES["absent"]))
        elif kind == "null" or values is None:
            arrays.append(pa.nulls(len(rows), type=_ARROW_TYPES[kind]))
        elif kind == "json":
            encoded = [None if value is None else dumps(value) for value in values]
            arrays.append(pa.array(encoded, type=pa.string()))
        else:
            arrays.append(pa.array(values, type=_ARROW_TYPES[kind]))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def batch_rows(batch: pa.RecordBatch | pa.Table) -> Iterator[dict[str, Any]]:
    """The records of a batch (or table) written by :func:`build_batch`, exactly as they were written."""
    names: list[str] = []
    columns: list[list[Any]] = []
    absent: list[Any] | None = None
    for index, field in enumerate(batch.schema):
        values = batch.column(index).to_pylist()
        kind = field_kind(field)
        if kind == "absent":
            absent = values
            continue
        if kind == "json":
            values = [None if value is None else json.loads(value) for value in values]
        names.append(field.name)
        columns.append(values)
    if not names:
        yield from ({} for _ in range(batch.num_rows))
        return
    for position, values in enumerate(zip(*columns, strict=True)):
        row = dict(zip(names, values, strict=True))
        if absent is not None and absent[position]:
            for name in absent[position]:
                row.pop(name, None)
        yield row


def _convert_column(column: pa.ChunkedArray | pa.Array, kind: str, target: str, length: int) -> Any:
    if kind == target:
        return column
    if kind == "null" or column.null_count == length:
        return pa.nulls(length, type=_ARROW_TYPES[target])
    if kind == "absent" or _merge_kind(kind, target) != target:
        raise ValueError(f"cannot convert a {kind} column to {target}")
    values = column.to_pylist()
    if target != "json":  # list_null to another list kind: empty lists
        return pa.array(values, type=_ARROW_TYPES[target])
    return pa.array([None if v is None else dumps(v) for v in values], type=pa.string())


def unify_tables(tables: Iterable[pa.Table]) -> pa.Table | None:
    """One table of every table's rows (in order), columns unified as :func:`merge_kinds` does.

    Tables whose columns this module did not write are converted through Python values.
    """
    prepared: list[tuple[pa.Table, Kinds]] = []
    merged: Kinds = {}
    for table in tables:
        table, kinds = prepare_table(table)
        prepared.append((table, kinds))
        merged = merge_kinds(merged, kinds)
    if not prepared:
        return None
    if any(set(kinds) != set(merged) for _, kinds in prepared) and ABSENT_COLUMN not in merged:
        merged[ABSENT_COLUMN] = "absent"  # some tables lack columns that others have
    schema = schema_for(merged)
    unified = []
    for table, kinds in prepared:
        length = table.num_rows
        columns = []
        for name, target in merged.items():
            if name == ABSENT_COLUMN:
                columns.append(_absent_for(table, kinds, merged, length))
            else:
                columns.append(conform_column(table, kinds, name, target))
        unified.append(pa.Table.from_arrays(columns, schema=schema))
    return pa.concat_tables(unified)


def prepare_table(table: pa.Table) -> tuple[pa.Table, Kinds]:
    """``table`` with its foreign columns (types this module does not write) as JSON text, and its kinds."""
    kinds: Kinds = {}
    for field in table.schema:
        kind = field_kind(field)
        if kind is None:  # a foreign column: store it as JSON text, which holds anything
            index = table.schema.get_field_index(field.name)
            values = table.column(index).to_pylist()
            encoded = pa.array([None if v is None else dumps(v) for v in values], type=pa.string())
            json_field = pa.field(field.name, pa.string(), metadata=JSON_METADATA)
            table = table.set_column(index, json_field, encoded)
            kind = "json"
        kinds[field.name] = kind
    return table, kinds


def conform_column(table: pa.Table, kinds: Kinds, name: str, target: str) -> Any:
    """Column ``name`` of a :func:`prepare_table` ``table`` (of ``kinds``) as kind ``target``, which holds it.

    Nulls if ``table`` lacks the column: what :func:`unify_tables` puts in its rows.
    """
    length = table.num_rows
    if name not in kinds:
        return pa.nulls(length, type=_ARROW_TYPES[target])
    return _convert_column(table.column(name), kinds[name], target, length)


def _absent_for(table: pa.Table, kinds: Kinds, merged: Kinds, length: int) -> Any:
    """The absent column of ``table`` once it has every column of ``merged``."""
    missing = [name for name in merged if name not in kinds and name != ABSENT_COLUMN]
    own = table.column(ABSENT_COLUMN).to_pylist() if ABSENT_COLUMN in kinds else [None] * length
    if not missing:
        return pa.array(own, type=_ARROW_TYPES["absent"])
    return pa.array([(row or []) + missing for row in own], type=_ARROW_TYPES["absent"])
