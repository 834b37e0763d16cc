"""The built-in JSONL data sink: one ``<record_type>.jsonl`` file per record type, appended to.

Writes are buffered in memory and handed to the operating system at every flush (at least every
500 ms by default, from a worker thread so that the event loop never waits for the disk), so a
server killed with ``kill -9`` loses at most the records of the last flush interval; a durable
flush also fsyncs. A write that fails (a full disk, no file descriptors left) keeps its lines in
memory for the next flush, so records wait, in order, until the disk takes them again; memory
then grows with them. A write that stops part way cuts the file back to its last complete line,
so each line in a file is one complete JSON object. A crash mid-append can still cut the last
line short: at start, the sink moves such a fragment to ``<record_type>.jsonl.torn`` (see
:func:`repair_torn_tail`), and until then readers skip it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import fcntl
import functools
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs
import msgspec
import structlog

from igym_core.data.interface import RECORD_TYPE_PATTERN, DataSink, SinkConfig, json_default
from igym_core.plugins.markers import hookimpl

__all__ = ["JsonlSink", "JsonlSinkConfig", "read_jsonl", "repair_torn_tail"]

_RECORD_TYPE = re.compile(RECORD_TYPE_PATTERN)
log = structlog.get_logger(__name__)


@hookimpl(trylast=True)
def igym_register_data_sinks() -> list[type[DataSink]]:
    return [JsonlSink]


@attrs.frozen(kw_only=True)
class JsonlSinkConfig(SinkConfig):
    """Select with ``sinks=(JsonlSinkConfig(),)`` (the default when an experiment names no sink)."""

    kind: ClassVar[str] = "jsonl"


# json.dumps costs about 8 µs for a step record, which a server writes for every agent at every tick;
# msgspec encodes the same record in under 1 µs. It is used only for rows whose every value it writes
# byte for byte as json.dumps does: strings, bools, None, ints, floats that Python
# prints without an exponent, and lists, tuples and string-keyed dicts of those. Anything else
# (NaN, 1e-05, bytes, sets, numpy values, datetimes, ...) goes through json.dumps as before, so the
# files are the same whichever path wrote a line.
_FAST = msgspec.json.Encoder()  # it writes ints of any size as json.dumps does


def _fast_ok(container: list[Any] | tuple[Any, ...] | dict[Any, Any]) -> bool:
    """Whether msgspec writes ``container`` (a list, tuple or dict) exactly as json.dumps does."""
    if type(container) is dict:
        return _fast_ok_dict(container)
    return _fast_ok_values(container)


# The two checks below run for every record (every agent at every tick): one pass over a dict's
# items, the leaf types compared by identity in the order step rows hold them most, floats
# compared without calling abs(), and lists of strings (ids, keys held) checked without a call.
def _fast_ok_dict(container: dict[Any, Any]) -> bool:
    for key, value in container.items():
        if type(key) is not str:
            return False
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            continue
        if kind is float:
            # Also false for NaN and ±inf, which json.dumps writes as NaN / Infinity.
            if not (1e-4 <= value < 1e16 or value == 0.0 or -1e16 < value <= -1e-4):
                return False
        elif kind is list or kind is tuple:
            for item in value:
                if type(item) is not str:
                    if not _fast_ok_values(value):
                        return False
                    break
        elif kind is dict:
            if not _fast_ok_dict(value):
                return False
        else:
            return False
    return True


def _fast_ok_values(values: list[Any] | tuple[Any, ...]) -> bool:
    for value in values:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            continue
        if kind is float:
            if not (1e-4 <= value < 1e16 or value == 0.0 or -1e16 < value <= -1e-4):
                return False
        elif kind is list or kind is tuple:
            if not _fast_ok_values(value):
                return False
        elif kind is dict:
            if not _fast_ok_dict(value):
                return False
        else:
            return False
    return True


def encode_line(row: Mapping[str, Any]) -> bytes:
    """One JSONL line (with its newline) for ``row``, as ``json.dumps`` writes it."""
    if type(row) is dict and _fast_ok_dict(row):
        return _FAST.encode(row) + b"\n"
    line = json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=json_default)
    return line.encode("utf-8") + b"\n"


def read_jsonl(path: Path) -> Iterator[Any]:
    """The records of a JSONL file as the sink wrote them, skipping what a crash left behind.

    A last line without its newline was cut short by a crash and is not read (everything before it
    is intact); a torn line that a later run ended with a newline does not parse and is skipped.
    """
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def _unwritten(fd: int, start: int, lines: list[bytes], written: int) -> list[bytes]:
    """After a write of ``lines`` at offset ``start`` stopped after ``written`` bytes: cut the file
    back to the end of the last whole line and return the lines to write again.

    If the file cannot be cut (it should always can: cutting frees space), the rest of the torn
    line is returned first instead, so that the retry completes it: a fragment is then left only
    until the next flush, and nothing is lost or written twice either way.
    """
    whole = done = 0
    for line in lines:
        if done + len(line) > written:
            break
        done += len(line)
        whole += 1
    if done == written:
        return lines[whole:]
    try:
        os.ftruncate(fd, start + done)
    except OSError:
        log.exception("jsonl_torn_line_not_cut", offset=start + done)
        return [lines[whole][written - done :], *lines[whole + 1 :]]
    return lines[whole:]


def _claim(directory: Path) -> int | None:
    """An exclusive lock on ``directory`` (flock on the directory itself: no file to create),
    held until the sink closes; ``None`` if another open sink holds it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def repair_torn_tail(path: Path) -> dict[str, Any] | None:
    """If ``path`` ends in a torn line (a crash or power cut mid-append), move that fragment to
    ``<name>.torn`` and cut the file back to its last complete line; return what was done.

    The ``.torn`` file gets one JSON line per repair (appended): the file, the offset the
    fragment started at, its length, when, and the fragment itself (as text, and exactly, in
    base64). Returns ``None`` if the file ends with a complete line, or if it cannot be repaired
    (logged; readers still skip the fragment).
    """
    try:
        with path.open("r+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return None
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return None
            position, cut = size, 0
            while position > 0:
                step = min(1 << 16, position)
                position -= step
                handle.seek(position)
                newline = handle.read(step).rfind(b"\n")
                if newline >= 0:
                    cut = position + newline + 1
                    break
            handle.seek(cut)
            fragment = handle.read()
            torn = path.with_name(path.name + ".torn")
            entry = {
                "file": path.name,
                "offset": cut,
                "length": len(fragment),
                "repaired_at": dt.datetime.now(dt.UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "fragment": fragment.decode("utf-8", errors="replace"),
                "fragment_base64": base64.b64encode(fragment).decode("ascii"),
            }
            with torn.open("ab") as out:  # kept first: a crash now leaves it in both, not in neither
                out.write(encode_line(entry))
                out.flush()
                os.fsync(out.fileno())
            handle.truncate(cut)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        log.exception("jsonl_torn_line_not_repaired", path=str(path))
        return None
    log.warning(
        "jsonl_torn_line_repaired",
        path=str(path),
        offset=cut,
        length=len(fragment),
        moved_to=str(torn),
        detail="the last line was cut short by a crash; readers never see it now",
    )
    return {
        "record_type": path.stem,
        "file": path.name,
        "offset": cut,
        "length": len(fragment),
        "moved_to": torn.name,
    }


class JsonlSink(DataSink):
    kind: ClassVar[str] = "jsonl"
    config_type: ClassVar[type[SinkConfig]] = JsonlSinkConfig

    def __init__(self, config: SinkConfig, directory: Path) -> None:
        super().__init__(config, directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        # Only the one sink writing this directory may cut a torn tail: in another process's
        # files, the "torn" line may be a write still under way.
        self._claim = _claim(self.directory)
        if self._claim is not None:
            for path in sorted(self.directory.glob("*.jsonl")):
                repair = repair_torn_tail(path)
                if repair is not None:
                    self.repairs.append(repair)
        else:
            log.warning(
                "jsonl_directory_shared",
                directory=str(self.directory),
                detail="another sink (another igym process?) is writing here; torn lines are not repaired",
            )
        self._buffers: dict[str, list[bytes]] = {}
        self._fds: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Future[None] | None = None
        self._closed = False
        # Bytes of encoded lines not in their files yet: buffered, or in a write-out under way or
        # failed (see buffered_bytes). Changed on the event loop only (_put_back runs there).
        self._unstored = 0

    def path_for(self, record_type: str) -> Path:
        return self.directory / f"{record_type}.jsonl"

    def write(self, record_type: str, row: Mapping[str, Any]) -> None:
        if self._closed:
            raise RuntimeError("write() after close()")
        lines = self._buffers.get(record_type)
        if lines is None:
            if not _RECORD_TYPE.match(record_type):
                raise ValueError(f"record type {record_type!r} must match {RECORD_TYPE_PATTERN}")
            lines = self._buffers[record_type] = []
        line = encode_line(row)
        lines.append(line)
        self._unstored += len(line)

    writes_many: ClassVar[bool] = True
    takes_json_plain: ClassVar[bool] = True

    def write_many(
        self, record_type: str, rows: Sequence[Mapping[str, Any]], *, json_plain: bool = False
    ) -> None:
        """Buffer ``rows`` as ``write`` would one by one; every line is encoded before any is
        buffered, so a row that cannot be encoded leaves the buffer as it was. ``json_plain``: the
        caller vouches that the rows hold only values msgspec writes byte for byte as json.dumps
        does (see ``DataSink.write_many``), so the check of each row is skipped: the lines are the
        same."""
        if self._closed:
            raise RuntimeError("write_many() after close()")
        lines = self._buffers.get(record_type)
        if lines is None:
            if not _RECORD_TYPE.match(record_type):
                raise ValueError(f"record type {record_type!r} must match {RECORD_TYPE_PATTERN}")
            lines = self._buffers[record_type] = []
        if json_plain:
            encode = _FAST.encode
            encoded = [encode(row) + b"\n" for row in rows]
        else:
            encoded = [encode_line(row) for row in rows]
        lines += encoded
        self._unstored += sum(map(len, encoded))

    def buffered_bytes(self) -> int:
        return self._unstored

    def _take(self) -> list[list[Any]]:
        """The lines written since the last flush, as ``[record_type, lines]`` pairs; the buffers
        start empty again."""
        pending = [[record_type, lines] for record_type, lines in self._buffers.items() if lines]
        for record_type, _lines in pending:
            self._buffers[record_type] = []
        return pending

    def _write_out(self, pending: list[list[Any]], durable: bool) -> None:
        """Append ``pending`` to the files (in a worker thread: a flush is several hundred kB at
        100 games, and the event loop's ticks must not wait for the disk).

        Progress is kept in ``pending``: a record type's lines are emptied once they are all in
        the file. If a write fails part way (a full disk), the file is cut back to the end of its
        last complete line and the lines not wholly written stay in ``pending``, so a reader never
        meets a torn line and the retry writes whole lines, none twice (``_put_back``)."""
        for entry in pending:
            record_type, lines = entry
            fd = self._fds.get(record_type)
            if fd is None:
                fd = os.open(self.path_for(record_type), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    # A torn line the repair at start could not move: end it, or it would
                    # swallow our first record (readers skip it).
                    try:
                        os.write(fd, b"\n")
                    except BaseException:
                        os.close(fd)
                        raise
                self._fds[record_type] = fd
            data = b"".join(lines)
            start = os.fstat(fd).st_size
            view = memoryview(data)
            try:
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            except BaseException:
                entry[1] = _unwritten(fd, start, lines, len(data) - len(view))
                raise
            entry[1] = []
        if durable:
            for fd in list(self._fds.values()):
                os.fsync(fd)

    def _put_back(self, taken: int, pending: list[list[Any]], work: asyncio.Future[None]) -> None:
        """After a write-out (on the event loop): what reached the files is no longer counted as
        unstored; after a failed one, the lines that did not reach their file go back to the front
        of their buffers, for the next flush to retry."""
        if work.cancelled():
            return
        left = sum(len(line) for _record_type, lines in pending for line in lines)
        self._unstored -= taken - left
        if work.exception() is None:
            return
        for record_type, lines in pending:
            if lines:
                self._buffers[record_type] = lines + self._buffers.get(record_type, [])

    def read(self, record_type: str) -> Iterator[dict[str, Any]]:
        path = self.path_for(record_type)
        if path.exists():
            yield from read_jsonl(path)

    async def flush(self, *, durable: bool = False) -> None:
        async with self._lock:
            await self._settle()
            pending = self._take()
            if not pending and not durable:
                return  # the server flushes often, mostly with nothing new: no thread for that
            # The thread's work is a future of its own: if this flush is cancelled (a shutdown
            # cancels the recorder's flush task), the lines still reach the file, and close() and
            # the next flush wait for them (_settle), so files keep the order of the writes.
            # A failed write puts its unwritten lines back (a done callback, so also when this
            # flush was cancelled) and the error reaches the caller: the recorder logs it and the
            # next flush tries again.
            work = asyncio.ensure_future(asyncio.to_thread(self._write_out, pending, durable))
            taken = sum(len(line) for _record_type, lines in pending for line in lines)
            work.add_done_callback(functools.partial(self._put_back, taken, pending))
            self._inflight = work
            try:
                await asyncio.shield(work)
            finally:
                if work.done():  # else cancelled while the worker writes on: _settle waits for it
                    self._inflight = None

    async def _settle(self) -> None:
        """Wait for a worker left running by a cancelled flush. If it failed, nobody was left to
        hear it: it is logged here (its lines are back in the buffers, for this flush to retry)."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            if not inflight.done():
                await asyncio.wait([inflight])
            error = None if inflight.cancelled() else inflight.exception()
            if error is not None:
                log.error("sink_flush_failed", sink=self.kind, exc_info=error)

    async def close(self) -> None:
        if self._closed:
            return
        # Closed first: a write that arrives while the final flush waits for the disk fails loudly
        # instead of landing in a buffer nobody will flush.
        self._closed = True
        try:
            await self.flush(durable=True)
        finally:
            async with self._lock:
                try:
                    await self._settle()
                finally:
                    for fd in self._fds.values():
                        os.close(fd)
                    self._fds.clear()
                    if self._claim is not None:
                        os.close(self._claim)
                        self._claim = None
