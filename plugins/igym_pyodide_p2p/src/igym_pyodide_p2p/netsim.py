"""A seeded, simulated network between two P2P peers (tests and ``bench/p2p_engine.py``).

:class:`FaultyLink` is one direction of a link with the page's fault model (``delay_ms``,
``jitter_ms``, ``loss``, ``duplicate``, ``reorder``, plus outages); :class:`PeerPair` plays two
:class:`~igym_pyodide_p2p.browser.p2p_game.P2PBrowserGame` (or anything with their ``tick`` /
``receive``) against each other in simulated time: each peer ticks on its own drift-free deadlines
(``1000 / fps * period_scale``), optionally starting late, and packets cross the links. Everything is
deterministic for a seed, so a failing schedule replays exactly.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

__all__ = ["FaultyLink", "PeerPair"]


class FaultyLink:
    """One direction of a simulated link.

    Args:
        seed: the fault schedule's seed.
        delay_ms: one-way delay.
        jitter_ms: each packet's delay varies uniformly by up to this much either way.
        loss: probability that a packet is dropped.
        duplicate: probability that a packet arrives twice (the copy with its own delay).
        reorder: let packets overtake each other (otherwise delivery is in send order).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        delay_ms: float = 0.0,
        jitter_ms: float = 0.0,
        loss: float = 0.0,
        duplicate: float = 0.0,
        reorder: bool = True,
    ) -> None:
        if not (0.0 <= loss < 1.0 and 0.0 <= duplicate <= 1.0 and delay_ms >= 0 and jitter_ms >= 0):
            raise ValueError("expected 0 <= loss < 1, 0 <= duplicate <= 1, delay_ms >= 0 and jitter_ms >= 0")
        self.rng = random.Random(seed)
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        self.loss = loss
        self.duplicate = duplicate
        self.reorder = reorder
        self.outages: list[tuple[float, float]] = []
        self._queue: list[tuple[float, int, bytes]] = []
        self._order = 0
        self._last_due = 0.0
        self.sent = 0
        self.dropped = 0
        self.duplicated = 0

    def outage(self, start_ms: float, end_ms: float) -> None:
        """Drop every packet sent between ``start_ms`` and ``end_ms``."""
        self.outages.append((start_ms, end_ms))

    def _due(self, now_ms: float) -> float:
        jitter = self.rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        due = now_ms + max(0.0, self.delay_ms + jitter)
        if not self.reorder:
            due = max(due, self._last_due)
            self._last_due = due
        return due

    def send(self, data: bytes, now_ms: float) -> None:
        self.sent += 1
        if any(start <= now_ms < end for start, end in self.outages) or self.rng.random() < self.loss:
            self.dropped += 1
            return
        copies = 1
        if self.duplicate and self.rng.random() < self.duplicate:
            copies = 2
            self.duplicated += 1
        for _ in range(copies):
            self._order += 1
            heapq.heappush(self._queue, (self._due(now_ms), self._order, data))

    def next_due(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def deliver(self, now_ms: float) -> list[bytes]:
        """The packets due by ``now_ms``, in arrival order."""
        out = []
        while self._queue and self._queue[0][0] <= now_ms:
            out.append(heapq.heappop(self._queue)[2])
        return out


class PeerPair:
    """Two peers over two :class:`FaultyLink` s in simulated time.

    Args:
        a, b: the peers (``tick(now_ms)`` → ``{"send", "period_scale", "events", "done", ...}``,
            ``receive(data, now_ms)``).
        a_to_b, b_to_a: the links.
        fps: the ticks' base rate.
        b_start_ms: when ``b`` starts ticking (``a`` starts at 0).
        b_period_scale: a factor on ``b``'s clock (e.g. 0.97: ``b``'s frames come 3 % sooner).
        on_tick: called as ``on_tick(name, peer, out, now_ms)`` after every tick (to set keys, take
            batches, collect events).
    """

    def __init__(
        self,
        a: Any,
        b: Any,
        *,
        a_to_b: FaultyLink,
        b_to_a: FaultyLink,
        fps: int = 30,
        b_start_ms: float = 0.0,
        b_period_scale: float = 1.0,
        on_tick: Callable[[str, Any, dict[str, Any], float], None] | None = None,
    ) -> None:
        self.peers = {"a": a, "b": b}
        self.links = {"a": a_to_b, "b": b_to_a}
        self.fps = fps
        self.next_tick = {"a": 0.0, "b": b_start_ms}
        self.clock_scale = {"a": 1.0, "b": b_period_scale}
        self.on_tick = on_tick
        self.paused: set[str] = set()
        self.now = 0.0
        self.events: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
        self.timeline: dict[str, list[tuple[float, dict[str, Any]]]] = {"a": [], "b": []}
        """Each peer's events with the simulated time they came (from ``tick`` or ``receive``)."""
        self.last_out: dict[str, dict[str, Any]] = {}

    def run(self, *, until_ms: float, stop: Callable[[PeerPair], bool] | None = None) -> None:
        """Advance simulated time to ``until_ms`` (or until ``stop(self)`` is true after a tick)."""
        other = {"a": "b", "b": "a"}
        while True:
            candidates = [(t, 0, name) for name, t in self.next_tick.items() if name not in self.paused]
            for name, link in self.links.items():
                due = link.next_due()
                if due is not None:
                    candidates.append((due, 1, name))
            if not candidates:
                return
            when, what, name = min(candidates)
            if when > until_ms:
                self.now = until_ms
                return
            self.now = when
            if what == 1:
                target = other[name]
                for data in self.links[name].deliver(when):
                    if target in self.paused:
                        continue
                    events = self.peers[target].receive(data, when)
                    self.events[target].extend(events)
                    self.timeline[target].extend((when, event) for event in events)
                continue
            peer = self.peers[name]
            out = peer.tick(when)
            self.last_out[name] = out
            self.events[name].extend(out["events"])
            self.timeline[name].extend((when, event) for event in out["events"])
            for data in out["send"]:
                self.links[name].send(data, when)
            if self.on_tick is not None:
                self.on_tick(name, peer, out, when)
            period = 1000.0 / self.fps * out["period_scale"] * self.clock_scale[name]
            self.next_tick[name] = when + period
            if stop is not None and stop(self):
                return
