"""The dashboard's kept export (igym_core/admin/export.py ``ExportedTables``): replacing it while a
download is being sent keeps its files until that download ends; with nobody reading, they go at once."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

from igym_core.admin.archive import stream_zip
from igym_core.admin.export import ExportedTables


def _tables(directory: Path) -> ExportedTables:
    directory.mkdir()
    files = []
    for name in ("sessions.parquet", "steps.parquet"):
        (directory / name).write_bytes(name.encode() * 1000)
        files.append((directory / name, f"study-run/{name}"))
    return ExportedTables(directory, tuple(files))


def test_a_replaced_export_stays_until_its_downloads_end(tmp_path: Path) -> None:
    async def scenario() -> None:
        tables = _tables(tmp_path / "first")
        download = tables.read(stream_zip(tables.files))
        body = [await download.__anext__()]  # the download has started
        tables.retire()  # a new export replaced it meanwhile
        assert tables.directory.is_dir()
        body += [chunk async for chunk in download]
        assert not tables.directory.exists()  # gone once the download ended
        with zipfile.ZipFile(io.BytesIO(b"".join(body))) as archive:
            assert archive.read("study-run/steps.parquet") == b"steps.parquet" * 1000

        idle = _tables(tmp_path / "second")
        idle.retire()
        assert not idle.directory.exists()

    asyncio.run(scenario())
