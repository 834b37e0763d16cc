"""A fixed-size histogram of durations in milliseconds: constant memory, constant-time summaries.

``/stats`` used to sort every tick-lateness sample the server had kept (up to 400,000): 110-130 ms
per call on a server that had run a while, during which no game ticked. Here each sample adds one
to a bucket; quantiles walk the (fixed) buckets. Buckets are 0.02 ms wide up to 10 ms and then
grow by 2 % each up to about 100 s (one more bucket holds anything larger), so a quantile is reported
to within 0.02 ms or 2 %, always rounded up (a quantile never understates); the minimum and
maximum are exact.

Two snapshots of :meth:`LatencyHistogram.counts` give the quantiles of what happened between
them (:func:`quantiles_between`); the benchmarks measure their window that way.
"""

from __future__ import annotations

import bisect
import itertools
import math
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["BUCKET_UPPER_MS", "LatencyHistogram", "quantiles_between"]

_LINEAR_STEP_MS = 0.02
_LINEAR_LIMIT_MS = 10.0
_LINEAR_BUCKETS = round(_LINEAR_LIMIT_MS / _LINEAR_STEP_MS)
_GROWTH = 1.02
_TOP_MS = 100_000.0
_LOG_BUCKETS = math.ceil(math.log(_TOP_MS / _LINEAR_LIMIT_MS) / math.log(_GROWTH))
_LOG_GROWTH = math.log(_GROWTH)

#: The upper bound of each bucket, in ms (the last one holds everything above ``_TOP_MS``).
BUCKET_UPPER_MS: tuple[float, ...] = (
    *(round((i + 1) * _LINEAR_STEP_MS, 6) for i in range(_LINEAR_BUCKETS)),
    *(round(_LINEAR_LIMIT_MS * _GROWTH ** (i + 1), 6) for i in range(_LOG_BUCKETS)),
    math.inf,
)


def _bucket(value_ms: float) -> int:
    """The first bucket whose upper bound is at least ``value_ms`` (buckets are ``(lower, upper]``)."""
    if value_ms <= _LINEAR_LIMIT_MS:
        index = max(0, math.ceil(value_ms / _LINEAR_STEP_MS) - 1) if value_ms > 0 else 0
    elif value_ms > BUCKET_UPPER_MS[-2]:
        return len(BUCKET_UPPER_MS) - 1
    else:
        index = _LINEAR_BUCKETS + max(0, math.ceil(math.log(value_ms / _LINEAR_LIMIT_MS) / _LOG_GROWTH) - 1)
    # The float arithmetic above may land one bucket off at a boundary: settle on the bounds table.
    while index > 0 and value_ms <= BUCKET_UPPER_MS[index - 1]:
        index -= 1
    while value_ms > BUCKET_UPPER_MS[index]:
        index += 1
    return index


class LatencyHistogram:
    """Counts of durations (ms) in fixed buckets, with the exact count, minimum and maximum."""

    __slots__ = ("_counts", "count", "max_ms", "min_ms")

    def __init__(self) -> None:
        self._counts = array("Q", bytes(8 * len(BUCKET_UPPER_MS)))
        self.count = 0
        self.min_ms: float | None = None
        self.max_ms: float | None = None

    def add(self, value_ms: float) -> None:
        self._counts[_bucket(value_ms)] += 1
        self.count += 1
        if self.max_ms is None or value_ms > self.max_ms:
            self.max_ms = value_ms
        if self.min_ms is None or value_ms < self.min_ms:
            self.min_ms = value_ms

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1), as the upper bound of its bucket (at most the maximum)."""
        return self.quantiles((q,))[q]

    def quantiles(self, qs: Sequence[float]) -> dict[float, float | None]:
        """Several quantiles from one pass over the buckets."""
        if not self.count or self.max_ms is None:
            return dict.fromkeys(qs)
        values = _quantiles(self._counts, qs)
        return {q: round(min(value, self.max_ms), 3) for q, value in values.items()}

    def counts(self) -> dict[str, int]:
        """The non-empty buckets, by upper bound (ms, as a string: a JSON object's keys)."""
        return {key: n for key, n in zip(_KEYS, self._counts, strict=True) if n}

    def summary(self) -> dict[str, Any]:
        quantiles = self.quantiles((0.5, 0.99))
        return {
            "p50": quantiles[0.5],
            "p99": quantiles[0.99],
            "max": round(self.max_ms, 3) if self.max_ms is not None else None,
            "samples": self.count,
        }


def _key(upper_ms: float) -> str:
    return "inf" if math.isinf(upper_ms) else repr(upper_ms)


_KEYS = tuple(_key(upper) for upper in BUCKET_UPPER_MS)


def _quantiles(counts: Sequence[int], qs: Sequence[float]) -> dict[float, float]:
    cumulative = list(itertools.accumulate(counts))
    total = cumulative[-1]
    out = {}
    for q in qs:
        rank = min(total - 1, int(q * total))  # the sample at this 0-based rank, as sorted(samples)[rank]
        out[q] = BUCKET_UPPER_MS[bisect.bisect_right(cumulative, rank)]
    return out


def quantiles_between(
    before: Mapping[str, int], after: Mapping[str, int], qs: Sequence[float] = (0.5, 0.99)
) -> dict[float, float | None]:
    """Quantiles of the samples added between two :meth:`LatencyHistogram.counts` snapshots."""
    index = {key: i for i, key in enumerate(_KEYS)}
    window = [0] * len(BUCKET_UPPER_MS)
    for key, n in after.items():
        window[index[key]] += n - before.get(key, 0)
    if not sum(window):
        return dict.fromkeys(qs)
    return {q: round(value, 3) for q, value in _quantiles(window, qs).items()}
