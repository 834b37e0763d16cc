"""Errors of igym-parquet; each message says how to fix the problem."""

from __future__ import annotations

from igym_core.errors import IgymError

__all__ = ["ExportError", "NoDataError"]


class ExportError(IgymError):
    """``igym export`` cannot do what it was asked."""


class NoDataError(ExportError, FileNotFoundError):
    """The directory given to ``igym export`` does not exist or holds no igym data."""
