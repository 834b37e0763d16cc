"""A bot that holds the worker's thread for 150 ms once, at its 20th action (for the scheduler test)."""

from __future__ import annotations

import time
from typing import Any

STALL_AT = 20
STALL_S = 0.15
_calls = [0]


def stall_once(observation: Any) -> int:
    _calls[0] += 1
    if _calls[0] == STALL_AT:
        until = time.perf_counter() + STALL_S
        while time.perf_counter() < until:
            pass
    return 0
