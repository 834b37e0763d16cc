"""igym-parquet: the ``parquet`` data sink and ``igym export``."""

from __future__ import annotations

from igym_parquet.config import ParquetSinkConfig

__version__ = "0.1.0"

__all__ = ["ParquetSinkConfig", "__version__"]
