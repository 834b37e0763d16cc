"""The parquet sink passes the sink conformance suite, with the default settings and with files
rotating all the time (so that the kill lands while files are being closed and converted too)."""

from __future__ import annotations

from igym_core.testing.sink_conformance import SinkConformance
from igym_parquet import ParquetSinkConfig
from igym_parquet.sink import ParquetSink


class TestParquetSinkConformance(SinkConformance):
    sink_type = ParquetSink
    config = ParquetSinkConfig()
    hypothesis_examples = 30


class TestParquetSinkRotatingConformance(SinkConformance):
    sink_type = ParquetSink
    config = ParquetSinkConfig(flush_interval_s=0.05, max_file_bytes=4096, max_file_age_s=0.2)
    hypothesis_examples = 15
    crash_runs = 1
