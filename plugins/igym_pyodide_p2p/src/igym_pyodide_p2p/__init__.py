"""igym-pyodide-p2p: games whose environment steps in the participant's browser (Pyodide)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("igym-pyodide-p2p")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
