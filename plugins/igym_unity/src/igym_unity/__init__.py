"""igym-unity: Unity WebGL builds as scenes of an igym study (see docs/unity.md)."""

from __future__ import annotations

from igym_unity.config import LOAD_FAILED_OUTCOME, TIMEOUT_OUTCOME, UnityScene

__all__ = ["LOAD_FAILED_OUTCOME", "TIMEOUT_OUTCOME", "UnityScene"]
