"""The built-in JSONL sink: round trips, appending across runs, and surviving kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core.builtin.sink_jsonl import JsonlSink, JsonlSinkConfig, encode_line
from igym_core.data.recorder import Recorder
from igym_core.testing import read_records

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)
_rows = st.lists(st.dictionaries(st.text(max_size=10), _json, max_size=5), max_size=8)


def _sink(directory: Path) -> JsonlSink:
    return JsonlSink(JsonlSinkConfig(), directory)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


async def _write_run(
    directory: Path, batches: dict[str, list[dict[str, Any]]], *, flush_between: bool
) -> None:
    sink = _sink(directory)
    for record_type, rows in batches.items():
        for row in rows:
            sink.write(record_type, row)
            if flush_between:
                await sink.flush()
    await sink.flush(durable=True)
    await sink.close()


@settings(max_examples=60, deadline=None)
@given(first=_rows, second=_rows, other=_rows, flush_between=st.booleans())
def test_write_flush_close_reopen_append_round_trip(first, second, other, flush_between):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "exp"
        asyncio.run(
            _write_run(directory, {"responses": first, "sessions": other}, flush_between=flush_between)
        )
        asyncio.run(_write_run(directory, {"responses": second}, flush_between=flush_between))
        sink = _sink(directory)
        assert list(sink.read("responses")) == first + second
        assert list(sink.read("sessions")) == other
        assert read_records(Path(tmp), "exp", "responses") == first + second
        for record_type in ("responses", "sessions"):
            path = directory / f"{record_type}.jsonl"
            if path.exists():
                data = path.read_bytes()
                assert data.endswith(b"\n")
                # one JSON object per line: no raw newline inside a record
                assert data.count(b"\n") == len(first + second if record_type == "responses" else other)


def test_records_reach_the_file_at_flush_not_before(tmp_path):
    async def run() -> None:
        sink = _sink(tmp_path)
        sink.write("responses", {"a": 1})
        assert not sink.path_for("responses").exists() or sink.path_for("responses").read_bytes() == b""
        await sink.flush()
        assert _lines(sink.path_for("responses")) == [b'{"a":1}', b""]
        sink.write("responses", {"a": 2})
        await sink.close()
        assert _lines(sink.path_for("responses")) == [b'{"a":1}', b'{"a":2}', b""]

    asyncio.run(run())


def test_non_json_values_are_written_readably(tmp_path):
    async def run() -> None:
        sink = _sink(tmp_path)
        sink.write(
            "steps",
            {"tuple": (1, 2), "set": {3}, "bytes": b"\x01\xff", "path": Path("a/b"), "text": 'é\n"x"'},
        )
        await sink.close()

    asyncio.run(run())
    (row,) = list(_sink(tmp_path).read("steps"))
    assert row == {"tuple": [1, 2], "set": [3], "bytes": "01ff", "path": "a/b", "text": 'é\n"x"'}


@pytest.mark.parametrize("record_type", ["../escape", "Responses", "", "a/b", "a" * 40, "1abc", "résumé"])
def test_record_types_that_could_name_other_paths_are_refused(tmp_path, record_type):
    sink = _sink(tmp_path / "exp")
    with pytest.raises(ValueError, match="record type"):
        sink.write(record_type, {"x": 1})
    asyncio.run(sink.close())
    assert [p.name for p in tmp_path.iterdir()] == ["exp"]
    assert list((tmp_path / "exp").iterdir()) == []


def test_write_after_close_is_an_error(tmp_path):
    sink = _sink(tmp_path)
    asyncio.run(sink.close())
    with pytest.raises(RuntimeError, match="after close"):
        sink.write("responses", {"x": 1})
    asyncio.run(sink.close())  # closing twice is harmless


def test_a_torn_last_line_is_skipped_and_appending_after_it_is_safe(tmp_path):
    path = tmp_path / "sessions.jsonl"
    path.write_bytes(b'{"n":0}\n{"n":1}\n{"n":2,"ev')  # a crash in the middle of a write

    assert [r["n"] for r in _sink(tmp_path).read("sessions")] == [0, 1]
    assert [r["n"] for r in read_records(tmp_path.parent, tmp_path.name, "sessions")] == [0, 1]

    async def restart() -> None:
        sink = _sink(tmp_path)
        sink.write("sessions", {"n": 3})
        await sink.close()

    asyncio.run(restart())
    # The record written after the restart is intact, and so is everything before the torn line.
    assert [r["n"] for r in _sink(tmp_path).read("sessions")] == [0, 1, 3]
    complete = [line for line in _lines(path) if line]
    assert json.loads(complete[-1]) == {"n": 3}


def test_recorder_flushes_on_its_own_schedule(tmp_path):
    async def run() -> tuple[bool, bool]:
        sink = _sink(tmp_path)
        recorder = Recorder([sink], base={"experiment_id": "x", "run_id": "r"}, flush_interval_ms=50)
        async with recorder:
            recorder.write("events", {"n": 1})
            before = sink.path_for("events").exists()
            deadline = time.monotonic() + 5
            while not sink.path_for("events").exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return before, sink.path_for("events").exists()

    before, after = asyncio.run(run())
    assert (before, after) == (False, True)
    (row,) = read_records(tmp_path.parent, tmp_path.name, "events")
    assert row["n"] == 1 and row["experiment_id"] == "x" and row["run_id"] == "r"
    assert row["timestamp"].endswith("Z")


def test_a_failing_sink_does_not_stop_the_others(tmp_path):
    class Broken(JsonlSink):
        kind = "broken"

        def write(self, record_type: str, row: Any) -> None:
            raise OSError("disk on fire")

    async def run() -> None:
        good = _sink(tmp_path / "good")
        recorder = Recorder(
            [Broken(JsonlSinkConfig(), tmp_path / "bad"), good], base={}, flush_interval_ms=10_000
        )
        async with recorder:
            recorder.write("events", {"n": 1})
            recorder.write("events", {"n": 2})

    from structlog.testing import capture_logs

    with capture_logs() as logs:
        asyncio.run(run())
    assert [r["n"] for r in read_records(tmp_path, "good", "events")] == [1, 2]
    # Said once (not once per record); the refused records are kept for a retry of write.
    failed = [e for e in logs if e["event"] == "sink_failed"]
    assert len(failed) == 1 and failed[0]["sink"] == "broken" and failed[0]["failed_in"] == "write"


class _HeldSink(JsonlSink):
    """A JSONL sink whose first write-out waits in its worker thread until ``release`` is set."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.started, self.release = threading.Event(), threading.Event()

    def _write_out(self, pending: Any, durable: bool) -> None:
        if not self.started.is_set():
            self.started.set()
            self.release.wait(5)
        super()._write_out(pending, durable)


async def _cancel_a_flush_mid_write(sink: _HeldSink) -> None:
    """Start a flush and cancel it while its worker is writing (as a shutdown does)."""
    flush = asyncio.create_task(sink.flush())
    while not sink.started.is_set():
        await asyncio.sleep(0.001)
    flush.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flush


def test_a_cancelled_flush_still_writes_and_close_keeps_the_order(tmp_path):
    """A shutdown cancels the recorder's flush task while the worker thread is writing: the lines it
    took still reach the file, before anything written later, and close() waits for them."""

    async def run() -> None:
        sink = _HeldSink(JsonlSinkConfig(), tmp_path)
        for n in range(100):
            sink.write("events", {"n": n})
        await _cancel_a_flush_mid_write(sink)
        for n in range(100, 150):
            sink.write("events", {"n": n})
        closing = asyncio.create_task(sink.close())
        await asyncio.sleep(0.05)
        assert not closing.done()  # waiting for the worker of the cancelled flush
        sink.release.set()
        await closing

    asyncio.run(run())
    assert [row["n"] for row in _sink(tmp_path).read("events")] == list(range(150))


def test_the_event_loop_does_not_wait_for_the_disk(tmp_path):
    """While a flush's worker is writing, the loop goes on (ticks are not held up by the disk)."""

    async def run() -> None:
        sink = _HeldSink(JsonlSinkConfig(), tmp_path)
        sink.write("events", {"n": 1})
        flush = asyncio.create_task(sink.flush())
        for _ in range(20):  # the loop keeps turning while the write is blocked
            await asyncio.sleep(0.001)
        assert not flush.done()
        sink.release.set()
        await flush
        await sink.close()

    asyncio.run(run())
    assert [row["n"] for row in _sink(tmp_path).read("events")] == [1]


class _FlakyOs:
    """The sink's ``os``, failing as a full disk or a process out of file descriptors would."""

    def __init__(self) -> None:
        self.fail_open: set[str] = set()  # file names whose next open fails with EMFILE
        self.write_limit: int | None = None  # bytes the disk takes before ENOSPC

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def open(self, path: Any, *args: Any) -> int:
        if Path(path).name in self.fail_open:
            self.fail_open.discard(Path(path).name)
            raise OSError(24, "Too many open files")
        return os.open(path, *args)

    def write(self, fd: int, data: Any) -> int:
        if self.write_limit is not None:
            if self.write_limit == 0:
                raise OSError(28, "No space left on device")
            data = data[: self.write_limit]
            self.write_limit -= len(data)
        return os.write(fd, data)


@pytest.fixture
def flaky_os(monkeypatch):
    from igym_core.builtin import sink_jsonl

    flaky = _FlakyOs()
    monkeypatch.setattr(sink_jsonl, "os", flaky)
    return flaky


def test_lines_a_failed_flush_could_not_write_are_written_by_the_next(tmp_path, flaky_os):
    """No file descriptor for one record type, then a disk that fills up in the middle of a line:
    every line still reaches its file exactly once, in order, once the disk takes writes again."""

    async def run() -> None:
        sink = JsonlSink(JsonlSinkConfig(), tmp_path)
        for n in range(5):
            sink.write("events", {"n": n})
            sink.write("steps", {"n": n})
        flaky_os.fail_open.add("steps.jsonl")
        with pytest.raises(OSError, match="Too many open files"):
            await sink.flush()
        assert [r["n"] for r in sink.read("events")] == [0, 1, 2, 3, 4]
        assert not sink.path_for("steps").exists()
        sink.write("steps", {"n": 5})
        flaky_os.write_limit = len(encode_line({"n": 0})) * 3 + 4  # three lines and a bit
        with pytest.raises(OSError, match="No space left"):
            await sink.flush()
        raw = sink.path_for("steps").read_bytes()
        assert raw.count(b"\n") == 3 and raw.endswith(b"\n")  # the torn fourth line is cut back
        flaky_os.write_limit = None
        sink.write("steps", {"n": 6})
        await sink.close()

    asyncio.run(run())
    assert [r["n"] for r in _sink(tmp_path).read("events")] == [0, 1, 2, 3, 4]
    assert [r["n"] for r in _sink(tmp_path).read("steps")] == [0, 1, 2, 3, 4, 5, 6]


def test_a_cancelled_flush_that_fails_is_logged_and_retried(tmp_path, flaky_os):
    from structlog.testing import capture_logs

    async def run() -> None:
        sink = _HeldSink(JsonlSinkConfig(), tmp_path)
        for n in range(10):
            sink.write("events", {"n": n})
        await _cancel_a_flush_mid_write(sink)
        sink.write("events", {"n": 10})
        flaky_os.fail_open.add("events.jsonl")
        sink.release.set()
        await sink.flush()  # waits for the failed worker, logs it, writes all eleven lines
        await sink.close()

    with capture_logs() as logs:
        asyncio.run(run())
    assert [e["event"] for e in logs if e.get("log_level") == "error"] == ["sink_flush_failed"]
    assert [r["n"] for r in _sink(tmp_path).read("events")] == list(range(11))


# --- kill -9 ----------------------------------------------------------------------------------------

FLUSH_INTERVAL_MS = 100
MARGIN_S = 0.5

# Writes records as fast as it can and reports its progress on stdout ("n written_at"), so that the
# test knows what had been written by when, even if this process was slow to get the CPU.
_WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from igym_core.builtin.sink_jsonl import JsonlSink, JsonlSinkConfig, encode_line
    from igym_core.data.recorder import Recorder

    async def main(directory, interval_ms):
        sink = JsonlSink(JsonlSinkConfig(), Path(directory))
        base = {"experiment_id": "kill", "run_id": "r"}
        recorder = Recorder([sink], base=base, flush_interval_ms=interval_ms)
        async with recorder:
            n = 0
            while True:
                now = time.time()
                recorder.write("events", {"n": n, "written_at": now, "pad": "x" * 300})
                if n % 50 == 0:
                    print(n, now, flush=True)
                n += 1
                await asyncio.sleep(0.0002)

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


@pytest.mark.serial  # what is on disk is judged against the time of the kill: run alone
def test_records_survive_kill_9(tmp_path):
    directory = tmp_path / "kill"
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(directory), str(FLUSH_INTERVAL_MS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    progress: list[tuple[int, float]] = []
    flushed = threading.Event()

    def watch() -> None:
        for line in process.stdout:
            n, written_at = line.split()
            progress.append((int(n), float(written_at)))
            if (directory / "events.jsonl").exists():
                flushed.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert flushed.wait(30), f"the writer never flushed: {process.poll()=}"
        time.sleep(1.0)  # several flush intervals of continuous writing
        killed_at = time.time()
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
        watcher.join(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()

    lines = _lines(directory / "events.jsonl")
    complete, torn = lines[:-1], lines[-1]
    rows = [json.loads(line) for line in complete]  # every complete line parses
    if torn:  # only the very last line may have been cut short
        with pytest.raises(json.JSONDecodeError):
            json.loads(torn)
    numbers = [r["n"] for r in rows]
    assert numbers == list(range(len(rows))), "records are missing or out of order"
    assert len(rows) > 100
    # Everything written more than a flush interval (plus a margin) before the kill is on disk.
    cutoff = killed_at - (FLUSH_INTERVAL_MS / 1000 + MARGIN_S)
    old_enough = [n for n, written_at in progress if written_at <= cutoff]
    assert old_enough, "the writer reported no progress before the cut-off"
    assert max(old_enough) < len(rows), (
        f"record {max(old_enough)} was written before the cut-off but only {len(rows)} records are stored"
    )
