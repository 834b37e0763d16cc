"""Fans records out to the experiment's sinks and flushes them on a schedule."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import msgspec
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
    """Whether a sink's last flush (or write) failed, since when, and when the operator was last
    told; the records its ``write`` refused, kept for a retry; and, for a sink that cannot say how
    much it holds (``buffered_bytes() is None``), the recorder's own count of it."""

    __slots__ = ("counted", "dropped", "error", "held", "held_bytes", "since", "told_at")

    def __init__(self, counted: bool) -> None:
        self.error: BaseException | None = None
        self.since = 0.0
        self.told_at = 0.0
        #: Records ``write`` raised on (and every later one, to keep their order): (type, row, bytes).
        self.held: deque[tuple[str, dict[str, Any], int]] = deque()
        self.held_bytes = 0
        #: The recorder's count of bytes written to a sink that does not report them, or None.
        self.counted: int | None = 0 if counted else None
        #: Records a best-effort sink's write refused (they are not kept for it).
        self.dropped = 0


_SIZE = msgspec.json.Encoder(enc_hook=str)


def record_size(row: Mapping[str, Any]) -> int:
    """About how many bytes ``row`` takes once stored: its JSON encoding (values JSON has no word
    for as their ``str``). Used only where a sink does not say, and for records kept for a retry."""
    try:
        return len(_SIZE.encode(row))
    except Exception:  # a value msgspec cannot encode even as str (a float key, ...)
        return len(repr(row))


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

    A required sink whose ``write`` raises fails the same way: the recorder keeps the record (and
    every later one for that sink, in order) and writes them again at each flush. Memory is bounded:
    after every flush, if a required sink fails and the records waiting to be stored reach
    ``max_unsaved_bytes``, :attr:`holding` turns True and the ``hold_listeners`` are told (the
    study's games pause); once every required sink stores again they are told False.
    """

    def __init__(
        self,
        sinks: Sequence[DataSink],
        *,
        base: Mapping[str, Any],
        flush_interval_ms: int = 500,
        reminder_interval_s: float = 60.0,
        max_unsaved_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.sinks = list(sinks)
        self.base = dict(base)
        #: Every field the recorder adds is a string (the timestamp is one): ``json_plain`` holds.
        self._base_is_text = all(type(v) is str for v in self.base.values())
        self.flush_interval_s = flush_interval_ms / 1000
        self.reminder_interval_s = reminder_interval_s
        self.max_unsaved_bytes = max_unsaved_bytes
        self._task: asyncio.Task[None] | None = None
        self.records_written = 0
        self._clock = _Clock()
        self._health = {id(sink): _SinkHealth(sink.buffered_bytes() is None) for sink in self.sinks}
        self._counting = any(health.counted is not None for health in self._health.values())
        #: True while recording is held back: a required sink fails and the records waiting for it
        #: reached ``max_unsaved_bytes`` (see :meth:`_check_unsaved`).
        self.holding = False
        #: Called with True when recording must stop (games pause) and False when it may go on.
        self.hold_listeners: list[Callable[[bool], None]] = []

    @property
    def saving(self) -> bool:
        """False while a required sink's last flush or write failed (its records wait in memory)."""
        return not any(self._health[id(sink)].error is not None for sink in self.sinks if _required(sink))

    def unsaved_bytes(self) -> int:
        """Bytes of records written and not stored yet, in every sink's memory and the recorder's
        (records a sink's ``write`` refused). Each sink's as it reports it (``buffered_bytes``), or
        as the recorder counted it for a sink that does not."""
        total = 0
        for sink in self.sinks:
            health = self._health[id(sink)]
            held = health.counted if health.counted is not None else sink.buffered_bytes()
            total += (held or 0) + health.held_bytes
        return total

    def write(self, record_type: str, row: Mapping[str, Any]) -> None:
        full = {**self.base, "timestamp": self._clock.now(), **row}
        size = record_size(full) if self._counting else -1
        for sink in self.sinks:
            health = self._health[id(sink)]
            if health.held:  # earlier records wait for this sink's write: this one waits behind them
                if size < 0:
                    size = record_size(full)
                health.held.append((record_type, full, size))
                health.held_bytes += size
                continue
            try:
                sink.write(record_type, full)
            except Exception as error:
                if size < 0:
                    size = record_size(full)
                self._write_failed(sink, health, record_type, full, size, error)
                continue
            if health.counted is not None:
                health.counted += size
        self.records_written += 1

    def write_many(
        self, record_type: str, rows: Sequence[Mapping[str, Any]], *, json_plain: bool = False
    ) -> None:
        """``write`` for each of ``rows``, in order, with one timestamp (a batch of steps that
        arrived together). A sink that ``writes_many`` gets them in one call; if it refuses them (it
        then buffered none), and for every other sink, they are written one by one as ``write``
        does, with the same handling of what a sink refuses. ``json_plain``: the caller vouches for
        the rows' values as ``DataSink.write_many`` describes; it is passed on to the sinks that
        take it (when the recorder's own fields are strings too)."""
        base = self.base
        plain = json_plain and self._base_is_text
        now = self._clock.now()
        fulls = [{**base, "timestamp": now, **row} for row in rows]
        if not fulls:
            return
        for sink in self.sinks:
            health = self._health[id(sink)]
            if sink.writes_many and not health.held and health.counted is None:
                try:
                    if plain and sink.takes_json_plain:
                        sink.write_many(record_type, fulls, json_plain=True)  # type: ignore[call-arg]
                    else:
                        sink.write_many(record_type, fulls)
                except Exception:  # none was buffered: one by one, which keeps what it refuses
                    pass
                else:
                    continue
            self._write_each(sink, health, record_type, fulls)
        self.records_written += len(fulls)

    def _write_each(
        self, sink: DataSink, health: _SinkHealth, record_type: str, fulls: list[dict[str, Any]]
    ) -> None:
        """``write``'s handling of one sink, for each of ``fulls``."""
        for full in fulls:
            if health.held:
                size = record_size(full)
                health.held.append((record_type, full, size))
                health.held_bytes += size
                continue
            try:
                sink.write(record_type, full)
            except Exception as error:
                self._write_failed(sink, health, record_type, full, record_size(full), error)
                continue
            if health.counted is not None:
                health.counted += record_size(full)

    def _write_failed(
        self,
        sink: DataSink,
        health: _SinkHealth,
        record_type: str,
        row: dict[str, Any],
        size: int,
        error: BaseException,
    ) -> None:
        """A sink's ``write`` raised. A required sink's record is kept, and written again (with every
        later one, in order) at the next flush; until then the sink counts as failing, exactly as
        if its flush had failed. A best-effort sink's record is dropped from that sink, counted
        and logged (``records_dropped`` in ``sink_failed`` / ``sink_still_failing`` / ``sink_recovered``)."""
        if _required(sink):
            health.held.append((record_type, row, size))
            health.held_bytes += size
        else:
            health.dropped += 1
        self._failed(sink, error, record_type=record_type)

    def _write_held(self, sink: DataSink, health: _SinkHealth) -> None:
        """Hand a sink the records its ``write`` refused, oldest first; raise if it refuses again."""
        held = health.held
        while held:
            record_type, row, size = held[0]
            sink.write(record_type, row)
            held.popleft()
            health.held_bytes -= size
            if health.counted is not None:
                health.counted += size

    def read(self, record_type: str) -> Iterator[dict[str, Any]] | None:
        """Records of one type stored by earlier runs, from the first sink that can read them;
        ``None`` if none can. (Restoring participants and completing interrupted games read here.)"""
        for sink in self.sinks:
            records = sink.read(record_type)
            if records is not None:
                return records
        return None

    async def flush(self, *, durable: bool = False) -> None:
        """Flush every sink; raise :class:`DataNotSavedError` if a required one failed."""
        failures: list[tuple[str, BaseException]] = []
        for sink in self.sinks:
            health = self._health[id(sink)]
            counted = health.counted
            dropped = health.dropped
            try:
                self._write_held(sink, health)
                counted = health.counted
                await sink.flush(durable=durable)
            except Exception as error:
                self._failed(sink, error)
                if _required(sink):
                    failures.append((sink.kind, error))
            else:
                if counted is not None and health.counted is not None:
                    health.counted -= counted  # what was written before this flush is stored now
                if not health.held and health.dropped == dropped:  # no write failed meanwhile
                    self._flushed(sink)
        self._check_unsaved()
        if failures:
            raise DataNotSavedError(failures, str(self.sinks[0].directory))

    def _check_unsaved(self) -> None:
        """After every flush: hold recording back while a required sink fails and the records
        waiting to be stored reached ``max_unsaved_bytes``; let it go on once every required sink
        stores again. The listeners (the study's games) pause and resume."""
        if self.holding:
            if not self.saving:
                return
            self.holding = False
            log.warning("recording_resumed", unsaved_bytes=self.unsaved_bytes())
        else:
            if self.saving:
                return
            unsaved = self.unsaved_bytes()
            if unsaved < self.max_unsaved_bytes:
                return
            self.holding = True
            log.error(
                "recording_held",
                unsaved_bytes=unsaved,
                max_unsaved_bytes=self.max_unsaved_bytes,
                data_dir=str(self.sinks[0].directory) if self.sinks else None,
                consequence=(
                    "records waiting to be stored reached IGYM_MAX_UNSAVED_BYTES: every running game "
                    "pauses (its players see the saving message) until the data can be saved again"
                ),
            )
        for listener in list(self.hold_listeners):
            try:
                listener(self.holding)
            except Exception:
                log.exception("hold_listener_failed", holding=self.holding)

    def _failed(self, sink: DataSink, error: BaseException, *, record_type: str | None = None) -> None:
        health = self._health[id(sink)]
        now = time.monotonic()
        fields: dict[str, Any] = {
            "sink": sink.kind,
            "required": _required(sink),
            "error": str(error) or repr(error),
            "errno": _error_name(error),
            "data_dir": str(sink.directory),
        }
        if record_type is not None:
            fields["failed_in"] = "write"
            fields["record_type"] = record_type
        if health.held:
            fields["records_held"] = len(health.held)
        if health.dropped:
            fields["records_dropped"] = health.dropped
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
                    else "a best-effort sink (required=False): records wait in memory and are retried; "
                    "records its write refuses are dropped from it (counted as records_dropped)"
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
                **({"records_dropped": health.dropped} if health.dropped else {}),
            )
            health.error = None
            health.dropped = 0

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
