"""Hook implementations of igym-pyodide-p2p (and nothing else)."""

from __future__ import annotations
