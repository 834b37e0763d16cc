"""Fans records out to the experiment's sinks and flushes them on a schedule."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from igym_core.data.interface import DataSink
from igym_core.errors import DataNotSavedError

__all__ = ["Recorder", "iso_utc", "utc_now_iso"]

log = structlog.get_logger(__name__)


def utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_utc(timestamp: float) -> str:
    """A Unix timestamp as the records write times: ``2026-11-23T17:00:00.123Z``."""
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Clock:
    """``utc_now_iso()``, formatted once per second (and the milliseconds once per millisecond)
    rather than once per record.

    A server running many games writes thousands of records a second, most of them within the same
    millisecond as another; formatting a datetime (1.5 µs) costs more than encoding the record.
    """

    __slots__ = ("_ms", "_prefix", "_second", "_text")

    def __init__(self) -> None:
        self._ms = -1
        self._second = -1
        self._prefix = ""
        self._text = ""

    def now(self) -> str:
        ms = int(time.time() * 1000)
        if ms != self._ms:
            second = ms // 1000
            if second != self._second:
                self._prefix = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
                self._second = second
            self._text = f"{self._prefix}{ms % 1000:03d}Z"
            self._ms = ms
        return self._text


class _SinkHealth:
    """Whether a sink's last flush failed, since when, and when the operator was last told."""

    __slots__ = ("error", "since", "told_at")

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.since = 0.0
        self.told_at = 0.0


def _error_name(error: BaseException) -> str | None:
    """``ENOSPC`` for a full disk, and so on: the word an operator searches for."""
    number = getattr(error, "errno", None)
    return errno.errorcode.get(number) if isinstance(number, int) else None


class Recorder:
    """Writes every record to every sink; flushes at least every ``flush_interval_ms``.

    Each sink fails alone: every sink is flushed every time, and a failing one neither stops the
    others nor loses its records (it keeps them for the next flush). ``flush`` raises
    :class:`DataNotSavedError` once all were tried if a *required* sink (``SinkConfig.required``,
    the default) failed; a best-effort sink's failures are only logged. The log says when a sink
    starts failing and when it recovers, once each, and reminds every ``reminder_interval_s``
    while it fails: which sink, the error (``ENOSPC``...) and the data directory.
    """

    def __init__(
        self,
        sinks: Sequence[DataSink],
        *,
        base: Mapping[str, Any],
        flush_interval_ms: int = 500,
        reminder_interval_s: float = 60.0,
    ) -> None:
        self.sinks = list(sinks)
        self.base = dict(base)
        self.flush_interval_s = flush_interval_ms / 1000
        self.reminder_interval_s = reminder_interval_s
        self._task: asyncio.Task[None] | None = None
        self.records_written = 0
        self._clock = _Clock()
        self._health = {id(sink): _SinkHealth() for sink in self.sinks}

    @property
    def saving(self) -> bool:
        """False while a required sink's last flush failed (its records wait in memory)."""
        return not any(self._health[id(sink)].error is not None for sink in self.sinks if _required(sink))

    def write(self, record_type: str, row: Mapping[str, Any]) -> None:
        full = {**self.base, "timestamp": self._clock.now(), **row}
        for sink in self.sinks:
            try:
                sink.write(record_type, full)
            except Exception:
                log.exception("sink_write_failed", sink=sink.kind, record_type=record_type)
        self.records_written += 1

    async def flush(self, *, durable: bool = False) -> None:
        """Flush every sink; raise :class:`DataNotSavedError` if a required one failed."""
        failures: list[tuple[str, BaseException]] = []
        for sink in self.sinks:
            try:
                await sink.flush(durable=durable)
            except Exception as error:
                self._failed(sink, error)
                if _required(sink):
                    failures.append((sink.kind, error))
            else:
                self._flushed(sink)
        if failures:
            raise DataNotSavedError(failures, str(self.sinks[0].directory))

    def _failed(self, sink: DataSink, error: BaseException) -> None:
        health = self._health[id(sink)]
        now = time.monotonic()
        fields = {
            "sink": sink.kind,
            "required": _required(sink),
            "error": str(error) or repr(error),
            "errno": _error_name(error),
            "data_dir": str(sink.directory),
        }
        if health.error is None:
            health.since = health.told_at = now
            log.error(
                "sink_failed",
                **fields,
                exc_info=error,
                consequence=(
                    "records wait in memory and are retried; participants who finish a scene wait "
                    "on a 'could not save' page and new participants are refused until it writes again"
                    if _required(sink)
                    else "a best-effort sink (required=False): records wait in memory and are retried"
                ),
            )
        elif now - health.told_at >= self.reminder_interval_s:
            health.told_at = now
            log.error("sink_still_failing", **fields, failing_for_s=round(now - health.since, 1))
        health.error = error

    def _flushed(self, sink: DataSink) -> None:
        health = self._health[id(sink)]
        if health.error is not None:
            log.warning(
                "sink_recovered",
                sink=sink.kind,
                data_dir=str(sink.directory),
                failed_for_s=round(time.monotonic() - health.since, 1),
            )
            health.error = None

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            with contextlib.suppress(Exception):  # already logged; the next flush may succeed
                await self.flush()

    async def __aenter__(self) -> Recorder:
        for sink in self.sinks:  # what a sink repaired at start (a torn line) is part of the data
            for repair in getattr(sink, "repairs", ()):
                self.write("data_repairs", {"sink": sink.kind, **repair})
        self._task = asyncio.create_task(self._flush_forever(), name="igym-recorder-flush")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception:
                log.exception("sink_close_failed", sink=sink.kind)


def _required(sink: DataSink) -> bool:
    return bool(getattr(sink.config, "required", True))
