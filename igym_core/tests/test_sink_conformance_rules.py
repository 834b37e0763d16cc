"""The sink conformance suite as a sink author meets it: rules stated in failures, housekeeping files.

The sink here is a small but real SQLite sink, as a plugin author would write one: SQLite in WAL
mode keeps ``-wal`` and ``-shm`` files next to the database while it is open and removes them on
close, which the "a refused write touches no path" rule sees unless the sink declares them.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from igym_core.data.interface import RECORD_TYPE_PATTERN, DataSink, SinkConfig, json_default
from igym_core.testing.sink_conformance import SinkConformance


@attrs.frozen(kw_only=True)
class SqliteSinkConfig(SinkConfig):
    kind: ClassVar[str] = "sqlite_example"


class SqliteSink(DataSink):
    kind: ClassVar[str] = "sqlite_example"
    config_type: ClassVar[type[SinkConfig]] = SqliteSinkConfig

    def __init__(self, config: SinkConfig, directory: Path) -> None:
        super().__init__(config, directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = sqlite3.connect(directory / "records.sqlite")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, type TEXT, row TEXT)")
        self._db.commit()
        self._pending: list[tuple[str, str]] = []

    def write(self, record_type: str, row: Mapping[str, Any]) -> None:
        if self._db is None:
            raise RuntimeError("the SQLite sink is closed")
        if not re.fullmatch(RECORD_TYPE_PATTERN, record_type):
            raise ValueError(f"record type {record_type!r} does not match {RECORD_TYPE_PATTERN}")
        self._pending.append((record_type, json.dumps(dict(row), default=json_default)))

    async def flush(self, *, durable: bool = False) -> None:
        if self._db is None:
            return
        self._db.executemany("INSERT INTO records (type, row) VALUES (?, ?)", self._pending)
        self._db.commit()
        self._pending.clear()

    def read(self, record_type: str) -> Iterator[dict[str, Any]]:
        query = "SELECT row FROM records WHERE type = ? ORDER BY id"
        if self._db is not None:
            rows = self._db.execute(query, (record_type,)).fetchall()
        else:
            with contextlib.closing(sqlite3.connect(self.directory / "records.sqlite")) as db:
                rows = db.execute(query, (record_type,)).fetchall()
        return iter([json.loads(row) for (row,) in rows])

    async def close(self) -> None:
        if self._db is not None:
            await self.flush(durable=True)
            self._db.close()
            self._db = None


class SqliteConformance(SinkConformance):  # not collected here: its checks are called one by one
    sink_type = SqliteSink
    config = SqliteSinkConfig()


class SqliteDeclaringHousekeeping(SqliteConformance):
    housekeeping_files = ("*.sqlite-wal", "*.sqlite-shm")


def test_undeclared_housekeeping_files_fail_rule_5_with_a_message_saying_how_to_declare_them(
    tmp_path: Path,
) -> None:
    with pytest.raises(AssertionError) as failed:
        SqliteConformance().test_record_types_that_could_name_other_paths_are_refused(tmp_path, "../escape")
    message = str(failed.value)
    assert message.startswith("rule 5: a refused write (record type '../escape')")
    assert "these vanished: ['exp/records.sqlite-shm', 'exp/records.sqlite-wal']" in message
    assert (
        "declare them on SqliteConformance: housekeeping_files = ('*.sqlite-shm', '*.sqlite-wal')" in message
    )


@pytest.mark.parametrize("record_type", ["../escape", "a/b", "Responses"])
def test_declared_housekeeping_files_pass_rule_5(tmp_path: Path, record_type: str) -> None:
    SqliteDeclaringHousekeeping().test_record_types_that_could_name_other_paths_are_refused(
        tmp_path, record_type
    )


def test_declared_patterns_hide_only_the_sinks_own_files(tmp_path: Path) -> None:
    directory = tmp_path / "exp"
    directory.mkdir()
    for name in ("records.sqlite", "records.sqlite-wal", "records.sqlite-shm"):
        (directory / name).write_text("")
    (tmp_path / "escape.sqlite-wal").write_text("")  # outside the sink's directory: never hidden
    seen = SqliteDeclaringHousekeeping().paths_under(tmp_path, directory)
    assert seen == {"exp", "exp/records.sqlite", "escape.sqlite-wal"}


def test_a_sink_that_keeps_writing_after_close_fails_rule_4(tmp_path: Path) -> None:
    class CarriesOn(SqliteSink):
        def write(self, record_type: str, row: Mapping[str, Any]) -> None:
            if self._db is not None:
                super().write(record_type, row)

    class Suite(SinkConformance):
        sink_type = CarriesOn
        config = SqliteSinkConfig()

    with pytest.raises(BaseException, match="rule 4: write after close must raise RuntimeError"):
        Suite().test_flushed_records_are_readable_before_close_and_after_reopening(tmp_path)
