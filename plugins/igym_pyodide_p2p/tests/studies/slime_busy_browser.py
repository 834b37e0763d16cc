"""Slime Volleyball in the browser for the busy-page browser test: the slow-connection study
(``slime_slow_browser.py``) with a round-trip probe every 1.5 s and a rule (over 900 ms for 1 s
warns, 1.5 s more ends the game) that a page whose main thread keeps each probe waiting 1 s would
break if that wait were counted as the network's."""

from __future__ import annotations

import attrs
from slime_slow_browser import experiment as slow

from igym_core import SlowConnection

experiment = attrs.evolve(
    slow,
    experiment_id="slime_busy",
    seed=12,
    scenes=(
        attrs.evolve(
            slow.scenes[0],
            runtime_options={},
            rtt_interval_s=1.5,
            slow_connection=SlowConnection(max_rtt_ms=900, warn_after_s=1.0, end_after_s=1.5),
        ),
        *slow.scenes[1:],
    ),
)
