"""A plugin for end-to-end tests (``igym run --plugin tests.studies.slow_sink``): a data sink whose
durable flush takes half a second, so that a submit that must reach the disk is slow."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

from igym_core.data.interface import DataSink, SinkConfig
from igym_core.plugins.markers import hookimpl

DURABLE_FLUSH_S = 0.5


@attrs.frozen(kw_only=True)
class SlowSinkConfig(SinkConfig):
    kind: ClassVar[str] = "slow_test_sink"


class SlowSink(DataSink):
    kind: ClassVar[str] = "slow_test_sink"
    config_type: ClassVar[type[SinkConfig]] = SlowSinkConfig

    def __init__(self, config: SinkConfig, directory: Path) -> None:
        super().__init__(config, directory)
        self.rows = 0

    def write(self, record_type: str, row: Mapping[str, Any]) -> None:
        self.rows += 1

    async def flush(self, *, durable: bool = False) -> None:
        if durable:
            await asyncio.sleep(DURABLE_FLUSH_S)

    async def close(self) -> None:
        pass


@hookimpl
def igym_register_data_sinks() -> list[type[DataSink]]:
    return [SlowSink]
