"""What the parquet sink adds to the conformance suite: valid files, rotation, torn streams, recovery,
its own flush timer, and a bound on what ``kill -9`` loses when nobody calls ``flush``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from structlog.testing import capture_logs

from igym_core.config.converter import make_converter, structure_or_raise
from igym_core.config.experiment import Experiment
from igym_core.errors import ConfigError
from igym_core.testing.sink_conformance import assert_same_records, sample_records
from igym_parquet import ParquetSinkConfig, codec
from igym_parquet.files import Part, list_parts, recover
from igym_parquet.sink import ParquetSink, read_records


def _sink(directory: Path, **options: object) -> ParquetSink:
    return ParquetSink(ParquetSinkConfig(**options), directory)


def _steps_dir(directory: Path) -> Path:
    return directory / "parquet" / "steps"


async def _write(sink: ParquetSink, rows: list[dict], *, flush_every: int = 0) -> None:
    for index, row in enumerate(rows):
        sink.write("steps", row)
        if flush_every and index % flush_every == flush_every - 1:
            await sink.flush()


def test_closed_parts_are_valid_parquet_files_that_any_reader_opens(tmp_path):
    records = [row for record_type, row in sample_records(500, seed=3) if record_type == "steps"]

    async def run() -> None:
        sink = _sink(tmp_path)
        await _write(sink, records, flush_every=50)
        await sink.close()

    asyncio.run(run())
    parts = list_parts(_steps_dir(tmp_path))
    assert parts and not any(part.stream for part in parts)
    assert not list(_steps_dir(tmp_path).glob("_*"))  # no stream, no temporary file left
    rows = 0
    for part in parts:
        metadata = pq.ParquetFile(part.path).metadata  # footer present: a complete file
        rows += metadata.num_rows
    assert rows == len(records)
    assert_same_records(read_records(_steps_dir(tmp_path)), records)


def test_files_rotate_by_size_and_by_age_and_read_back_in_order(tmp_path):
    rows = [{"n": n, "pad": "x" * 200} for n in range(600)]

    async def by_size() -> None:
        sink = _sink(tmp_path / "size", max_file_bytes=16 * 1024)
        await _write(sink, rows, flush_every=20)
        await sink.close()

    async def by_age() -> None:
        sink = _sink(tmp_path / "age", max_file_age_s=0.05)
        for chunk in range(4):
            await _write(sink, rows[chunk * 10 : chunk * 10 + 10])
            await sink.flush()
            await asyncio.sleep(0.06)
        await sink.close()

    asyncio.run(by_size())
    asyncio.run(by_age())
    sized = list_parts(_steps_dir(tmp_path / "size"))
    assert len(sized) >= 5
    assert all(part.path.stat().st_size < 64 * 1024 for part in sized)
    assert [r["n"] for r in read_records(_steps_dir(tmp_path / "size"))] == list(range(600))
    aged = list_parts(_steps_dir(tmp_path / "age"))
    assert len(aged) == 4
    assert [r["n"] for r in read_records(_steps_dir(tmp_path / "age"))] == list(range(40))


def test_a_new_column_or_a_wider_one_starts_a_new_file_and_schemas_stay_stable(tmp_path):
    async def run() -> None:
        sink = _sink(tmp_path)
        for rows in (
            [{"step": 1, "value": 1}],
            [{"step": 2, "value": 2}],  # same schema: same file
            [{"step": 3, "value": 2, "observation": [0.5]}],  # a new column
            [{"step": 4, "value": "four"}],  # int -> json
            [{"step": 5, "value": 5}],  # json holds ints too: no new file
        ):
            await _write(sink, rows)
            await sink.flush()
        await sink.close()

    asyncio.run(run())
    parts = list_parts(_steps_dir(tmp_path))
    assert [pq.ParquetFile(p.path).metadata.num_rows for p in parts] == [2, 1, 2]
    last = pq.read_schema(parts[-1].path)
    assert codec.field_kind(last.field("value")) == "json" and "observation" in last.names
    assert list(read_records(_steps_dir(tmp_path))) == [
        {"step": 1, "value": 1},
        {"step": 2, "value": 2},
        {"step": 3, "value": 2, "observation": [0.5]},
        {"step": 4, "value": "four"},
        {"step": 5, "value": 5},
    ]


def _stream_bytes(tmp_path: Path, batches: int) -> tuple[bytes, list[dict]]:
    """The bytes of an open stream holding ``batches`` flushes of 3 records, and those records."""
    rows = [{"n": n, "info": {"k": n}, "s": "é" * (n % 5)} for n in range(3 * batches)]

    async def run() -> bytes:
        sink = _sink(tmp_path / "source")
        for batch in range(batches):
            await _write(sink, rows[batch * 3 : batch * 3 + 3])
            await sink.flush()
        (part,) = list_parts(_steps_dir(tmp_path / "source"))
        data = part.path.read_bytes()
        await sink.close()
        return data

    return asyncio.run(run()), rows


def test_a_stream_cut_at_any_byte_reads_up_to_its_last_complete_batch_and_recovers(tmp_path):
    data, rows = _stream_bytes(tmp_path, batches=3)
    sizes = []
    for batch in range(1, 4):  # where each complete batch ends
        sizes.append(len(_stream_bytes(tmp_path / f"b{batch}", batches=batch)[0]))
    directory = tmp_path / "cut" / "parquet" / "steps"
    directory.mkdir(parents=True)
    _parquet, stream_name = Part.names(1, "abcdef")
    for cut in range(0, len(data) + 1, 7):
        (directory / stream_name).write_bytes(data[:cut])
        complete = sum(1 for size in sizes if size <= cut)
        assert [r["n"] for r in read_records(directory)] == [r["n"] for r in rows[: 3 * complete]], cut
    # A crashed run's stream becomes a Parquet file when the next sink starts; nothing else changes.
    (directory / stream_name).write_bytes(data[: sizes[1] + 5])
    sink = ParquetSink(ParquetSinkConfig(), tmp_path / "cut")
    parts = list_parts(directory)
    assert [p.stream for p in parts] == [False]
    assert [r["n"] for r in sink.read("steps")] == list(range(6))
    asyncio.run(sink.close())


def test_recovery_finishes_what_a_crash_interrupted(tmp_path):
    data, rows = _stream_bytes(tmp_path, batches=2)
    directory = tmp_path / "exp" / "parquet" / "steps"
    directory.mkdir(parents=True)
    parquet_name, stream_name = Part.names(1, "aaaaaa")
    # Killed while writing the Parquet file: a temporary file and the stream.
    (directory / stream_name).write_bytes(data)
    (directory / f"_{parquet_name}.tmp").write_bytes(b"PAR1 half a file")
    # Killed after the rename, before the stream was deleted: both.
    parquet2, stream2 = Part.names(2, "aaaaaa")
    (directory / stream2).write_bytes(data)
    pq.write_table(pa.Table.from_batches(list(pa.ipc.open_stream(data))), directory / parquet2)
    # A stream whose schema a crash cut short: nothing to keep.
    _p3, stream3 = Part.names(3, "aaaaaa")
    (directory / stream3).write_bytes(data[:10])

    assert recover(directory, compression="zstd") == 3
    assert sorted(p.name for p in directory.iterdir()) == [parquet_name, parquet2]
    assert [r["n"] for r in read_records(directory)] == [r["n"] for r in rows] * 2


def test_a_stream_another_live_sink_is_writing_is_left_alone(tmp_path):
    async def run() -> None:
        writer = _sink(tmp_path)
        writer.write("steps", {"n": 1})
        await writer.flush()
        second = _sink(tmp_path)  # e.g. a second server started on the same directory by mistake
        assert [p.stream for p in list_parts(_steps_dir(tmp_path))] == [True]
        writer.write("steps", {"n": 2})
        await writer.flush()
        assert [r["n"] for r in second.read("steps")] == [1, 2]
        await writer.close()
        await second.close()

    with capture_logs() as logs:
        asyncio.run(run())
    assert any(e["event"] == "parquet_stream_in_use" for e in logs)
    assert [r["n"] for r in read_records(_steps_dir(tmp_path))] == [1, 2]


def test_the_sink_flushes_itself_every_flush_interval(tmp_path):
    async def run() -> tuple[int, int]:
        sink = _sink(tmp_path, flush_interval_s=0.05)
        sink.write("steps", {"n": 1})
        before = len(list(sink.read("steps")))
        deadline = time.monotonic() + 5
        while not list(sink.read("steps")) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        after = len(list(sink.read("steps")))
        await sink.close()
        return before, after

    assert asyncio.run(run()) == (0, 1)


def test_a_record_that_cannot_be_stored_is_dropped_loudly_and_the_others_kept(tmp_path):
    async def run() -> None:
        sink = _sink(tmp_path)
        sink.write("steps", {"n": 1})
        sink.write("steps", {"n": 2, "bad": {(1, 2): "a tuple key"}})
        sink.write("steps", {"n": 3})
        await sink.close()

    with capture_logs() as logs:
        asyncio.run(run())
    assert [r["n"] for r in read_records(_steps_dir(tmp_path))] == [1, 3]
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["parquet_record_dropped"]


def test_config_is_validated_with_paths_and_fixes():
    from igym_core.plugins.manager import create_plugin_manager
    from igym_parquet import plugin

    plugins = create_plugin_manager(autoload=False, extra=[plugin], strict=True)
    converter = make_converter(plugins.registry)
    data: dict = {"experiment_id": "x", "scenes": [{"kind": "end", "scene_id": "end"}]}
    for sink, expected in (
        ({"flush_interval_s": 0}, "$.sinks[0].flush_interval_s: must be a finite number greater than 0"),
        ({"max_file_bytes": 10}, "$.sinks[0].max_file_bytes: must be at least 1024 bytes; got 10."),
        ({"compression": "lzma"}, "$.sinks[0].compression: must be one of 'zstd'"),
    ):
        data["sinks"] = [{"kind": "parquet", **sink}]
        with pytest.raises(ConfigError) as excinfo:
            structure_or_raise(converter, data, Experiment, title="bad")
        assert expected in str(excinfo.value)
    data["sinks"] = [{"kind": "parquet", "max_file_age_s": 60}]
    experiment = structure_or_raise(converter, data, Experiment, title="bad")
    assert experiment.sinks == (ParquetSinkConfig(max_file_age_s=60),)


# --- kill -9 without anyone calling flush -------------------------------------------------------

INTERVAL_S = 0.2
# Generous: the property is "the sink's own timer writes without anyone calling flush", not a speed;
# a loaded machine may run the timer late.
MARGIN_S = 1.5

_WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from igym_parquet import ParquetSinkConfig
    from igym_parquet.sink import ParquetSink

    async def main(directory, interval_s):
        sink = ParquetSink(ParquetSinkConfig(flush_interval_s=interval_s), Path(directory))
        n = 0
        while True:  # never calls flush(): only the sink's own timer writes
            now = time.time()
            sink.write("steps", {"n": n, "written_at": now, "pad": "x" * 200})
            if n % 50 == 0:
                print("progress", n, now, flush=True)
            n += 1
            await asyncio.sleep(0.0005)

    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
    """
)


def test_kill_9_loses_at_most_the_flush_interval_when_nobody_calls_flush(tmp_path):
    directory = tmp_path / "exp"
    with (tmp_path / "stderr.txt").open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(directory), str(INTERVAL_S)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    progress: list[tuple[int, float]] = []
    started = threading.Event()

    def watch() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("progress "):
                _word, n, written_at = line.split()
                progress.append((int(n), float(written_at)))
                started.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert started.wait(60), (tmp_path / "stderr.txt").read_text()
        time.sleep(3.0)
        killed_at = time.time()
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
        watcher.join(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()
    numbers = [r["n"] for r in read_records(_steps_dir(directory))]
    assert numbers == list(range(len(numbers))) and numbers
    cutoff = killed_at - (INTERVAL_S + MARGIN_S)
    old_enough = [n for n, written_at in progress if written_at <= cutoff]
    assert old_enough and max(old_enough) < len(numbers), (max(old_enough), len(numbers))


def test_a_flush_cancelled_at_shutdown_still_finishes_and_close_waits_for_it(tmp_path):
    """The recorder cancels its periodic flush task at shutdown, then closes the sinks: the
    cancelled flush's worker must finish before close() closes the streams, and every row must end
    up in a Parquet file (no stream left behind)."""

    async def scenario() -> None:
        sink = _sink(tmp_path)
        rows = [{"n": i, "text": "x" * 50} for i in range(20_000)]
        for row in rows:
            sink.write("steps", row)
        task = asyncio.ensure_future(sink.flush())
        await asyncio.sleep(0.001)  # the worker thread has started
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await sink.close()
        assert list((tmp_path / "parquet" / "steps").glob("*.arrows")) == []
        reopened = _sink(tmp_path)
        assert [r["n"] for r in reopened.read("steps")] == list(range(20_000))
        await reopened.close()

    asyncio.run(scenario())


def test_rows_of_a_batch_that_could_not_be_written_are_kept_for_the_next_flush(tmp_path, monkeypatch):
    async def scenario() -> None:
        sink = _sink(tmp_path)
        sink.write("steps", {"n": 1})
        real_open = ParquetSink._open
        failures = iter([OSError(28, "No space left on device")])

        def full_disk_once(self, state):
            error = next(failures, None)
            if error is not None:
                raise error
            return real_open(self, state)

        monkeypatch.setattr(ParquetSink, "_open", full_disk_once)
        with pytest.raises(OSError, match="No space left"):
            await sink.flush()
        sink.write("steps", {"n": 2})
        await sink.close()  # the retry writes the kept row first, then the new one
        reopened = _sink(tmp_path)
        assert [r["n"] for r in reopened.read("steps")] == [1, 2]
        await reopened.close()

    asyncio.run(scenario())
