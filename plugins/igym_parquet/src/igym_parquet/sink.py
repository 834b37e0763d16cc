"""The ``parquet`` data sink: buffered, crash-safe, rotating Parquet files with one schema per record type.

``write`` appends the record to an in-memory list (it runs on the event loop for every record).
``flush`` hands the lists to a worker thread, which turns each record type's rows into one Arrow
record batch and appends it to that type's open Arrow IPC stream: from then on the records survive
``kill -9``. Besides the server's own flushes, the sink flushes itself every ``flush_interval_s``
(2 s by default), so no record waits longer than that in memory.

An open stream is closed when it reaches ``max_file_bytes`` or ``max_file_age_s``, when a column
appears or widens (its schema is fixed), and at ``close``. A closed stream becomes a Parquet file in
the background (written under a temporary name, synced, renamed; then the stream is deleted). At
start, streams that a crashed run left behind are converted up to their last complete batch. See
:mod:`igym_parquet.files` for the layout and :mod:`igym_parquet.codec` for how values are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import structlog

from igym_core.data.interface import RECORD_TYPE_PATTERN, DataSink, SinkConfig
from igym_core.errors import MissingDependencyError
from igym_parquet.config import ParquetSinkConfig

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ParquetSink"]

log = structlog.get_logger(__name__)

_RECORD_TYPE = re.compile(RECORD_TYPE_PATTERN)
SUBDIRECTORY = "parquet"


def _require_pyarrow() -> None:
    """Import pyarrow now, at start, rather than in the first flush while games are running.

    pyarrow's first ``pa.array`` imports pandas if it is installed (about a second): a flush that
    did it would hold the interpreter while participants play.
    """
    try:
        import pyarrow as pa
    except ImportError as exc:  # pragma: no cover - pyarrow is a dependency of igym-parquet
        raise MissingDependencyError("pip install igym-parquet") from exc
    pa.array([0])


class _OpenPart:
    """The open stream of one record type."""

    def __init__(self, path: Path, seq: int, kinds: dict[str, str]) -> None:
        import pyarrow as pa

        from igym_parquet import codec
        from igym_parquet.files import claim

        self.path = path
        self.seq = seq
        self.kinds = kinds
        self.schema = codec.schema_for(kinds)
        # Buffered, and flushed after each batch: one system call per batch (pyarrow writes each
        # buffer of each column separately), and every batch is the operating system's on return.
        self.file = open(path, "xb", buffering=1 << 20)  # noqa: SIM115 - closed in close()
        claim(self.file.fileno())  # a new file: nobody else holds it
        self.writer = pa.ipc.new_stream(self.file, self.schema)
        self.opened_at = time.monotonic()
        self.rows = 0
        self.unsynced = False

    def append(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)
        self.file.flush()
        self.rows += batch.num_rows
        self.unsynced = True

    @property
    def size(self) -> int:
        return self.file.tell()

    def sync(self) -> None:
        os.fsync(self.file.fileno())
        self.unsynced = False

    def close(self) -> None:
        try:
            self.writer.close()
            self.file.flush()
            self.sync()
        finally:
            self.file.close()


class _RecordType:
    """What the sink knows of one record type: the columns seen so far and the open part."""

    def __init__(self, directory: Path) -> None:
        from igym_parquet.files import list_parts

        self.directory = directory
        self.kinds: dict[str, str] = {}
        self.part: _OpenPart | None = None
        parts = list_parts(directory)
        self.next_seq = parts[-1].seq + 1 if parts else 1


class ParquetSink(DataSink):
    """Stores each record type as Parquet files under ``<data dir>/<experiment>/parquet/<record_type>/``."""

    kind: ClassVar[str] = "parquet"
    config_type: ClassVar[type[SinkConfig]] = ParquetSinkConfig

    def __init__(self, config: SinkConfig, directory: Path) -> None:
        super().__init__(config, directory)
        _require_pyarrow()
        from igym_parquet.files import recover

        self.settings = config if isinstance(config, ParquetSinkConfig) else ParquetSinkConfig()
        self.root = directory / SUBDIRECTORY
        self.root.mkdir(parents=True, exist_ok=True)
        self.token = os.urandom(3).hex()
        self._buffers: dict[str, list[Mapping[str, Any]]] = {}
        self._types: dict[str, _RecordType] = {}
        self._lock = asyncio.Lock()
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._inflight: asyncio.Future[Any] | None = None
        self._new_directories: set[Path] = set()
        recovered = sum(
            recover(entry, compression=self.settings.compression)
            for entry in sorted(self.root.iterdir())
            if entry.is_dir()
        )
        if recovered:
            log.warning("parquet_streams_recovered", directory=str(self.root), streams=recovered)

    # --- the event loop's side ----------------------------------------------------------------
    def write(self, record_type: str, row: Mapping[str, Any]) -> None:
        """Buffer one record (kept by reference until the next flush: do not change it afterwards)."""
        if self._closed:
            raise RuntimeError("write() after close()")
        rows = self._buffers.get(record_type)
        if rows is None:
            if not _RECORD_TYPE.match(record_type):
                raise ValueError(f"record type {record_type!r} must match {RECORD_TYPE_PATTERN}")
            rows = self._buffers[record_type] = []
        rows.append(row)
        if self._timer is None:
            self._arm_timer()

    def _arm_timer(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # written to outside an event loop: flushed when flush() is called
            return
        self._timer = loop.call_later(self.settings.flush_interval_s, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        if not self._closed:
            self._track(asyncio.get_running_loop().create_task(self.flush(), name="igym-parquet-flush"))

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A failed flush of the sink's own timer is retried and its rows kept; the server's
            # recorder reports a failing sink (once, then a reminder now and then), so one line
            # per retry would only bury that. A failed conversion is reported here.
            flush = task.get_name() == "igym-parquet-flush"
            (log.debug if flush else log.error)(
                "parquet_background_failed", task=task.get_name(), error=repr(task.exception())
            )

    async def flush(self, *, durable: bool = False) -> None:
        async with self._lock:
            await self._settle()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            pending = {rt: rows for rt, rows in self._buffers.items() if rows}
            if not pending and not durable and not self._aged():
                return  # the server flushes often, mostly with nothing new: no thread for that
            for record_type in pending:
                self._buffers[record_type] = []
            # The thread's work is a future of its own: if this flush is cancelled (a shutdown
            # cancels the recorder's flush task), the work still finishes, its closed streams are
            # still converted (_written), and close() and the next flush wait for it (_settle).
            work = asyncio.ensure_future(asyncio.to_thread(self._write_out, pending, durable))
            work.add_done_callback(self._written)
            self._inflight = work
            _finished, _unwritten, errors = await asyncio.shield(work)
        if errors:
            raise errors[0]

    async def settle(self) -> None:
        """Wait until every stream closed so far has become a Parquet file (conversions run in the
        background after a flush)."""
        await self._settle()
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def _settle(self) -> None:
        """Wait for a worker left running by a cancelled flush."""
        inflight = self._inflight
        if inflight is not None and not inflight.done():
            await asyncio.wait([inflight])

    def _written(self, work: asyncio.Future[Any]) -> None:
        """After the thread's work: convert the streams it closed, and keep rows it could not write."""
        if work.cancelled():
            return
        if work.exception() is not None:
            log.error("parquet_write_failed", error=repr(work.exception()))
            return
        finished, unwritten, _errors = work.result()
        for record_type, rows in unwritten.items():  # in front of what came since: order kept
            self._buffers[record_type] = [*rows, *self._buffers.get(record_type, [])]
        if unwritten and self._timer is None and not self._closed:
            self._arm_timer()
        for part in finished:
            self._track(asyncio.ensure_future(self._convert(part)))

    def _aged(self) -> bool:
        """Whether an open part is old enough to be closed (checked under the lock: no worker runs)."""
        now = time.monotonic()
        return any(
            state.part is not None and now - state.part.opened_at >= self.settings.max_file_age_s
            for state in self._types.values()
        )

    async def _convert(self, stream: Path) -> None:
        from igym_parquet.files import convert_stream

        started = time.monotonic()
        parquet = await asyncio.to_thread(convert_stream, stream, compression=self.settings.compression)
        log.info(
            "parquet_file_closed",
            path=str(parquet) if parquet else None,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )

    async def close(self) -> None:
        """Flush durably, close every open part, and wait until each is a Parquet file."""
        if self._closed:
            return
        self._closed = True  # from now on write() raises, and the timer flushes no more
        await self.flush(durable=True)
        async with self._lock:
            await self._settle()
            finished = await asyncio.to_thread(self._close_all)
        for stream in finished:
            await self._convert(stream)
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # --- the worker thread's side -------------------------------------------------------------
    def _record_type(self, record_type: str) -> _RecordType:
        state = self._types.get(record_type)
        if state is None:
            directory = self.root / record_type
            if not directory.is_dir():
                directory.mkdir(parents=True, exist_ok=True)
                self._new_directories.add(self.root)
            state = self._types[record_type] = _RecordType(directory)
        return state

    def _open(self, state: _RecordType) -> _OpenPart:
        from igym_parquet.files import Part

        _parquet, stream = Part.names(state.next_seq, self.token)
        part = _OpenPart(state.directory / stream, state.next_seq, dict(state.kinds))
        state.next_seq += 1
        self._new_directories.add(state.directory)
        return part

    def _write_out(
        self, pending: dict[str, list[Mapping[str, Any]]], durable: bool
    ) -> tuple[list[Path], dict[str, list[Mapping[str, Any]]], list[Exception]]:
        """Append each record type's rows as one batch.

        Returns the streams closed on the way, the rows of record types that could not be written
        (a full disk, say; they are kept for the next flush), and those errors.
        """
        from igym_parquet import codec
        from igym_parquet.files import fsync_directory

        finished: list[Path] = []
        unwritten: dict[str, list[Mapping[str, Any]]] = {}
        errors: list[Exception] = []
        for record_type, rows in pending.items():
            try:
                state = self._record_type(record_type)
                try:
                    kinds, batch = self._batch(state, codec.normalise_keys(rows))
                except Exception:  # one bad record must not lose the others: find it, drop it, say so
                    kept = self._storable(rows)
                    if not kept:
                        continue
                    kinds, batch = self._batch(state, kept)
                if state.part is not None and (
                    kinds != state.part.kinds  # a new column, or a wider one: a new schema
                    or time.monotonic() - state.part.opened_at >= self.settings.max_file_age_s
                ):
                    finished.append(self._finish(state))
                state.kinds = kinds
                if state.part is None:
                    state.part = self._open(state)
                state.part.append(batch)
                if state.part.size >= self.settings.max_file_bytes:
                    finished.append(self._finish(state))
            except Exception as exc:  # the batch did not (fully) reach the stream: keep the rows
                unwritten[record_type] = rows
                errors.append(exc)
                broken = self._types.get(record_type)
                if broken is not None and broken.part is not None:
                    # The stream may end in a torn batch now: close it as it is (it is converted up
                    # to its last complete batch) and start a new one for the retry.
                    path = broken.part.path
                    with contextlib.suppress(Exception):
                        broken.part.file.close()
                    broken.part = None
                    finished.append(path)
                # Kept and retried; the flush raises it, and the recorder reports a failing sink.
                log.debug(
                    "parquet_batch_not_written", record_type=record_type, rows=len(rows), error=repr(exc)
                )
        now = time.monotonic()
        for state in self._types.values():
            if state.part is not None and now - state.part.opened_at >= self.settings.max_file_age_s:
                finished.append(self._finish(state))
        if durable:  # every batch appended since the last durable flush, not only this one's
            for state in self._types.values():
                if state.part is not None and state.part.unsynced:
                    state.part.sync()
            for directory in self._new_directories:
                fsync_directory(directory)
            self._new_directories.clear()
        return finished, unwritten, errors

    @staticmethod
    def _batch(
        state: _RecordType, rows: Sequence[Mapping[str, Any]]
    ) -> tuple[dict[str, str], pa.RecordBatch]:
        """The kinds the record type has once ``rows`` are added, and the rows as a batch of those kinds."""
        from igym_parquet import codec

        columns = codec.collect_columns(rows)
        kinds = codec.merge_kinds(state.kinds, codec.kinds_of(columns))
        if codec.ABSENT_COLUMN not in kinds and codec.needs_absent(rows, kinds):
            kinds[codec.ABSENT_COLUMN] = "absent"
        same = state.part is not None and state.part.kinds == kinds
        schema = state.part.schema if same and state.part is not None else codec.schema_for(kinds)
        return kinds, codec.build_batch(rows, kinds, schema, columns)

    @staticmethod
    def _storable(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The rows that can be stored (keys made strings); each other row is logged and dropped."""
        from igym_parquet import codec

        kept: list[Mapping[str, Any]] = []
        for row in rows:
            try:
                (normal,) = codec.normalise_keys([row])
                kinds = codec.infer_kinds([normal])
                codec.build_batch([normal], kinds, codec.schema_for(kinds))
            except Exception as exc:
                log.error("parquet_record_dropped", error=repr(exc), keys=sorted(map(str, row))[:20])
                continue
            kept.append(normal)
        return kept

    def _finish(self, state: _RecordType) -> Path:
        part = state.part
        assert part is not None
        state.part = None
        part.close()
        return part.path

    def _close_all(self) -> list[Path]:
        return [self._finish(state) for state in self._types.values() if state.part is not None]

    # --- reading ------------------------------------------------------------------------------
    def read(self, record_type: str) -> Iterator[dict[str, Any]]:
        """Every record of one type on disk, oldest first: Parquet files, then open or crashed streams."""
        if not _RECORD_TYPE.match(record_type):
            raise ValueError(f"record type {record_type!r} must match {RECORD_TYPE_PATTERN}")
        return read_records(self.root / record_type)


def read_records(directory: Path) -> Iterator[dict[str, Any]]:
    """The records in one record type's directory of a parquet sink, oldest first."""
    from igym_parquet import codec
    from igym_parquet.files import list_parts, read_part_batches

    for part in list_parts(directory):
        for batch in read_part_batches(part):
            yield from codec.batch_rows(batch)
