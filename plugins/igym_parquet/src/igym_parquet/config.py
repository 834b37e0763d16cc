"""The ``parquet`` sink's config: how long records may stay in memory, and when files rotate."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from igym_core.config.validators import FieldError, positive
from igym_core.data.interface import SinkConfig

__all__ = ["COMPRESSIONS", "ParquetSinkConfig"]

#: Parquet codecs every pyarrow wheel has.
COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "brotli", "none")


def _compression(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value not in COMPRESSIONS:
        raise FieldError(
            attribute.name, f"must be one of {', '.join(map(repr, COMPRESSIONS))}; got {value!r}."
        )


def _at_least_one_kib(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value < 1024:
        raise FieldError(
            attribute.name, f"must be at least 1024 bytes; got {value!r}. The default is 64 MiB (67108864)."
        )


@attrs.frozen(kw_only=True)
class ParquetSinkConfig(SinkConfig):
    """Select with ``Experiment(sinks=(ParquetSinkConfig(),))``, or ``sinks = [{kind = "parquet"}]`` in TOML.

    Args:
        flush_interval_s: the longest time a record stays only in memory. The server flushes every
            ``flush_interval_ms`` (500 ms) and before it acknowledges an answer; the sink also flushes
            itself this often, whoever calls it. A server killed with ``kill -9`` loses at most this
            much.
        max_file_bytes: an open file is closed as a Parquet file, and a new one started, once it
            holds this much data (in Arrow's format; the Parquet file is usually several times smaller).
        max_file_age_s: an open file is also closed once it is this old, so that a long study leaves
            finished Parquet files behind as it goes.
        compression: the Parquet codec of the closed files.
    """

    kind: ClassVar[str] = "parquet"

    flush_interval_s: float = attrs.field(default=2.0, validator=positive)
    max_file_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=_at_least_one_kib)
    max_file_age_s: float = attrs.field(default=3600.0, validator=positive)
    compression: str = attrs.field(default="zstd", validator=_compression)
