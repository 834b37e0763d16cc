"""``igym export``: the same tidy datasets from either sink's files, the documented snippet, and errors
that say what to do."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from igym_core.builtin.sink_jsonl import JsonlSink, JsonlSinkConfig
from igym_core.cli import main
from igym_core.data.recorder import Recorder
from igym_core.testing.sink_conformance import RECORD_TYPES, sample_records
from igym_parquet import ParquetSinkConfig
from igym_parquet.export import export_experiment
from igym_parquet.sink import ParquetSink

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _autoload(monkeypatch):
    monkeypatch.delenv("IGYM_DISABLE_PLUGIN_AUTOLOAD", raising=False)  # `igym export` comes from the plugin


def _study(directory: Path, count: int = 1500, *, snapshot: Path | None = None) -> list[tuple[str, dict]]:
    """An experiment directory written by both sinks at once, through the server's Recorder.

    ``snapshot``: copy the directory there before the sinks close, as a crash would leave it.
    """
    records = sample_records(count, seed=11)

    async def run() -> None:
        sinks = [JsonlSink(JsonlSinkConfig(), directory), ParquetSink(ParquetSinkConfig(), directory)]
        recorder = Recorder(sinks, base={}, flush_interval_ms=10_000)
        for index, (record_type, row) in enumerate(records):
            recorder.write(record_type, row)
            if index % 300 == 0:
                await recorder.flush()
        await recorder.flush()
        if snapshot is not None:
            # Closed parts convert in the background (a file disappears when its stream becomes
            # Parquet): let them finish, so that the copy sees a still state with open streams.
            await sinks[1].settle()
            shutil.copytree(directory, snapshot)
        for sink in sinks:
            await sink.close()

    asyncio.run(run())
    return records


def test_both_sinks_export_to_the_same_tidy_tables(tmp_path):
    directory = tmp_path / "data" / "my_study"
    _study(directory)
    from_jsonl = export_experiment(directory, out=tmp_path / "j", source="jsonl")
    from_parquet = export_experiment(directory, out=tmp_path / "p", source="parquet")
    assert [d.record_type for d in from_jsonl] == sorted(RECORD_TYPES)
    for a, b in zip(from_jsonl, from_parquet, strict=True):
        left, right = pq.read_table(a.path), pq.read_table(b.path)
        assert left.schema.metadata[b"igym.source"] == b"jsonl"
        assert right.schema.metadata[b"igym.source"] == b"parquet"
        assert left.replace_schema_metadata().equals(right.replace_schema_metadata()), a.record_type
        assert left.schema == right.schema.with_metadata(left.schema.metadata)


def test_tidy_shapes(tmp_path):
    directory = tmp_path / "exp"
    records = _study(directory)
    export_experiment(directory)
    out = directory / "export"

    steps = pq.read_table(out / "steps.parquet")
    expected = [row for record_type, row in records if record_type == "steps"]
    assert steps.num_rows == len(expected)
    schema = steps.schema
    assert str(schema.field("timestamp").type) == "timestamp[ms, tz=UTC]"
    assert str(schema.field("keys_held").type) == "list<element: string>"
    assert str(schema.field("observation").type) == "list<element: double>"
    assert str(schema.field("info.position").type) == "int64" and str(schema.field("reward").type) == "double"
    assert "info" not in schema.names
    first = steps.slice(0, 1).to_pylist()[0]
    assert first["info.detail.moved"] == expected[0]["info"]["detail.moved"]
    assert first["keys_held"] == expected[0]["keys_held"]

    responses = pq.read_table(out / "responses.parquet").to_pylist()
    answers = [row for record_type, row in records if record_type == "responses"]
    # A skipped answer is null; any other is JSON text.
    values = [None if r["value"] is None else json.loads(r["value"]) for r in responses]
    assert values == [a["value"] for a in answers]
    for row, answer in zip(responses, answers, strict=True):
        value = answer["value"]
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        assert row["value_number"] == (float(value) if is_number else None)
        assert row["value_text"] == (value if isinstance(value, str) else None)
        assert row["params.PROLIFIC_PID"] == answer["params"]["PROLIFIC_PID"]

    episodes = pq.read_table(out / "episodes.parquet")
    assert {"returns.agent_0", "returns.bot"} <= set(episodes.schema.names)
    assert episodes.schema.field("seats").metadata == {b"igym.encoding": b"json"}  # by agent: JSON text
    sessions = pq.read_table(out / "sessions.parquet").to_pylist()
    drawn = next(s for s in sessions if s["event"] == "sequence_drawn")
    assert json.loads(drawn["detail"])["sequence"][0] == {"scene_id": "consent", "instance": 0}


def test_the_documented_snippet_loads_the_export(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "data.md").read_text()
    (snippet,) = re.findall(r"Load it with any of the three.*?```python\n(.*?)```", text, re.S)
    assert len(snippet.strip().splitlines()) == 3
    _study(tmp_path / "data" / "my_study", count=600)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "data/my_study"]) == 0
    namespace: dict = {}
    exec(compile(snippet, "docs/data.md", "exec"), namespace)
    assert len(namespace["steps"]) > 300 and namespace["steps"]["keys_held"].dtype == object
    assert namespace["responses"].height > 0 and "value_number" in namespace["responses"].columns
    assert namespace["episodes"].num_rows > 0


def test_export_reads_a_crashed_parquet_experiment_without_changing_it(tmp_path, capsys):
    directory = tmp_path / "exp"
    records = _study(tmp_path / "live", count=400, snapshot=directory)  # open streams, as after kill -9
    (directory / "steps.jsonl").unlink()
    before = sorted(str(p) for p in (directory / "parquet").rglob("*"))
    assert any(p.endswith(".arrows") for p in before)
    assert main(["export", str(directory), "--out", str(tmp_path / "out"), "--record-type", "steps"]) == 0
    assert sorted(str(p) for p in (directory / "parquet").rglob("*")) == before
    assert "steps: " in capsys.readouterr().out
    steps = pq.read_table(tmp_path / "out" / "steps.parquet")
    assert steps.num_rows == sum(1 for record_type, _ in records if record_type == "steps")
    assert not (tmp_path / "out" / "sessions.parquet").exists()


def _experiment(d: Path) -> None:
    d.mkdir(parents=True)
    (d / "responses.jsonl").write_text('{"a":1}\n')


def _data_root(d: Path) -> None:
    _experiment(d / "study_a")


def _experiment_and_a_file(d: Path) -> None:
    _experiment(d)
    (d / "f").touch()


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda d: None, [], "There is no directory"),
        (lambda d: d.mkdir(parents=True), [], "holds no igym records"),
        (_data_root, [], "holds experiments, not one experiment's records. Export one: `igym export"),
        (_experiment, ["--record-type", "steps"], "has no records of type 'steps'. It has: responses"),
        (_experiment, ["--source", "parquet"], "Run again with --source auto"),
        (_experiment_and_a_file, ["--out", "{d}/f"], "is a file; give --out a directory"),
    ],
)
def test_errors_say_how_to_fix_them(tmp_path, capsys, make, args, message):
    directory = tmp_path / "data"
    make(directory)
    assert main(["export", str(directory), *[a.replace("{d}", str(directory)) for a in args]]) == 2
    assert message in capsys.readouterr().err
