"""Sinks that cannot write: each fails alone, the JSONL sink never leaves a torn line, readers cope.

A full disk here is a real one: a small tmpfs filled up (igym_core.testing.full_disk).
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from igym_core.builtin.sink_jsonl import JsonlSink, JsonlSinkConfig
from igym_core.data.recorder import Recorder
from igym_core.errors import DataNotSavedError
from igym_core.testing.full_disk import mount_full_disk

ROOT = Path(__file__).resolve().parents[2]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def _row(n: int) -> dict[str, object]:
    return {"n": n, "pad": "x" * (n * 37 % 300)}


def test_a_failed_append_leaves_no_torn_line_and_whole_lines_are_written_later(tmp_path: Path) -> None:
    with mount_full_disk(tmp_path / "disk", size_kib=256) as disk:
        sink = JsonlSink(JsonlSinkConfig(), disk.path / "exp")
        path = sink.path_for("sessions")

        async def run() -> list[int]:
            sink.write("sessions", _row(0))
            await sink.flush()
            disk.fill()  # the file's last page still has room: the next append goes part way
            for n in range(1, 400):
                sink.write("sessions", _row(n))
            sizes = []
            for _ in range(3):
                with pytest.raises(OSError, match="No space left"):
                    await sink.flush(durable=True)
                raw = path.read_bytes()
                assert raw.endswith(b"\n"), f"a torn line was left behind: ...{raw[-60:]!r}"
                sizes.append(len(raw))
            disk.free()
            await sink.flush(durable=True)
            await sink.close()
            return sizes

        sizes = asyncio.run(run())
        assert len(set(sizes)) == 1  # retries on a full disk neither add nor lose lines
        rows = [json.loads(line) for line in _lines(path)]
        assert [r["n"] for r in rows] == list(range(400))
        assert rows == [_row(n) for n in range(400)]


def test_a_torn_last_line_is_moved_aside_at_start_and_recorded(tmp_path: Path) -> None:
    directory = tmp_path / "exp"
    directory.mkdir()
    path = directory / "sessions.jsonl"
    whole = b'{"n":0}\n{"n":1}\n'
    fragment = '{"n":2,"name":"Zoë'.encode()[:-1]  # cut in the middle of a UTF-8 character
    path.write_bytes(whole + fragment)
    (directory / "steps.jsonl").write_bytes(b'{"n":0}\n')  # intact: untouched

    async def run() -> None:
        sink = JsonlSink(JsonlSinkConfig(), directory)
        recorder = Recorder([sink], base={"experiment_id": "x", "run_id": "r2"}, flush_interval_ms=10_000)
        async with recorder:
            recorder.write("sessions", {"n": 3})

    with capture_logs() as logs:
        asyncio.run(run())
    assert (
        path.read_bytes()
        == whole + b'{"experiment_id":"x","run_id":"r2","timestamp":' + _timestamp(path) + b',"n":3}\n'
    )
    torn = [json.loads(line) for line in _lines(directory / "sessions.jsonl.torn")]
    assert len(torn) == 1
    assert torn[0]["file"] == "sessions.jsonl" and torn[0]["offset"] == len(whole)
    assert torn[0]["length"] == len(fragment)
    assert base64.b64decode(torn[0]["fragment_base64"]) == fragment
    assert not (directory / "steps.jsonl.torn").exists()
    (repair,) = [json.loads(line) for line in _lines(directory / "data_repairs.jsonl")]
    assert repair["sink"] == "jsonl" and repair["record_type"] == "sessions"
    assert repair["offset"] == len(whole) and repair["moved_to"] == "sessions.jsonl.torn"
    assert repair["run_id"] == "r2"
    warnings = [e for e in logs if e["event"] == "jsonl_torn_line_repaired"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"


def _timestamp(path: Path) -> bytes:
    match = re.search(rb'"timestamp":("[^"]+")', path.read_bytes())
    assert match
    return match.group(1)


def test_one_failing_sink_does_not_stop_a_sink_listed_after_it(tmp_path: Path) -> None:
    with mount_full_disk(tmp_path / "disk", size_kib=256) as disk:
        full = JsonlSink(JsonlSinkConfig(), disk.path / "exp")
        good = JsonlSink(JsonlSinkConfig(), tmp_path / "good")
        recorder = Recorder([full, good], base={}, flush_interval_ms=10_000, reminder_interval_s=60)

        async def run() -> tuple[bool, bool, bool]:
            disk.fill()
            recorder.write("responses", {"n": 1, "pad": "x" * 9000})
            with pytest.raises(DataNotSavedError, match="No space left") as raised:
                await recorder.flush(durable=True)
            assert [kind for kind, _error in raised.value.failures] == ["jsonl"]
            stored_by_good = good.path_for("responses").exists()
            saving_during = recorder.saving
            for _ in range(3):  # retries while it still fails: no log line each time
                with pytest.raises(DataNotSavedError):
                    await recorder.flush()
            recorder.reminder_interval_s = 0  # as if a minute had passed: a reminder is due
            with pytest.raises(DataNotSavedError):
                await recorder.flush()
            disk.free()
            await recorder.flush(durable=True)
            await full.close()
            await good.close()
            return stored_by_good, saving_during, recorder.saving

        with capture_logs() as logs:
            stored_by_good, saving_during, saving_after = asyncio.run(run())
        assert stored_by_good and not saving_during and saving_after
        assert [json.loads(line)["n"] for line in _lines(full.path_for("responses"))] == [1]
        events = [e["event"] for e in logs if e["event"].startswith("sink_")]
        assert events == ["sink_failed", "sink_still_failing", "sink_recovered"]
        failed = next(e for e in logs if e["event"] == "sink_failed")
        assert failed["errno"] == "ENOSPC" and failed["sink"] == "jsonl" and failed["required"] is True
        assert failed["data_dir"] == str(disk.path / "exp")


def test_a_best_effort_sink_that_fails_does_not_fail_the_flush(tmp_path: Path) -> None:
    with mount_full_disk(tmp_path / "disk", size_kib=256) as disk:
        mirror = JsonlSink(JsonlSinkConfig(required=False), disk.path / "exp")
        main = JsonlSink(JsonlSinkConfig(), tmp_path / "main")
        recorder = Recorder([mirror, main], base={}, flush_interval_ms=10_000)

        async def run() -> bool:
            disk.fill()
            recorder.write("responses", {"n": 1, "pad": "x" * 9000})
            await recorder.flush(durable=True)  # does not raise
            saving = recorder.saving
            disk.free()
            await recorder.flush()
            await mirror.close()
            await main.close()
            return saving

        with capture_logs() as logs:
            assert asyncio.run(run()) is True
        assert [e["event"] for e in logs if e["event"].startswith("sink_")] == [
            "sink_failed",
            "sink_recovered",
        ]
        assert [json.loads(line)["n"] for line in _lines(mirror.path_for("responses"))] == [1]


def _snippet(document: Path, marker: str) -> str:
    text = document.read_text(encoding="utf-8")
    match = re.search(re.escape(marker) + r"[^\n]*\n```python\n(.*?)```", text, re.S)
    assert match, f"{document.name} has no snippet after {marker!r}"
    return match.group(1)


@pytest.mark.parametrize(
    ("document", "marker"),
    [
        ("README.md", "<!-- loading-snippet:"),
        ("docs/data.md", "<!-- loading-snippet:"),
        ("docs/data.md", "<!-- loading-snippet-stdlib"),
    ],
)
def test_the_documented_loading_snippet_reads_a_file_cut_off_mid_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: str, marker: str
) -> None:
    code = _snippet(ROOT / document, marker)
    if "pandas" in code:
        pytest.importorskip("pandas")
    data = tmp_path / "data" / "my_study"
    data.mkdir(parents=True)
    rows = [{"participant_id": "p-1", "question_id": "age", "value": n} for n in range(3)]
    text = "".join(json.dumps(row) + "\n" for row in rows)
    (data / "responses.jsonl").write_text(text + '{"participant_id":"p-1","quest', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, document, "exec"), namespace)
    responses = namespace["responses"]
    records = responses if isinstance(responses, list) else responses.to_dict("records")  # type: ignore[attr-defined]
    assert records == rows


# --- every way an append can stop part way -------------------------------------------------------
_real_write = os.write


class _Disk:
    """Room for ``budget`` more bytes (``None``: unlimited); then os.write raises ENOSPC, after
    writing what fits, as a full disk does."""

    def __init__(self) -> None:
        self.budget: int | None = None

    def write(self, fd: int, data: Any) -> int:
        if self.budget is None:
            return _real_write(fd, data)
        if self.budget == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = _real_write(fd, bytes(data[: self.budget]))
        self.budget -= written
        return written


_batches = st.lists(
    st.tuples(
        st.lists(st.sampled_from(["sessions", "responses"]), min_size=0, max_size=6),
        st.one_of(st.none(), st.integers(0, 400)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(batches=_batches)
def test_appends_stopped_at_any_byte_leave_whole_lines_and_lose_nothing(batches: Any) -> None:
    disk = _Disk()
    with tempfile.TemporaryDirectory() as tmp, mock.patch("os.write", disk.write):
        directory = Path(tmp)
        sink = JsonlSink(JsonlSinkConfig(), directory)
        written: dict[str, list[dict[str, Any]]] = {"sessions": [], "responses": []}

        async def run() -> None:
            n = 0
            for record_types, budget in batches:
                for record_type in record_types:
                    row = _row(n)
                    sink.write(record_type, row)
                    written[record_type].append(row)
                    n += 1
                disk.budget = budget
                try:
                    await sink.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                for record_type, rows in written.items():
                    path = sink.path_for(record_type)
                    raw = path.read_bytes() if path.exists() else b""
                    assert raw == b"" or raw.endswith(b"\n"), "a torn line was left behind"
                    stored = [json.loads(line) for line in raw.splitlines()]
                    assert stored == rows[: len(stored)]  # whole records, in order, none twice
            disk.budget = None
            await sink.close()

        asyncio.run(run())
        for record_type, rows in written.items():
            path = sink.path_for(record_type)
            raw = path.read_bytes() if path.exists() else b""
            assert [json.loads(line) for line in raw.splitlines()] == rows


def test_a_second_sink_on_a_directory_in_use_does_not_cut_what_may_be_a_write_under_way(
    tmp_path: Path,
) -> None:
    writer = JsonlSink(JsonlSinkConfig(), tmp_path)
    path = writer.path_for("steps")
    path.write_bytes(b'{"n":0}\n{"n":1,"half of a line')  # as another process sees a write under way
    with capture_logs() as logs:
        other = JsonlSink(JsonlSinkConfig(), tmp_path)
    assert other.repairs == [] and path.read_bytes().endswith(b"half of a line")
    assert [e["event"] for e in logs] == ["jsonl_directory_shared"]
    asyncio.run(other.close())
    asyncio.run(writer.close())
    after = JsonlSink(JsonlSinkConfig(), tmp_path)  # nobody else writes here now: repaired
    assert [r["offset"] for r in after.repairs] == [8]
    assert path.read_bytes() == b'{"n":0}\n'
    asyncio.run(after.close())
