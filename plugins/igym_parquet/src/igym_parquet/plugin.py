"""The igym-parquet plugin's hook implementations: the ``parquet`` data sink and ``igym export``."""

from __future__ import annotations

from igym_core.commands import Command
from igym_core.data.interface import DataSink
from igym_core.plugins.markers import hookimpl
from igym_parquet.command import ExportCommand
from igym_parquet.sink import ParquetSink


@hookimpl
def igym_register_data_sinks() -> list[type[DataSink]]:
    return [ParquetSink]


@hookimpl
def igym_register_commands() -> list[type[Command]]:
    return [ExportCommand]
