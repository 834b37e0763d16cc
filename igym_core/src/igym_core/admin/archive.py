"""The data downloads, streamed as they are written: a zip of files, or a directory as a tar.gz.

- :func:`stream_zip`: the tables ``igym export`` wrote (Parquet files are compressed already, so
  they are stored as they are).
- :func:`stream_directory`: the raw data directory (each sink's record files, the run snapshots),
  taken as it is when the download starts: each file is archived up to its size at that moment (a
  sink appending meanwhile adds nothing half-written).

A thread writes the archive into a queue of at most :data:`QUEUE_CHUNKS` chunks of about
:data:`CHUNK_BYTES`, and the response sends them in turn: memory stays bounded whatever the data's
size, and a slow download only makes the thread wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import tarfile
import threading
import zipfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

__all__ = ["CHUNK_BYTES", "QUEUE_CHUNKS", "stream_directory", "stream_zip"]

CHUNK_BYTES = 256 * 1024
QUEUE_CHUNKS = 8
_DONE = object()


class _QueueWriter:
    """A write-only file object that hands an archive's output to the queue in chunks."""

    def __init__(self, chunks: queue.Queue[object], cancelled: threading.Event) -> None:
        self._chunks = chunks
        self._cancelled = cancelled
        self._buffer = bytearray()
        self._written = 0

    def write(self, data: bytes) -> int:
        self._buffer += data
        self._written += len(data)
        if len(self._buffer) >= CHUNK_BYTES:
            self.flush()
        return len(data)

    def tell(self) -> int:  # zipfile asks where it is (it never seeks: seekable() is False)
        return self._written

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        if self._buffer:
            self._put(bytes(self._buffer))
            self._buffer.clear()

    def _put(self, item: object) -> None:
        while True:
            if self._cancelled.is_set():
                raise _Cancelled
            try:
                self._chunks.put(item, timeout=0.5)
                return
            except queue.Full:
                continue


class _Cancelled(Exception):
    pass


def _write_tar(directory: Path, root_name: str, writer: _QueueWriter) -> None:
    with tarfile.open(fileobj=writer, mode="w|gz") as archive:  # type: ignore[call-overload]
        for path in sorted(directory.rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            with path.open("rb") as handle:
                info = archive.gettarinfo(
                    arcname=f"{root_name}/{path.relative_to(directory)}", fileobj=handle
                )
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                # The size at this moment: what a sink appends meanwhile is not read.
                info.size = os.fstat(handle.fileno()).st_size
                archive.addfile(info, handle)


def _write_zip(files: Sequence[tuple[Path, str]], writer: _QueueWriter) -> None:
    with zipfile.ZipFile(writer, "w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[arg-type]
        for path, name in files:
            archive.write(path, name)


async def _stream(write: Callable[[_QueueWriter], None]) -> AsyncIterator[bytes]:
    chunks: queue.Queue[object] = queue.Queue(maxsize=QUEUE_CHUNKS)
    cancelled = threading.Event()
    writer = _QueueWriter(chunks, cancelled)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            write(writer)
            writer.flush()
        except _Cancelled:
            return
        except BaseException as exc:  # reported by the response (the download is cut short)
            failure.append(exc)
        with contextlib.suppress(_Cancelled):
            writer._put(_DONE)

    thread = threading.Thread(target=work, name="igym-admin-download", daemon=True)
    thread.start()
    try:
        while True:
            item = await asyncio.to_thread(chunks.get)
            if item is _DONE:
                break
            yield item  # type: ignore[misc]
        if failure:
            raise failure[0]
    finally:
        cancelled.set()


def stream_directory(directory: Path, root_name: str) -> AsyncIterator[bytes]:
    """The tar.gz of ``directory`` (entries under ``root_name/``), chunk by chunk."""
    return _stream(lambda writer: _write_tar(directory, root_name, writer))


def stream_zip(files: Sequence[tuple[Path, str]]) -> AsyncIterator[bytes]:
    """A zip of ``files`` (each a path and its name in the archive, stored uncompressed), chunk by chunk."""
    return _stream(lambda writer: _write_zip(files, writer))
