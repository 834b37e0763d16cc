"""igym-unity: Unity WebGL builds as scenes of an igym study (see docs/unity.md)."""

from __future__ import annotations

from igym_unity.config import LOAD_FAILED_OUTCOME, TIMEOUT_OUTCOME, UnityScene
from igym_unity.scoring import BridgeEvent, EpisodeEvents

__all__ = ["LOAD_FAILED_OUTCOME", "TIMEOUT_OUTCOME", "BridgeEvent", "EpisodeEvents", "UnityScene"]
