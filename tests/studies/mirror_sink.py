"""A plugin for end-to-end tests (``igym run --plugin tests.studies.mirror_sink``): a JSONL sink that
writes to the directory named by ``IGYM_TEST_MIRROR_DIR`` instead of the experiment's, so that a test
can put one sink, and only that one, on a small disk it fills up (a real ``ENOSPC``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import attrs

from igym_core.builtin.sink_jsonl import JsonlSink
from igym_core.data.interface import DataSink, SinkConfig
from igym_core.plugins.markers import hookimpl


@attrs.frozen(kw_only=True)
class MirrorSinkConfig(SinkConfig):
    kind: ClassVar[str] = "mirror_test_sink"


class MirrorSink(JsonlSink):
    kind: ClassVar[str] = "mirror_test_sink"
    config_type: ClassVar[type[SinkConfig]] = MirrorSinkConfig

    def __init__(self, config: SinkConfig, directory: Path) -> None:
        super().__init__(config, Path(os.environ["IGYM_TEST_MIRROR_DIR"]))


@hookimpl
def igym_register_data_sinks() -> list[type[DataSink]]:
    return [MirrorSink]
