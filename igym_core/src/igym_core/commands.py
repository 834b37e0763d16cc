"""Subcommands of the ``igym`` command that plugins add (``igym onnx check``, ``igym export``).

A plugin returns :class:`Command` subclasses from ``igym_register_commands``; the class's ``kind``
is the subcommand's name. ``igym run``, ``check``, ``plugins`` and ``schema`` are the core's own and cannot be
taken.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from typing import ClassVar

__all__ = ["RESERVED_COMMANDS", "Command"]

#: The core's own subcommands; a plugin command with one of these names is rejected.
RESERVED_COMMANDS = frozenset({"run", "check", "plugins", "schema"})


class Command(ABC):
    """One ``igym <kind>`` subcommand.

    ``help`` is the one-line summary shown by ``igym --help``. :meth:`add_arguments` fills the
    subcommand's parser (it may add sub-subcommands); :meth:`run` returns the exit code. Raise an
    ``IgymError`` for a problem the user can fix: ``igym`` prints its message and exits with 2.
    """

    kind: ClassVar[str] = "command"
    help: ClassVar[str] = ""

    @abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this command's arguments (and sub-subcommands) to its parser."""

    @abstractmethod
    def run(self, args: argparse.Namespace) -> int:
        """Do the work; return the process exit code."""
