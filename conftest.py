"""What every test of the repository shares (igym_core/tests, plugins/*/tests, tests/)."""

from __future__ import annotations

from hypothesis import settings

# Hypothesis's per-example deadline (200 ms) judges speed: on a machine busy with parallel tests a
# trivial example took 538 ms and failed as "flaky". The tests judge behaviour; speed is the
# serial run's and the benches' business.
settings.register_profile("igym", deadline=None)
settings.load_profile("igym")
