"""The rollback engine's clock: the round trip to the partner, time sync (the frame advantage and the
stretched frame period) and the disconnect timers (``partner_silent``, ``partner_lost``).

A part of :class:`~igym_pyodide_p2p.browser.rollback.RollbackEngine` (see its module docstring,
"Time sync" and "Disconnects"). Pure Python, standard library only."""

from __future__ import annotations

from typing import Any

from igym_pyodide_p2p.browser.rollback_packets import (
    MAX_STRETCH,
)

__all__ = ["EngineClock"]


class EngineClock:
    """The round trip, time sync and disconnect timers of
    :class:`~igym_pyodide_p2p.browser.rollback.RollbackEngine` (a part of it: it uses the engine's
    state, set in its ``__init__`` and ``_reset_episode_state``)."""

    @property
    def rtt_ms(self) -> float | None:
        """The median of the last round trips measured (None before the first)."""
        if not self._rtts:
            return None
        ordered = sorted(self._rtts)
        middle = len(ordered) // 2
        if len(ordered) % 2:
            return ordered[middle]
        return (ordered[middle - 1] + ordered[middle]) / 2.0

    def _time_sync(self, now_ms: float) -> None:
        if self._remote_frame is None or self.solo:
            self.period_scale = 1.0
            return
        rtt = self.rtt_ms or 0.0
        elapsed = max(0.0, now_ms - self._remote_frame_at) + rtt / 2.0
        estimate = min(self._remote_frame + elapsed * self.fps / 1000.0, float(self.max_steps))
        self._advantages.append(self.frame - estimate)
        average = sum(self._advantages) / len(self._advantages)
        if average >= 1.0:
            # Give back half the advantage; a larger advantage is given back faster (≤ 10 %).
            self.period_scale = 1.0 + min(MAX_STRETCH, (average / 2.0) * MAX_STRETCH / 2.0)
        else:
            self.period_scale = 1.0

    @property
    def advantage(self) -> float | None:
        """This peer's averaged frame advantage over the partner (None before the partner spoke)."""
        if not self._advantages:
            return None
        return sum(self._advantages) / len(self._advantages)

    def _timers(self, now_ms: float, events: list[dict[str, Any]]) -> None:
        if self.episode == 0 or self.solo or self.stopped:
            return
        if self._last_recv_ms is None:
            self._last_recv_ms = now_ms  # the timers start at the first tick
            return
        silent = now_ms - self._last_recv_ms
        if silent >= self.silent_notice_ms and not self._silent_noticed:
            self._silent_noticed = True
            events.append(self._event("partner_silent", {"silent_ms": round(silent)}))
        if silent >= self.lost_after_ms and not self._lost_reported:
            self._lost_reported = True
            events.append(self._event("partner_lost", {"silent_ms": round(silent)}))
