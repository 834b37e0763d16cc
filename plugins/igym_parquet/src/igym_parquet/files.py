"""Where the parquet sink's files live, how an open file becomes a Parquet file, and how to read them.

Layout, under the experiment's data directory::

    parquet/<record_type>/part-000001-3fa2c1.parquet    closed: a complete Parquet file
    parquet/<record_type>/_part-000002-3fa2c1.arrows    open: an Arrow IPC stream, appended at each flush
    parquet/<record_type>/_part-000002-3fa2c1.parquet.tmp   being converted (never read)

Parts are ordered by their number (then by the run's token). An open part is an Arrow IPC *stream*:
each flush appends one complete record batch, so a process killed in the middle of a write leaves a
stream that reads up to its last complete batch. Closing a part writes the Parquet file under a
temporary name, syncs it, renames it and only then deletes the stream; a part that exists both ways
is read from the Parquet file. The process that writes a stream holds an exclusive ``flock`` on it, so
that recovery (:func:`recover`) never touches a stream that a live process is still writing; the
kernel drops the lock when the process dies, ``kill -9`` included. Names starting with ``_`` are
skipped by pyarrow, pandas and polars when they read the directory as a dataset, so readers of
``parquet/<record_type>/`` see only closed files.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

import attrs
import pyarrow as pa
import pyarrow.parquet as pq
import structlog

__all__ = [
    "Part",
    "claim",
    "convert_stream",
    "fsync_directory",
    "list_parts",
    "read_part_batches",
    "read_part_table",
    "recover",
]

log = structlog.get_logger(__name__)

_NAME = re.compile(r"^(?P<open>_?)part-(?P<seq>\d{6,})-(?P<token>[0-9a-f]+)\.(?P<ext>parquet|arrows)$")


@attrs.frozen(order=True)
class Part:
    """One part of one record type: ``seq`` orders parts; ``stream`` if it is still an open stream."""

    seq: int
    token: str
    path: Path = attrs.field(order=False)
    stream: bool = attrs.field(order=False)

    @staticmethod
    def names(seq: int, token: str) -> tuple[str, str]:
        """The (parquet, stream) file names of a part."""
        stem = f"part-{seq:06d}-{token}"
        return f"{stem}.parquet", f"_{stem}.arrows"


def list_parts(directory: Path) -> list[Part]:
    """The parts in ``directory``, oldest first; a part that is both a stream and Parquet is Parquet."""
    if not directory.is_dir():
        return []
    found: dict[tuple[int, str], Part] = {}
    for entry in os.scandir(directory):
        match = _NAME.match(entry.name)
        if match is None:
            continue
        key = (int(match["seq"]), match["token"])
        stream = match["ext"] == "arrows"
        if stream != bool(match["open"]):
            continue  # not a name this sink writes
        if stream and key in found:
            continue
        found[key] = Part(seq=key[0], token=key[1], path=Path(entry.path), stream=stream)
    return sorted(found.values())


def claim(fd: int) -> bool:
    """Take the writer's lock on an open stream; ``False`` if a live process holds it."""
    if fcntl is None:  # pragma: no cover - not POSIX: no protection against a second live writer
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def fsync_directory(directory: Path) -> None:
    """Make a file created or renamed in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stream_batches(path: Path) -> tuple[pa.Schema | None, list[pa.RecordBatch]]:
    """Every complete batch of a stream; the schema is ``None`` if not even that was written."""
    batches: list[pa.RecordBatch] = []
    try:
        # Not memory-mapped: a mapping of a file that shrinks under it kills the process (SIGBUS).
        with pa.OSFile(str(path)) as source:
            try:
                reader = pa.ipc.open_stream(source)
            except (pa.ArrowInvalid, OSError):
                return None, []
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
                except (pa.ArrowInvalid, OSError):
                    break  # a batch cut short by a crash: everything before it is whole
            return reader.schema, batches
    except FileNotFoundError:  # closed and converted since it was listed
        return None, []


def read_part_batches(part: Part) -> Iterator[pa.RecordBatch]:
    """The record batches of a part, streams included up to their last complete batch."""
    if part.stream:
        _schema, batches = _stream_batches(part.path)
        if not batches:
            parquet = part.path.with_name(Part.names(part.seq, part.token)[0])
            if parquet.exists():  # converted between listing and reading
                yield from pq.ParquetFile(parquet).iter_batches()
            return
        yield from batches
        return
    yield from pq.ParquetFile(part.path).iter_batches()


def read_part_table(part: Part) -> pa.Table | None:
    """A part as one table; ``None`` for a stream without a complete schema."""
    if not part.stream:
        return pq.read_table(part.path)
    schema, batches = _stream_batches(part.path)
    if schema is None:
        parquet = part.path.with_name(Part.names(part.seq, part.token)[0])
        return pq.read_table(parquet) if parquet.exists() else None
    return pa.Table.from_batches(batches, schema=schema)


def convert_stream(stream: Path, *, compression: str) -> Path | None:
    """Turn a closed (or crashed) stream into a Parquet file, atomically; delete the stream.

    Returns the Parquet file, or ``None`` if the stream held no complete record.
    """
    seq_token = _NAME.match(stream.name)
    if seq_token is None:
        raise ValueError(f"{stream} is not a stream this sink wrote")
    final = stream.with_name(Part.names(int(seq_token["seq"]), seq_token["token"])[0])
    if final.exists():  # converted before a crash that came before the stream was deleted
        stream.unlink(missing_ok=True)
        return final
    schema, batches = _stream_batches(stream)
    rows = sum(batch.num_rows for batch in batches)
    if schema is None or rows == 0:
        stream.unlink(missing_ok=True)
        return None
    table = pa.Table.from_batches(batches, schema=schema)
    temporary = final.with_name(f"_{final.name}.tmp")
    codec: Any = None if compression == "none" else compression
    pq.write_table(table, temporary, compression=codec)
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    fsync_directory(final.parent)
    stream.unlink()
    return final


def recover(directory: Path, *, compression: str) -> int:
    """Close the streams a crashed run left in ``directory`` (one record type); return how many."""
    if not directory.is_dir():
        return 0
    for leftover in directory.glob("_part-*.parquet.tmp"):
        leftover.unlink(missing_ok=True)  # a conversion a crash cut short; its stream is still there
    recovered = 0
    for stream in sorted(directory.glob("_part-*.arrows")):
        if _NAME.match(stream.name) is None:
            continue
        try:
            fd = os.open(stream, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            if not claim(fd):
                log.warning("parquet_stream_in_use", path=str(stream))
                continue  # another live process (a second server?) is writing it
            convert_stream(stream, compression=compression)
        except (pa.ArrowException, OSError) as exc:
            # Keep the stream: readers still read what it holds, and nothing is deleted.
            log.error("parquet_stream_not_recovered", path=str(stream), error=str(exc))
            continue
        finally:
            os.close(fd)
        recovered += 1
    if recovered:
        with contextlib.suppress(OSError):
            fsync_directory(directory)
    return recovered
