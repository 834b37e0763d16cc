"""``/stats`` costs the same however many participants joined and however long games have ticked.

Work is counted, not timed: the Python lines the summary executes (a loop over participants shows
up as lines per participant) and the memory it allocates (sorting kept timing samples shows up as
megabytes), with a few participants and a young server, then with thousands and a long-running one.
"""

from __future__ import annotations

import random
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core import EndScene, Experiment, StartScene
from igym_core.protocol.messages import PROTOCOL_VERSION, Hello
from igym_core.runtime.histogram import BUCKET_UPPER_MS, LatencyHistogram, quantiles_between
from igym_core.session.participant import Participant, ParticipantIndex
from igym_core.testing import make_test_app

EXPERIMENT = Experiment(
    experiment_id="stats_cost",
    seed=5,
    scenes=(StartScene(scene_id="start", body="Hello."), EndScene(scene_id="end")),
)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _work(call: Callable[[], Any]) -> tuple[int, int]:
    """(Python lines executed, peak bytes allocated) while ``call()`` runs."""
    lines = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal lines
        if event == "line":
            lines += 1
        return trace

    tracemalloc.start()
    sys.settrace(trace)
    try:
        call()
    finally:
        sys.settrace(None)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return lines, peak


async def _study_with(tmp_path: Path, participants: int, samples: int) -> Any:
    app = make_test_app(
        EXPERIMENT,
        tmp_path,
        flush_interval_ms=600_000,
        log_level="warning",
        max_new_participants_per_ip_per_min=0,  # all from one (in-process) address
    )
    study = app.state.study

    async def send(message: dict[str, Any]) -> None:
        return None

    async def close(code: int, reason: str) -> None:
        return None

    connections = []
    for n in range(participants):
        connection = study.open_connection(send, close)
        await study.hello(connection, Hello(protocol=PROTOCOL_VERSION, token=None, params={"n": str(n)}))
        connections.append(connection)
    for connection in connections[::3]:  # a third have left
        study.disconnected(connection)
    # The server runtime, with as many tick-lateness samples as its tickers would have recorded.
    runtime = await study.games._runtime("server")
    rng = random.Random(1)
    for _ in range(samples):
        runtime.scheduler.stats.add_lateness(rng.expovariate(1.0))
    return study


@pytest.mark.anyio
async def test_the_summary_does_the_same_work_for_5_or_3000_participants_and_any_server_age(tmp_path):
    young = await _study_with(tmp_path / "young", participants=5, samples=10)
    aged = await _study_with(tmp_path / "aged", participants=5, samples=300_000)
    large = await _study_with(tmp_path / "large", participants=3000, samples=300_000)

    summary = large.summary()
    assert summary["participants"] == 3000
    assert summary["connected"] == 2000  # kept as things happened, and right
    assert summary["connected"] == sum(p.connection_id is not None for p in large.by_id.values())
    assert summary["runtimes"]["server"]["lateness_ms"]["samples"] == 300_000

    young_lines, young_peak = _work(young.summary)
    aged_lines, aged_peak = _work(aged.summary)
    large_lines, large_peak = _work(large.summary)
    assert large_lines == aged_lines  # no line runs once per participant
    # Tick timing is read from a fixed table of buckets: at most a few lines per bucket, however
    # many samples it holds; sorting 300,000 kept samples allocated over 10 MB, this a few kB.
    assert aged_lines <= young_lines + 2 * len(BUCKET_UPPER_MS)
    assert max(aged_peak, large_peak) < 200_000, (young_peak, aged_peak, large_peak)


# --- the counts follow every change ---------------------------------------------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 5), st.booleans(), st.booleans()),
        st.tuples(st.just("connect"), st.integers(0, 5), st.one_of(st.none(), st.integers(1, 3))),
        st.tuples(st.just("finish"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("remove"), st.integers(0, 5), st.booleans()),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_ops)
def test_participant_index_counts_always_equal_a_scan(ops):
    index = ParticipantIndex()
    everyone: list[Participant] = []  # includes participants no longer in the index
    for op in ops:
        kind, n = op[0], op[1]
        if kind == "add":
            participant = Participant(
                participant_id=f"p{n}",
                token="",
                params={},
                finished=op[3],
                connection_id=7 if op[2] else None,
            )
            index[participant.participant_id] = participant  # may replace another with the same id
            everyone.append(participant)
        elif kind in ("connect", "finish"):
            for participant in everyone:
                if participant.participant_id == f"p{n}":
                    if kind == "connect":
                        participant.connection_id = op[2]
                    else:
                        participant.finished = op[2]
        elif f"p{n}" in index:
            if op[2]:
                del index[f"p{n}"]
            else:
                index.pop(f"p{n}")
        assert index.connected == sum(p.connection_id is not None for p in index.values())
        assert index.finished == sum(p.finished for p in index.values())


# --- the histogram's quantiles ---------------------------------------------------------------------------

_durations = st.lists(
    st.one_of(st.floats(0, 12, allow_nan=False), st.floats(0, 200_000, allow_nan=False)),
    min_size=1,
    max_size=400,
)


def _exact(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@settings(max_examples=300, deadline=None)
@given(_durations, st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]))
def test_histogram_quantiles_are_within_a_bucket_of_the_exact_ones_and_never_below(samples, q):
    histogram = LatencyHistogram()
    for value in samples:
        histogram.add(value)
    exact = _exact(samples, q)
    reported = histogram.quantile(q)
    assert reported is not None
    assert reported >= round(exact, 3) - 0.001  # never understates (beyond the rounding to µs)
    if exact <= 100_000:
        assert reported <= max(exact * 1.02, exact + 0.02) + 0.001
    assert histogram.count == len(samples)
    assert histogram.max_ms == max(samples) and histogram.min_ms == min(samples)


@settings(max_examples=200, deadline=None)
@given(_durations, _durations)
def test_quantiles_between_two_snapshots_are_those_of_the_samples_in_between(first, second):
    histogram = LatencyHistogram()
    for value in first:
        histogram.add(value)
    before = histogram.counts()
    for value in second:
        histogram.add(value)
    window = quantiles_between(before, histogram.counts(), (0.5, 0.99))
    for q, value in window.items():
        exact = _exact(second, q)
        bucket = next(upper for upper in BUCKET_UPPER_MS if exact <= upper)
        assert value == round(bucket, 3)
