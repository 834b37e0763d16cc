"""The data-sink interface. JSONL is built in; other formats are plugins.

Records are plain mappings tagged with a ``record_type`` (``responses``, ``sessions``, and later
``steps``, ``episodes``, ``matches``). A sink decides how to store each record type but never where
the experiment's directory is: the server hands it the directory, and no client input ever reaches a
path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

__all__ = ["RECORD_TYPE_PATTERN", "DataSink", "SinkConfig", "json_default"]

RECORD_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


def json_default(value: Any) -> Any:
    """What a sink writes for a value JSON has no word for: sets and tuples as lists, bytes as hex,
    numpy scalars and arrays as Python values, anything else as its ``str``. Every sink uses it,
    so the same record reads back the same whichever sink stored it."""
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return str(value)


@attrs.frozen(kw_only=True)
class SinkConfig:
    """Base of every sink's config; a sink plugin subclasses it with its own ``kind``.

    ``required`` (default ``True``): the study tells a participant their data is stored (the end
    scene, its completion code and redirect) only once every required sink has flushed their
    records durably; while a required sink cannot write, participants wait on a "could not save"
    page and new ones are refused. ``required=False`` makes the sink a best-effort mirror: its
    failures are logged, and nobody waits for it.
    """

    kind: ClassVar[str] = "sink"
    required: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))


class DataSink(ABC):
    """Stores records as they happen.

    ``write`` is called on the event loop for every record and must not block (buffer instead);
    ``flush`` makes every record written so far survive a crash of this process, and with
    ``durable=True`` also a crash of the machine (fsync). The server calls ``flush`` at least every
    ``flush_interval_ms`` and with ``durable=True`` before it tells a participant's browser that their
    data is safe (the end scene's redirect).

    A flush that fails (a full disk) raises, and keeps every record it could not store for the
    next flush, in order; it never leaves part of a record where a reader would find it, and a
    record it did store is not stored again by the retry.
    """

    kind: ClassVar[str]
    config_type: ClassVar[type[SinkConfig]]

    def __init__(self, config: SinkConfig, directory: Path) -> None:
        self.config = config
        self.directory = directory
        self.repairs: list[dict[str, Any]] = []
        """What the sink repaired at start (a torn last line, say), one mapping per repair; the
        recorder stores each as a ``data_repairs`` record."""

    @abstractmethod
    def write(self, record_type: str, row: Mapping[str, Any]) -> None:
        """Buffer one record. ``row`` holds JSON-compatible values only."""

    #: Whether this sink has a ``write_many`` of its own (the recorder then hands it a batch of
    #: rows in one call; otherwise it calls ``write`` for each).
    writes_many: ClassVar[bool] = False
    #: Whether this sink's ``write_many`` takes ``json_plain=True`` (see there); others never get it.
    takes_json_plain: ClassVar[bool] = False

    def write_many(self, record_type: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Buffer ``rows`` (in order), all or none: if it raises, none of them was buffered (the
        recorder then writes them one by one with ``write``). Called only when ``writes_many``.

        A sink that sets ``takes_json_plain`` also takes ``json_plain=True``: the caller vouches
        that every value in ``rows`` is a string, an int, a bool, None, a float that is 0 or whose
        magnitude is from 1e-4 to below 1e16, or a list or string-keyed dict of those (values that
        every JSON encoder writes alike), so the sink may skip its own check of them."""
        raise NotImplementedError

    @abstractmethod
    async def flush(self, *, durable: bool = False) -> None:
        """Hand every buffered record to the operating system (and to the disk if ``durable``)."""

    def buffered_bytes(self) -> int | None:
        """How many bytes of written records this sink holds that storage does not have yet (its
        buffers, and a flush under way or failed), as it encodes them; ``None`` if it cannot tell.

        The recorder adds these up to bound the memory that records waiting to be stored take
        (``IGYM_MAX_UNSAVED_BYTES``); for a sink that answers ``None`` it measures the records itself.
        Called once per flush: keep a running count rather than summing the buffers.
        """
        return None

    def read(self, record_type: str) -> Iterator[dict[str, Any]] | None:
        """Records of one type stored by earlier runs, oldest first; ``None`` if this sink cannot read.

        The server uses it at start to restore participants' progress after a restart.
        """
        return None

    @abstractmethod
    async def close(self) -> None:
        """Flush durably and release files. ``write`` is not called afterwards."""
