"""The dashboard's main download: the tables ``igym export`` writes, made in a child process.

``igym export`` is a plugin's command (``igym-parquet`` here: one tidy Parquet file per record
type). The dashboard finds it in the app's registry (:func:`export_command`). An admin asks for an
export (:meth:`Exports.start`); it runs in the background, in a child process of low priority
(:func:`run_export`, see :mod:`.export_job`), into a directory of its own next to the data
(:data:`EXPORTS_DIRECTORY`); the snapshots say how it goes; once it is ready, each download streams
its files as a zip (:func:`igym_core.admin.archive.stream_zip`). It is kept until the next export
replaces it or the server stops. No request waits for an export (a proxy's read timeout cannot
cut it), and one export serves every admin.

The server's memory holds a few chunks of the zip at a time; the child's holds what the exporter
needs (``igym-parquet``'s loads one record type's table whole before it writes it, so its peak is
the largest record type, not the whole study). One export runs at a time per server.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from igym_core.data.recorder import utc_now_iso
from igym_core.errors import IgymError

if TYPE_CHECKING:
    from igym_core.commands import Command
    from igym_core.plugins.registry import Registry

__all__ = [
    "EXPORTS_DIRECTORY",
    "ExportFailedError",
    "ExportedTables",
    "Exports",
    "export_command",
    "run_export",
]

log = structlog.get_logger(__name__)

#: The command the dashboard runs (``igym export DATA_DIR --out OUT``).
EXPORT_COMMAND = "export"
#: Next to the experiments' data directories: each download's export, removed once sent.
EXPORTS_DIRECTORY = ".igym-admin-exports"
#: Characters of the export's error output shown when it fails.
_MAX_ERROR_CHARS = 2000


class ExportFailedError(IgymError):
    """The export could not be made (the message says why and what to do)."""


@attrs.define(eq=False)
class ExportedTables:
    """One finished export: its directory, and each file with its name in the download.

    Downloads being sent hold it (``readers``); once it is replaced (``retired``), the last one to
    end removes its files.
    """

    directory: Path
    files: tuple[tuple[Path, str], ...]
    readers: int = 0
    retired: bool = False

    def retire(self) -> None:
        self.retired = True
        if self.readers == 0:
            shutil.rmtree(self.directory, ignore_errors=True)

    async def read(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``chunks`` (a zip of its files), holding the files until they are sent."""
        self.readers += 1
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            self.readers -= 1
            if self.retired:
                self.retire()


def export_command(registry: Registry) -> type[Command] | None:
    """The ``export`` command a plugin registered, or None (no exporter is installed)."""
    if EXPORT_COMMAND not in registry.commands:
        return None
    return registry.commands.get(EXPORT_COMMAND)


def remove_stale_exports(root: Path, prefix: str, older_than_s: float) -> None:
    """Remove exports under ``root`` named ``prefix…`` older than ``older_than_s`` (a server that
    stopped while sending one left it there)."""
    if not root.is_dir():
        return
    cutoff = time.time() - older_than_s
    for entry in root.iterdir():
        with contextlib.suppress(OSError):
            if entry.name.startswith(prefix) and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)


async def run_export(
    command: type[Command], data_dir: Path, root: Path, *, name: str, timeout_s: float
) -> ExportedTables:
    """Run ``command`` (``igym export``) on ``data_dir`` into a new directory under ``root``.

    The files it wrote are named ``name/<file>`` in the download. Raises :class:`ExportFailedError`
    if the command fails or takes longer than ``timeout_s`` (then it is killed). Cancelled (the
    admin closed the page), the child is killed and its files removed.
    """
    out = root / f"{name}-{secrets.token_hex(4)}"
    out.mkdir(parents=True)
    target = f"{command.__module__}:{command.__qualname__}"
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "igym_core.admin.export_job",
        target,
        str(data_dir),
        str(out),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        try:
            _out, error = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError:
            raise ExportFailedError(
                f"igym export took longer than {timeout_s:g} s and was stopped. Raise "
                "IGYM_ADMIN_EXPORT_TIMEOUT_S, or run `igym export` on the server's data directory "
                "yourself, or download the raw files."
            ) from None
        if process.returncode != 0:
            text = error.decode("utf-8", "replace").strip()[-_MAX_ERROR_CHARS:]
            raise ExportFailedError(
                f"igym export failed (exit status {process.returncode}): {text or 'no message'}. "
                "Download the raw files instead, and run `igym export` on them."
            )
    except BaseException:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.shield(process.wait())
        shutil.rmtree(out, ignore_errors=True)
        raise
    files = tuple(
        (path, f"{name}/{path.relative_to(out).as_posix()}")
        for path in sorted(out.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    )
    log.info(
        "data_exported",
        files=len(files),
        bytes=sum(path.stat().st_size for path, _ in files),
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    return ExportedTables(out, files)


class Exports:
    """The dashboard's export: one at a time, made on request, kept until replaced or the server stops.

    ``record(admin_session, action, **detail)`` records what happens (``data_export_started``,
    ``data_exported`` or ``data_export_failed``); ``flush()`` writes the records waiting in memory
    before the export reads the files; ``changed()`` asks for a snapshot now.
    """

    def __init__(
        self,
        command: type[Command],
        data_dir: Path,
        root: Path,
        *,
        name: str,
        timeout_s: float,
        record: Callable[..., Any],
        flush: Callable[[], Awaitable[None]],
        changed: Callable[[], None],
    ) -> None:
        self._command = command
        self._data_dir = data_dir
        self._root = root
        self.name = name
        self._timeout_s = timeout_s
        self._record = record
        self._flush = flush
        self._changed = changed
        self.ready: ExportedTables | None = None
        #: The last export asked for: ``state`` running, ready or failed (with ``message``), ...
        self.status: dict[str, Any] = {"state": "none"}
        #: What the kept export holds (when it was made, its files), or None.
        self.ready_info: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, admin_session: str) -> bool:
        """Start an export; False if one is running already."""
        if self.running:
            return False
        self.status = {"state": "running", "started_at": utc_now_iso(), "admin_session": admin_session}
        self._record(admin_session, "data_export_started")
        self._task = asyncio.create_task(self._run(admin_session), name="igym-admin-export")
        self._changed()
        return True

    async def _run(self, admin_session: str) -> None:
        started = time.monotonic()
        with contextlib.suppress(Exception):  # a failing sink: the export has what is stored
            await self._flush()
        try:
            tables = await run_export(
                self._command, self._data_dir, self._root, name=self.name, timeout_s=self._timeout_s
            )
        except Exception as exc:
            message = (
                str(exc) if isinstance(exc, ExportFailedError) else f"igym export could not run: {exc!r}"
            )
            log.error("data_export_failed", error=message)
            self.status = {**self.status, "state": "failed", "finished_at": utc_now_iso(), "message": message}
            self._record(admin_session, "data_export_failed", reason=message[:500])
            self._changed()
            return
        if self.ready is not None:
            self.ready.retire()
        self.ready = tables
        files = [
            {"name": arcname.split("/", 1)[1], "bytes": path.stat().st_size} for path, arcname in tables.files
        ]
        self.status = {
            **self.status,
            "state": "ready",
            "finished_at": utc_now_iso(),
            "duration_s": round(time.monotonic() - started, 1),
            "files": files,
            "bytes": sum(f["bytes"] for f in files),
        }
        self.ready_info = {k: self.status[k] for k in ("finished_at", "admin_session", "files", "bytes")}
        self._record(
            admin_session, "data_exported", files=[f["name"] for f in files], bytes=self.status["bytes"]
        )
        self._changed()

    async def close(self) -> None:
        """(Server shutdown.) Stop a running export; remove the kept one."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.ready is not None:
            self.ready.retire()
            self.ready = None
            self.ready_info = None

    def snapshot(self) -> dict[str, Any]:
        """For the dashboard: the last export asked for, and the one ready to download."""
        return {"available": True, **self.status, "ready": self.ready_info}
