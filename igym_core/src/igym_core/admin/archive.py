"""The data download: an experiment's data directory as a tar.gz, streamed as it is written.

The files are what ``igym export`` reads (each sink's record files, the run snapshots), taken as
they are when the download starts: each file is archived up to its size at that moment (a sink
appending meanwhile adds nothing half-written). A thread writes the archive into a queue of at
most :data:`QUEUE_CHUNKS` chunks of about :data:`CHUNK_BYTES`, and the response sends them in turn:
memory stays bounded whatever the data's size, and a slow download only makes the thread wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import tarfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path

__all__ = ["CHUNK_BYTES", "QUEUE_CHUNKS", "stream_directory"]

CHUNK_BYTES = 256 * 1024
QUEUE_CHUNKS = 8
_DONE = object()


class _QueueWriter:
    """A write-only file object that hands ``tarfile``'s output to the queue in chunks."""

    def __init__(self, chunks: queue.Queue[object], cancelled: threading.Event) -> None:
        self._chunks = chunks
        self._cancelled = cancelled
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        if len(self._buffer) >= CHUNK_BYTES:
            self.flush()
        return len(data)

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


def _write_archive(directory: Path, root_name: str, writer: _QueueWriter) -> None:
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
    writer.flush()


async def stream_directory(directory: Path, root_name: str) -> AsyncIterator[bytes]:
    """The tar.gz of ``directory`` (entries under ``root_name/``), chunk by chunk."""
    chunks: queue.Queue[object] = queue.Queue(maxsize=QUEUE_CHUNKS)
    cancelled = threading.Event()
    writer = _QueueWriter(chunks, cancelled)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            _write_archive(directory, root_name, writer)
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
