"""The conformance suite every data sink passes: real files, real values, a real ``kill -9``.

Subclass :class:`SinkConformance` in a test module (its name must start with ``Test``) and say which
sink to build::

    from igym_core.testing.sink_conformance import SinkConformance
    from my_plugin.sink import MySink, MySinkConfig

    class TestMySinkConformance(SinkConformance):
        sink_type = MySink
        config = MySinkConfig()

pytest then runs every test below against ``MySink(config, directory)``. The sink class and its
config must be importable and picklable: the crash test builds the sink in a child process, as the
server does, and kills that process with ``SIGKILL``. The suite reads back what it wrote with
``DataSink.read``, so the sink must implement it, and compares values strictly: ``1`` and ``1.0``
and ``True`` are three different values, and a key a record did not have must not come back as
``None``.

The ``DataSink`` contract, as the checks below state it (each failure names the rule it broke):

1. **Round trip.** ``read(record_type)`` gives back every record written of that type, in the order
   written, each value of the same type it had (``1``, ``1.0`` and ``True`` differ; a key a record
   did not have does not come back as ``None``); realistic records of every type igym writes
   (``sessions``, ``responses``, ``steps``, ``episodes``, ``games``, ``matches``) and arbitrary
   JSON-compatible ones (hypothesis).
2. **Runs append.** A new sink on a directory keeps what earlier sinks stored there and appends.
3. **Flushed means readable.** After ``flush`` every record written so far is readable, before
   ``close``; a new directory reads as no records (``[]``, not ``None``).
4. **Closing.** ``close`` twice is harmless; ``write`` after ``close`` raises ``RuntimeError``.
5. **Record types never name paths.** ``write`` refuses (``ValueError`` mentioning "record type")
   any record type not matching ``RECORD_TYPE_PATTERN``, and the refused write creates, removes or
   changes no path. The sink's own housekeeping files (an SQLite ``-wal``/``-journal``, a lock
   file) may come and go: declare them with ``housekeeping_files`` (glob patterns, relative to the
   sink's directory) on the subclass.
6. **Concurrent writers.** Many games writing and flushing on one event loop: nothing is lost, and
   each game's records keep their order.
7. **Crashes lose nothing flushed.** A child process writing and flushing continuously is killed
   with ``SIGKILL``: every record it had flushed is readable, none is corrupt, repeated or out of
   order, and a new sink on the directory appends after it.
8. **A full disk loses nothing.** On a real full disk (a small tmpfs, filled up; skipped where
   mounting is not permitted) a flush that cannot store the records raises, and what can be read
   meanwhile is whole records in order, none twice; the records it could not store are kept, and once
   there is room again the next flush stores them, so every record is read back exactly once, in order.
   A sink that reports ``buffered_bytes()`` (not ``None``) counts the records it could not store
   (at least one byte per record, no more than it held before the failed flushes), and reports 0 once
   a flush stored everything: the server bounds its memory with it (``IGYM_MAX_UNSAVED_BYTES``).
9. **Batches** (only a sink that sets ``writes_many = True``). ``write_many(record_type, rows)``
   stores what ``write`` of each row would, in order; it takes all of a batch or none: refused (a
   record type ``write`` refuses), it raises and nothing of the batch is read back; after ``close``
   it raises ``RuntimeError``. A sink that also sets ``takes_json_plain = True`` stores rows given
   with ``write_many(record_type, rows, json_plain=True)`` (strings, ints, bools, None, floats that
   are 0 or of magnitude 1e-4 to below 1e16, and lists and string-keyed dicts of those) as ``write``
   would.
"""

from __future__ import annotations

import asyncio
import base64
import os
import pickle
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core.data.interface import DataSink, SinkConfig
from igym_core.testing.full_disk import mount_full_disk

__all__ = ["RECORD_TYPES", "SinkConformance", "assert_same_records", "crash_record", "sample_records"]

#: The record types the suite writes: those igym writes today, and ``matches``.
RECORD_TYPES = ("sessions", "responses", "steps", "episodes", "games", "matches")


# --- comparing ------------------------------------------------------------------------------------


def _typed(value: Any) -> Any:
    """``value`` with each leaf tagged by its type, so that ``1``, ``1.0`` and ``True`` differ."""
    if isinstance(value, dict):
        return {"dict": {key: _typed(item) for key, item in value.items()}}
    if isinstance(value, list | tuple):
        return {"list": [_typed(item) for item in value]}
    return (type(value).__name__, value)


def assert_same_records(actual: Iterable[Mapping[str, Any]], expected: Iterable[Mapping[str, Any]]) -> None:
    """Fail unless both hold the same records in the same order, with the same types of values."""
    actual, expected = list(actual), list(expected)
    for index, (got, want) in enumerate(zip(actual, expected, strict=False)):
        if _typed(got) != _typed(want):
            missing = sorted(set(want) - set(got))
            extra = sorted(set(got) - set(want))
            differing = sorted(k for k in set(got) & set(want) if _typed(got[k]) != _typed(want[k]))
            raise AssertionError(
                f"record {index} differs: missing keys {missing}, unexpected keys {extra}, "
                f"different values {[(k, want[k], got[k]) for k in differing][:5]}"
            )
    if len(actual) != len(expected):
        raise AssertionError(f"expected {len(expected)} records, read {len(actual)}")


# --- records ------------------------------------------------------------------------------------


def _base(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "experiment_id": "conformance",
        "run_id": "20260101T000000Z-abcdef",
        "timestamp": f"2026-01-01T00:00:{n % 60:02d}.{n % 1000:03d}Z",
    }


def _participant(rng: random.Random) -> str:
    return f"p-{rng.randrange(16**12):012x}"


def _record(record_type: str, rng: random.Random, n: int) -> dict[str, Any]:
    """One realistic record of ``record_type`` (the shapes igym writes; see docs/data.md)."""
    pid = _participant(rng)
    base = {**_base(rng, n), "n": n}
    if record_type == "sessions":
        event = rng.choice(["joined", "scene_entered", "scene_left", "sequence_drawn", "finished"])
        detail: dict[str, Any] = {}
        if event == "joined":
            token = f"{rng.getrandbits(256):064x}"
            detail = {"recruitment_ids": {"PROLIFIC_PID": pid}, "token_sha256": token}
        elif event == "sequence_drawn":
            detail = {
                "sequence": [{"scene_id": s, "instance": 0} for s in ("consent", "game", "end")],
                "draws": {"$.scenes[3]": ["a", "b"]},
                "seed": rng.randrange(2**31),
            }
        return {
            **base,
            "participant_id": pid,
            "condition": rng.choice([None, "control", "treatment"]),
            "params": {"PROLIFIC_PID": pid, "STUDY_ID": "s1"},
            "event": event,
            "position": None if event == "joined" else rng.randrange(8),
            "scene_id": None if event == "joined" else "survey",
            "instance": None if event == "joined" else 0,
            "detail": detail,
        }
    if record_type == "responses":
        value = rng.choice([True, "Al", "25–34", ["pc", "phone"], 5, 3.5, None, 'é\n"quoted"'])
        return {
            **base,
            "participant_id": pid,
            "condition": None,
            "params": {"PROLIFIC_PID": pid},
            "scene_id": "about_you",
            "scene_kind": "survey",
            "instance": 0,
            "position": 2,
            "question_id": rng.choice(["agree", "nickname", "age_group", "devices", "mood"]),
            "value": value,
            "entered_at": base["timestamp"],
            "submitted_at": base["timestamp"],
            "rt_ms": rng.randrange(100_000),
        }
    if record_type == "steps":
        row = {
            **base,
            "game_id": f"g-{rng.randrange(16**10):010x}",
            "scene_id": "walk",
            "instance": 0,
            "participant_ids": [pid],
            "episode": rng.randrange(1, 4),
            "step": rng.randrange(1, 600),
            "tick": rng.randrange(1, 700),
            "agent": rng.choice(["agent_0", "bot"]),
            "seat": rng.choice(["human", "bot"]),
            "participant_id": rng.choice([pid, None]),
            "action": rng.randrange(3),
            "action_source": rng.choice(["human", "default", "bot", "bot_repeat"]),
            "keys_held": rng.choice([None, [], ["ArrowRight"], ["ArrowLeft", "ArrowUp"]]),
            "reward": rng.choice([0.0, -1.0, 0.5]),
            "terminated": rng.random() < 0.01,
            "truncated": False,
            "info": {"position": rng.randrange(10), "detail.moved": rng.random() < 0.5},
            "t_server_ms": 1.7e12 + rng.random() * 1e6,
        }
        if rng.random() < 0.5:  # scenes with record_observations=True
            row["observation"] = [rng.uniform(-1.2, 0.6), rng.uniform(-0.07, 0.07)]
        return row
    if record_type == "episodes":
        return {
            **base,
            "game_id": f"g-{rng.randrange(16**10):010x}",
            "scene_id": "walk",
            "instance": 0,
            "participant_ids": [pid],
            "episode": rng.randrange(1, 4),
            "seed": rng.randrange(2**32),
            "steps": rng.randrange(600),
            "end_reason": rng.choice(["terminated", "truncated", "max_steps", "abandoned"]),
            "returns": {"agent_0": rng.uniform(-200, 0), "bot": 1.0},
            "seats": {"agent_0": pid, "bot": None},
            "started_at": base["timestamp"],
            "duration_ms": rng.randrange(30_000),
            "fps": 30,
            "frames_dropped": {pid: rng.randrange(3)},
            "tick_lateness_ms_p50": rng.random(),
            "tick_lateness_ms_p99": rng.random() * 5,
            "tick_lateness_ms_max": rng.random() * 20,
        }
    if record_type == "games":
        row = {
            **base,
            "game_id": f"g-{rng.randrange(16**10):010x}",
            "scene_id": "walk",
            "instance": 0,
            "participant_ids": [pid],
        }
        if rng.random() < 0.5:
            row.update(
                event="started",
                seats=[
                    {"agent": "agent_0", "type": "human", "participant_id": pid, "policy": None},
                    {"agent": "bot", "type": "bot", "participant_id": None, "policy": "random"},
                ],
                fps=30,
                num_episodes=2,
                runtime="server",
            )
        else:
            row.update(event="ended", reason=rng.choice(["completed", "abandoned"]), episodes_played=2)
        return row
    # matches (and any other type): a match of two people
    other = _participant(rng)
    return {
        **base,
        "match_id": f"m-{rng.randrange(16**8):08x}",
        "scene_id": "duel",
        "participant_ids": [pid, other],
        "waited_ms": {pid: rng.randrange(60_000), other: rng.randrange(60_000)},
        "matchmaker": "fifo",
    }


def sample_records(count: int, *, seed: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """``count`` realistic ``(record_type, row)`` pairs of every record type, mostly steps."""
    rng = random.Random(seed)
    weights = [5, 5, 70, 5, 5, 10]
    return [
        (record_type, _record(record_type, rng, n))
        for n, record_type in enumerate(rng.choices(RECORD_TYPES, weights, k=count))
    ]


def crash_record(n: int) -> tuple[str, dict[str, Any]]:
    """Record ``n`` of the crash test's writer; the same ``n`` always gives the same record."""
    rng = random.Random(n)
    record_type = RECORD_TYPES[n % len(RECORD_TYPES)] if n % 3 else "steps"
    row = _record(record_type, rng, n)
    row["pad"] = "x" * rng.randrange(400)  # records of uneven size, so that a kill lands mid-write
    return record_type, row


# --- arbitrary values -----------------------------------------------------------------------------

_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
_json = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
# A few shared key names, so that columns recur across records with values of changing types.
_keys = st.sampled_from(["a", "b", "value", "info", "observation"]) | st.text(max_size=8)
_rows = st.lists(st.dictionaries(_keys, _json, max_size=6), max_size=12)


# --- the crash test's child ---------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import asyncio, base64, pickle, sys
    from igym_core.testing.sink_conformance import crash_record

    sink_type, config, directory, per_flush = pickle.loads(base64.b64decode(sys.argv[1]))

    async def main():
        sink = sink_type(config, directory)
        n = flushes = 0
        while True:
            for _ in range(per_flush):
                sink.write(*crash_record(n))
                n += 1
            flushes += 1
            await sink.flush(durable=flushes % 5 == 0)
            print("igym-conformance-flushed", n, flush=True)
            await asyncio.sleep(0.002)

    asyncio.run(main())
    """
)


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def _suggest_patterns(paths: Iterable[str], root: Path, directory: Path) -> tuple[str, ...]:
    """Glob patterns for ``paths`` (relative to ``root``) that a sink could declare as housekeeping."""
    patterns = []
    for path in paths:
        full = root / path
        name = full.relative_to(directory).as_posix() if full.is_relative_to(directory) else full.name
        stem, dot, suffix = Path(name).name.rpartition(".")
        pattern = f"*.{suffix}" if dot and stem else name
        if pattern not in patterns:
            patterns.append(pattern)
    return tuple(patterns)


class SinkConformance:
    """Subclass with ``sink_type`` and ``config`` (and a name starting with ``Test``); see the module."""

    sink_type: ClassVar[type[DataSink]]
    config: ClassVar[SinkConfig]
    #: How many records the "many records" test writes.
    record_count: ClassVar[int] = 3000
    #: How many child processes the crash test kills, each at a different moment.
    crash_runs: ClassVar[int] = 2
    #: How many examples hypothesis tries in the arbitrary-records test.
    hypothesis_examples: ClassVar[int] = 40
    #: Glob patterns (relative to the sink's directory, ``fnmatch`` style: ``*`` crosses ``/``) of
    #: files the sink creates and removes for its own housekeeping, such as SQLite's
    #: ``("*.sqlite-wal", "*.sqlite-shm", "*.sqlite-journal")`` or ``("*.lock",)``. The checks that
    #: a refused write touches no path ignore them.
    housekeeping_files: ClassVar[tuple[str, ...]] = ()

    def make_sink(self, directory: Path) -> DataSink:
        """The sink under test, writing under ``directory`` (as the server builds it)."""
        return self.sink_type(self.config, directory)

    def read_all(self, sink: DataSink, record_type: str) -> list[dict[str, Any]]:
        records = sink.read(record_type)
        if records is None:
            pytest.fail(
                f"{type(sink).__name__}.read() returned None: the conformance suite reads back what it "
                "wrote, so implement DataSink.read for this sink."
            )
        return list(records)

    def paths_under(self, root: Path, directory: Path) -> set[str]:
        """Every path under ``root`` (relative to it), less the sink's declared housekeeping files."""
        import fnmatch

        out = set()
        for path in root.rglob("*"):
            if path.is_relative_to(directory):
                inside = path.relative_to(directory).as_posix()
                if any(fnmatch.fnmatch(inside, pattern) for pattern in self.housekeeping_files):
                    continue
            out.add(path.relative_to(root).as_posix())
        return out

    # --- values -----------------------------------------------------------------------------
    def test_many_records_of_every_type_read_back_identical(self, tmp_path: Path) -> None:
        """Rule 1: every record written is read back, in order, with values of the same types."""
        records = sample_records(self.record_count, seed=1)

        async def write() -> None:
            sink = self.make_sink(tmp_path)
            for index, (record_type, row) in enumerate(records):
                sink.write(record_type, row)
                if index % 400 == 399:
                    await sink.flush(durable=index % 1200 == 1199)
            await sink.close()

        _run(write())
        reader = self.make_sink(tmp_path)
        for record_type in RECORD_TYPES:
            expected = [row for rt, row in records if rt == record_type]
            assert expected, record_type
            assert_same_records(self.read_all(reader, record_type), expected)
        _run(reader.close())

    def test_arbitrary_records_round_trip_across_runs(self) -> None:
        """Rules 1 and 2: any JSON-compatible records round-trip, and a second run appends."""

        async def run(directory: Path, batches: dict[str, list[dict[str, Any]]], flush_every: int) -> None:
            sink = self.make_sink(directory)
            for record_type, rows in batches.items():
                for index, row in enumerate(rows):
                    sink.write(record_type, row)
                    if index % flush_every == 0:
                        await sink.flush()
            await sink.close()

        # Built per call: one hypothesis test per subclass, not one shared by every subclass.
        @settings(max_examples=self.hypothesis_examples, deadline=None)
        @given(first=_rows, second=_rows, other=_rows, flush_every=st.integers(1, 5))
        def round_trip(
            first: list[dict[str, Any]],
            second: list[dict[str, Any]],
            other: list[dict[str, Any]],
            flush_every: int,
        ) -> None:
            with tempfile.TemporaryDirectory() as tmp:
                directory = Path(tmp) / "exp"
                _run(run(directory, {"responses": first, "sessions": other}, flush_every))
                _run(run(directory, {"responses": second}, flush_every))
                reader = self.make_sink(directory)
                assert_same_records(self.read_all(reader, "responses"), first + second)
                assert_same_records(self.read_all(reader, "sessions"), other)
                _run(reader.close())

        round_trip()

    def test_a_batch_written_in_one_call_reads_back_as_written_row_by_row(self, tmp_path: Path) -> None:
        """Rule 9: ``write_many`` stores each row as ``write`` would, all of a batch or none."""
        sink_type = self.sink_type
        if not sink_type.writes_many:
            pytest.skip(f"{sink_type.__name__} has no write_many (the recorder calls write per row)")
        records = sample_records(120, seed=3)

        async def write() -> None:
            sink = self.make_sink(tmp_path)
            for start in range(0, len(records), 7):
                for record_type in RECORD_TYPES:
                    rows = [row for rt, row in records[start : start + 7] if rt == record_type]
                    if rows:
                        sink.write_many(record_type, rows)
                with pytest.raises(ValueError, match="record type"):
                    sink.write_many("../escape", [{"n": start}])
            await sink.close()
            with pytest.raises(RuntimeError):
                sink.write_many("sessions", [{"n": 0}])

        _run(write())
        reader = self.make_sink(tmp_path)
        for record_type in RECORD_TYPES:
            expected = [row for rt, row in records if rt == record_type]
            assert_same_records(self.read_all(reader, record_type), expected)
        _run(reader.close())

    def test_a_batch_of_plain_values_vouched_for_reads_back_as_written(self, tmp_path: Path) -> None:
        """Rule 9: ``write_many(..., json_plain=True)`` stores the rows as ``write`` would."""
        sink_type = self.sink_type
        if not (sink_type.writes_many and sink_type.takes_json_plain):
            pytest.skip(f"{sink_type.__name__} does not take json_plain")
        rows = [
            {
                "game_id": f"g-{i % 3}",
                "step": i,
                "reward": 0.0 if i % 4 == 0 else (-1) ** i * (0.25 + i * 1.5e-4),
                "t_client_ms": 1.7e12 + i * 33.3,
                "keys_held": ["ArrowLeft", "ArrowUp"][: i % 3],
                "terminated": i % 5 == 0,
                "info": None,
                "returns": {"left": float(i), "right": -0.5},
            }
            for i in range(1, 61)
        ]

        async def write() -> None:
            sink = self.make_sink(tmp_path)
            for start in range(0, len(rows), 15):
                sink.write_many("steps", rows[start : start + 15], json_plain=True)  # type: ignore[call-arg]
            await sink.close()

        _run(write())
        reader = self.make_sink(tmp_path)
        assert_same_records(self.read_all(reader, "steps"), rows)
        _run(reader.close())

    # --- flush, close, reopen ---------------------------------------------------------------
    def test_flushed_records_are_readable_before_close_and_after_reopening(self, tmp_path: Path) -> None:
        """Rules 2, 3 and 4: flushed records are readable before close; close twice is harmless;
        write after close raises RuntimeError; a new sink on the directory appends."""
        records = sample_records(300, seed=2)
        first, second = records[:200], records[200:]

        async def run() -> None:
            sink = self.make_sink(tmp_path)
            fresh = self.read_all(sink, "steps")
            assert fresh == [], f"rule 3: a new directory reads as no records ([]), read {fresh[:3]}"
            for record_type, row in first:
                sink.write(record_type, row)
            await sink.flush()
            for record_type in RECORD_TYPES:
                expected = [r for t, r in first if t == record_type]
                try:
                    assert_same_records(self.read_all(sink, record_type), expected)
                except AssertionError as exc:
                    raise AssertionError(
                        f"rule 3: after flush(), every record written is readable before close(); "
                        f"{record_type}: {exc}"
                    ) from None
            await sink.flush(durable=True)
            await sink.close()
            await sink.close()  # rule 4: closing twice is harmless
            with pytest.raises(RuntimeError):  # rule 4
                sink.write("steps", {"late": True})
                pytest.fail("rule 4: write after close must raise RuntimeError; it returned")

            again = self.make_sink(tmp_path)
            for record_type, row in second:
                again.write(record_type, row)
            await again.close()

        _run(run())
        reader = self.make_sink(tmp_path)
        for record_type in RECORD_TYPES:
            expected = [r for t, r in records if t == record_type]
            assert_same_records(self.read_all(reader, record_type), expected)
        _run(reader.close())

    @pytest.mark.parametrize("record_type", ["../escape", "Responses", "", "a/b", "a" * 40, "1abc", "résumé"])
    def test_record_types_that_could_name_other_paths_are_refused(
        self, tmp_path: Path, record_type: str
    ) -> None:
        """Rule 5: a record type that could name another path is refused and touches no path."""
        directory = tmp_path / "exp"
        sink = self.make_sink(directory)
        before = self.paths_under(tmp_path, directory)
        with pytest.raises(ValueError, match="record type"):
            sink.write(record_type, {"x": 1})
            pytest.fail(f"rule 5: write({record_type!r}, ...) must raise ValueError naming the record type")
        _run(sink.close())
        after = self.paths_under(tmp_path, directory)
        if after != before:
            appeared, vanished = sorted(after - before), sorted(before - after)
            raise AssertionError(
                f"rule 5: a refused write (record type {record_type!r}) and close() must not create or "
                f"remove paths, but these appeared: {appeared}, and these vanished: {vanished}. If they "
                "are the sink's own housekeeping files (an SQLite -wal/-shm/-journal, a lock file), "
                f"declare them on {type(self).__name__}: housekeeping_files = "
                f"{_suggest_patterns(appeared + vanished, tmp_path, directory)!r} (glob patterns relative "
                "to the sink's directory). Otherwise the sink wrote where a record type pointed it."
            )
        assert not (tmp_path / "escape").exists() and not (tmp_path / "escape.jsonl").exists(), (
            "rule 5: a record type named a path outside the sink's directory"
        )

    # --- concurrency -------------------------------------------------------------------------
    def test_many_games_writing_and_flushing_concurrently(self, tmp_path: Path) -> None:
        """Rule 6: concurrent writers on one event loop lose nothing and keep their own order."""
        games, steps = 50, 60

        async def game(sink: DataSink, number: int) -> None:
            rewards, pauses = random.Random(number), random.Random(-number)
            for step in range(steps):
                for agent in ("agent_0", "bot"):
                    row = {"game": number, "step": step, "agent": agent, "reward": rewards.random()}
                    sink.write("steps", row)
                if step % 20 == number % 20:
                    sink.write("episodes", {"game": number, "episode": step // 20})
                    await sink.flush(durable=number % 10 == 0)
                await asyncio.sleep(pauses.random() / 1000)

        async def run() -> None:
            sink = self.make_sink(tmp_path)
            await asyncio.gather(*(game(sink, number) for number in range(games)))
            await sink.close()

        _run(run())
        reader = self.make_sink(tmp_path)
        rows = self.read_all(reader, "steps")
        assert len(rows) == games * steps * 2, (
            f"rule 6: {games} games writing concurrently wrote {games * steps * 2} steps; read {len(rows)}"
        )
        for number in range(games):
            mine = [(r["step"], r["agent"]) for r in rows if r["game"] == number]
            expected = [(s, a) for s in range(steps) for a in ("agent_0", "bot")]
            assert mine == expected, f"rule 6: game {number}'s records are not in the order it wrote them"
            expected_rng = random.Random(number)
            rewards = [r["reward"] for r in rows if r["game"] == number]
            assert rewards == [expected_rng.random() for _ in range(steps * 2)], f"rule 1: game {number}"
        episodes = self.read_all(reader, "episodes")
        assert len(episodes) == games * 3, f"rule 6: wrote {games * 3} episodes, read {len(episodes)}"
        _run(reader.close())

    # --- a full disk ----------------------------------------------------------------------------
    def test_a_flush_that_fails_on_a_full_disk_keeps_its_records_for_the_next(self, tmp_path: Path) -> None:
        records = sample_records(900, seed=5)
        before, during = records[:150], records[150:]
        with mount_full_disk(tmp_path / "disk", size_kib=2048) as disk:
            directory = disk.path / "exp"

            async def run() -> None:
                sink = self.make_sink(directory)
                for record_type, row in before:
                    sink.write(record_type, row)
                await sink.flush(durable=True)
                disk.fill()
                for record_type, row in during:
                    sink.write(record_type, row)
                held = sink.buffered_bytes()
                if held is not None:
                    assert held >= len(during), (
                        f"buffered_bytes() says {held} bytes wait after {len(during)} unflushed "
                        "records: it must count every record written and not stored yet"
                    )
                for attempt, durable in enumerate((False, True)):  # failing twice: nothing lost or repeated
                    try:
                        await sink.flush(durable=durable)
                    except Exception:  # whatever the sink's error type
                        pass
                    else:
                        pytest.fail(
                            f"flush {attempt + 1} on a full disk returned as if the records were stored: a "
                            "flush that cannot store them must raise, and keep them for the next one"
                        )
                for record_type in RECORD_TYPES:  # meanwhile: whole records, in order, a prefix
                    expected = [row for rt, row in records if rt == record_type]
                    stored = self.read_all(sink, record_type)
                    assert_same_records(stored, expected[: len(stored)])
                if held is not None:
                    left = sink.buffered_bytes()
                    assert left is not None and 0 < left <= held, (
                        f"buffered_bytes() says {left} bytes wait after failed flushes (it held "
                        f"{held} before them): the records a flush could not store still wait"
                    )
                disk.free()
                await sink.flush(durable=True)
                if held is not None:
                    assert sink.buffered_bytes() == 0, (
                        f"buffered_bytes() says {sink.buffered_bytes()} bytes wait after a flush that "
                        "stored every record: it must be 0"
                    )
                for record_type in RECORD_TYPES:
                    expected = [row for rt, row in records if rt == record_type]
                    assert_same_records(self.read_all(sink, record_type), expected)
                await sink.close()

            _run(run())
            reader = self.make_sink(directory)
            for record_type in RECORD_TYPES:
                expected = [row for rt, row in records if rt == record_type]
                assert_same_records(self.read_all(reader, record_type), expected)
            _run(reader.close())

    # --- kill -9 ------------------------------------------------------------------------------
    def test_a_killed_writer_loses_nothing_it_had_flushed(self, tmp_path: Path) -> None:
        """Rule 7: after SIGKILL, every flushed record is readable and whole; a new sink appends."""
        for run in range(self.crash_runs):
            directory = tmp_path / f"run{run}"
            flushed = self._write_until_killed(directory, delay_s=0.003 + 0.02 * run, per_flush=37 + 50 * run)
            reader = self.make_sink(directory)  # what a restarted server sees
            seen = self._check_crashed_records(reader, flushed)
            # The restarted sink appends after whatever the crash left.
            reader.write("steps", {"n": -1, "after": "restart"})
            _run(reader.close())
            again = self.make_sink(directory)
            steps = self.read_all(again, "steps")
            assert steps[-1] == {"n": -1, "after": "restart"}, (
                "rule 7: a sink opened after a crash appends after what the crash left; the record it "
                f"wrote is not last: {steps[-1]!r}"
            )
            numbers = [r["n"] for rt in RECORD_TYPES for r in self.read_all(again, rt)]
            assert sorted(n for n in numbers if n >= 0) == seen, (
                "rule 7: reopening after a crash must keep exactly the records read right after it"
            )
            _run(again.close())

    def _write_until_killed(self, directory: Path, *, delay_s: float, per_flush: int) -> int:
        """Start a writer, kill it with SIGKILL mid-stream; return how many records it had flushed."""
        payload = base64.b64encode(pickle.dumps((self.sink_type, self.config, directory, per_flush))).decode()
        errors = directory.parent / f"{directory.name}-writer-stderr.txt"
        directory.parent.mkdir(parents=True, exist_ok=True)
        with errors.open("w") as stderr:  # a file, not a pipe: a pipe nobody reads can block the child
            process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, payload], stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        reports: list[int] = []
        enough = threading.Event()

        def watch() -> None:
            assert process.stdout is not None
            for line in process.stdout:  # the sink may log to stdout too
                if line.startswith("igym-conformance-flushed "):
                    reports.append(int(line.split()[1]))
                    if len(reports) >= 25:
                        enough.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            if not enough.wait(60):
                process.kill()
                process.wait(10)
                pytest.fail(
                    f"the writer never flushed 25 times (exit {process.returncode}):\n"
                    f"{errors.read_text()[-3000:]}"
                )
            time.sleep(delay_s)
            os.kill(process.pid, signal.SIGKILL)
            assert process.wait(10) == -signal.SIGKILL
            watcher.join(10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        return max(reports)

    def _check_crashed_records(self, reader: DataSink, flushed: int) -> list[int]:
        seen: list[int] = []
        for record_type in RECORD_TYPES:
            rows = self.read_all(reader, record_type)
            numbers = [row["n"] for row in rows]
            assert numbers == sorted(set(numbers)), (
                f"rule 7: {record_type}: records repeated or out of order after the kill"
            )
            for row in rows:  # every record read back is whole and exact
                expected_type, expected = crash_record(row["n"])
                assert expected_type == record_type, f"rule 7: record {row['n']} came back as {record_type}"
                assert_same_records([row], [expected])
            seen.extend(numbers)
        seen.sort()
        missing = sorted(set(range(flushed)) - set(seen))
        assert not missing, (
            f"rule 7: {len(missing)} flushed records are missing after the kill, first {missing[:5]}"
        )
        return seen
