"""The built-in JSONL sink passes the sink conformance suite (igym_core.testing.sink_conformance)."""

from __future__ import annotations

from igym_core.builtin.sink_jsonl import JsonlSink, JsonlSinkConfig
from igym_core.testing.sink_conformance import SinkConformance


class TestJsonlSinkConformance(SinkConformance):
    sink_type = JsonlSink
    config = JsonlSinkConfig()
