"""``igym export data/<experiment>``: the command-line side of :mod:`igym_parquet.export`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import ClassVar

from igym_core.commands import Command

__all__ = ["ExportCommand"]


class ExportCommand(Command):
    kind: ClassVar[str] = "export"
    help: ClassVar[str] = (
        "turn an experiment's data (JSONL or Parquet sink) into one tidy Parquet file per record type"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("directory", type=Path, help="an experiment's data: data/<experiment_id>")
        parser.add_argument(
            "--out", type=Path, default=None, help="where to write <record_type>.parquet (DIRECTORY/export)"
        )
        parser.add_argument("--format", choices=("parquet",), default="parquet", help="the output format")
        parser.add_argument(
            "--source",
            choices=("auto", "parquet", "jsonl"),
            default="auto",
            help="which sink's files to read when an experiment used both (auto: parquet's)",
        )
        parser.add_argument(
            "--record-type",
            action="append",
            default=[],
            dest="record_types",
            metavar="TYPE",
            help="export only this record type (repeatable); all by default",
        )

    def run(self, args: argparse.Namespace) -> int:
        from igym_parquet.export import export_experiment

        exported = export_experiment(
            args.directory,
            out=args.out,
            source=args.source,
            record_types=args.record_types,
            format=args.format,
        )
        for data in exported:
            sys.stdout.write(f"{data.record_type}: {data.rows} rows ({data.source} sink) -> {data.path}\n")
        return 0
