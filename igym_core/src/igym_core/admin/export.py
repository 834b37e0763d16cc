"""The dashboard's main download: the tables ``igym export`` writes, made in a child process.

``igym export`` is a plugin's command (``igym-parquet`` here: one tidy Parquet file per record
type). The dashboard finds it in the app's registry (:func:`export_command`), runs it on the
experiment's data directory in a child process of low priority (:func:`run_export`, see
:mod:`.export_job`) into a directory of its own next to the data (:data:`EXPORTS_DIRECTORY`), then
streams the files it wrote as a zip (:func:`igym_core.admin.archive.stream_zip`) and removes them.

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
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import structlog

from igym_core.errors import IgymError

if TYPE_CHECKING:
    from igym_core.commands import Command
    from igym_core.plugins.registry import Registry

__all__ = [
    "EXPORTS_DIRECTORY",
    "UNCLAIMED_EXPORT_S",
    "ExportFailedError",
    "ExportedTables",
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


#: An export whose download has not started this long after it was made is removed (the admin
#: closed the page while it was being made: the response was never sent).
UNCLAIMED_EXPORT_S = 60.0


@attrs.define(eq=False)
class ExportedTables:
    """One finished export: its directory, and each file with its name in the download."""

    directory: Path
    files: tuple[tuple[Path, str], ...]
    claimed: bool = False
    """Set when its download starts (from then on the download removes it when it ends)."""

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def remove_unless_claimed(self) -> None:
        if not self.claimed:
            self.remove()


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
