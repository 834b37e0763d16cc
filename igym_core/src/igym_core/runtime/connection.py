"""Each player's connection during a game, as the server measures it, for every runtime.

A runtime sends each player a round-trip probe (``rtt_probe``) every ``GymScene.rtt_interval_s``;
the page answers with ``rtt_echo`` (``igym_core.builtin.rtt_echo``). A :class:`Link` per player keeps
the probes in flight, the round-trip times of the episode (the ``episodes`` row's summary) and of the
current report period (the ``connection_stats`` rows, every ``GymScene.connection_report_s``), the
counts of what was delivered (frames by the server runtime, steps received by the browser runtimes)
and the state of the scene's slow-connection rule (``igym_core.builtin.slow_connection``).

The server judges only from what it measures: a probe that comes back late, or one still unanswered
when the next is sent, counts as slow; what the page says about itself (``page_delay_ms``, the time
a probe waited in a busy page) is recorded apart and taken out of the network's share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ENDED",
    "MAX_PROBES_IN_FLIGHT",
    "MAX_RTT_PER_REPORT",
    "RECOVERED",
    "WARNED",
    "Link",
    "report_rows",
]

#: Unanswered probes a link remembers (older ones are forgotten: their echo is ignored).
MAX_PROBES_IN_FLIGHT = 8
#: Round-trip times one ``connection_stats`` row lists (a period with more keeps the last ones).
MAX_RTT_PER_REPORT = 64

#: The events :meth:`Link.judge` returns (``games`` rows of that ``event``).
WARNED = "slow_connection_warned"
RECOVERED = "slow_connection_recovered"
ENDED = "slow_connection_ended"


class Link:
    """One player's connection in one game (see the module docstring)."""

    __slots__ = (
        "bytes_sent",
        "connection_id",
        "frames_dropped",
        "frames_sent",
        "last_rtt_ms",
        "page_delay_ms",
        "period_page_delay_ms",
        "period_rtt_ms",
        "probes",
        "probes_answered",
        "probes_sent",
        "reported",
        "rtt_ms",
        "slow_since",
        "slow_warned",
        "steps_received",
    )

    def __init__(self) -> None:
        #: Probes in flight: number -> monotonic send time.
        self.probes: dict[int, float] = {}
        #: The socket the probes in flight went out on (see :meth:`on_socket`).
        self.connection_id: int | None = None
        #: Network round-trip times of this episode (the page's own delay taken out), in ms.
        self.rtt_ms: list[float] = []
        #: How long each answered probe of this episode waited in the page, in ms.
        self.page_delay_ms: list[float] = []
        self.period_rtt_ms: list[float] = []
        self.period_page_delay_ms: list[float] = []
        self.last_rtt_ms: float | None = None
        # Counters since the game began; ``reported`` holds their values at the last report.
        self.probes_sent = 0
        self.probes_answered = 0
        self.frames_sent = 0
        self.frames_dropped = 0
        self.bytes_sent = 0
        self.steps_received = 0
        self.reported: tuple[int, ...] = (0, 0, 0, 0, 0, 0)
        #: Since when (monotonic) every probe came back (or stayed out) over the rule's limit.
        self.slow_since: float | None = None
        #: Warned about a slow connection (the notice says so until it is good again).
        self.slow_warned = False

    # --- probes ------------------------------------------------------------------------------
    def probe_sent(self, n: int, mono: float) -> None:
        probes = self.probes
        probes[n] = mono
        self.probes_sent += 1
        if len(probes) > MAX_PROBES_IN_FLIGHT:  # unanswered ones are forgotten
            del probes[min(probes)]

    def on_socket(self, connection_id: int) -> None:
        """The player's socket now (before a probe goes out): the probes sent on an earlier one
        (before a reload or a reconnect) will never be answered, so they are forgotten rather than
        counted as overdue."""
        if connection_id != self.connection_id:
            self.connection_id = connection_id
            self.probes.clear()

    def overdue_ms(self, mono: float) -> float | None:
        """How long the oldest unanswered probe has been out (ms), or None with none out."""
        if not self.probes:
            return None
        return (mono - min(self.probes.values())) * 1000

    def echoed(self, n: int, page_delay_ms: float | None, mono: float) -> float | None:
        """Probe ``n`` came back: its network round trip (ms), the time the page says it waited
        taken out; None for a probe this link did not send or has forgotten."""
        sent = self.probes.pop(n, None)
        if sent is None:
            return None
        total_ms = (mono - sent) * 1000
        waited_ms = min(page_delay_ms or 0.0, total_ms)
        rtt = total_ms - waited_ms
        self.probes_answered += 1
        self.last_rtt_ms = rtt
        self.rtt_ms.append(rtt)
        period = self.period_rtt_ms
        period.append(rtt)
        if len(period) > MAX_RTT_PER_REPORT:
            del period[0]
        if page_delay_ms is not None:
            self.page_delay_ms.append(waited_ms)
            delays = self.period_page_delay_ms
            delays.append(waited_ms)
            if len(delays) > MAX_RTT_PER_REPORT:
                del delays[0]
        return rtt

    def new_episode(self) -> None:
        self.rtt_ms = []
        self.page_delay_ms = []

    # --- the slow-connection rule --------------------------------------------------------------
    def judge(self, rule: Any, rtt_ms: float, mono: float) -> str | None:
        """One measured round trip (or the age of a probe still out) under ``rule``: the event it
        makes (``slow_connection_warned``, ``…_recovered`` or ``…_ended``), or None.

        Over ``rule.max_rtt_ms`` for ``warn_after_s``: warned; still over ``end_after_s`` later:
        ended (the caller applies the rule). One in time makes the connection good again."""
        if rtt_ms <= rule.max_rtt_ms:
            self.slow_since = None
            if self.slow_warned:
                self.slow_warned = False
                return RECOVERED
            return None
        if self.slow_since is None:
            self.slow_since = mono
            return None
        slow_for = mono - self.slow_since
        if not self.slow_warned and slow_for >= rule.warn_after_s:
            self.slow_warned = True
            return WARNED
        if self.slow_warned and slow_for >= rule.warn_after_s + rule.end_after_s:
            return ENDED
        return None

    def slow_for_s(self, mono: float) -> float:
        return 0.0 if self.slow_since is None else round(mono - self.slow_since, 2)

    # --- reports -----------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """The period's figures for a ``connection_stats`` row (``records.connection_row``), and a
        new period from here."""
        now = (
            self.probes_sent,
            self.probes_answered,
            self.frames_sent,
            self.frames_dropped,
            self.bytes_sent,
            self.steps_received,
        )
        before = self.reported
        self.reported = now
        figures: dict[str, Any] = {
            "rtt_ms": [round(v, 1) for v in self.period_rtt_ms],
            "page_delay_ms": [round(v, 1) for v in self.period_page_delay_ms],
            "probes_sent": now[0] - before[0],
            "probes_answered": now[1] - before[1],
            "frames_sent": now[2] - before[2],
            "frames_dropped": now[3] - before[3],
            "bytes_sent": now[4] - before[4],
            "steps_received": now[5] - before[5],
        }
        self.period_rtt_ms = []
        self.period_page_delay_ms = []
        return figures


def report_rows(
    ids: Mapping[str, Any],
    links: Mapping[str, tuple[str | None, Link]],
    *,
    episode: int,
    step: int,
    period_ms: int,
    connected: Mapping[str, bool],
    runtime_draws: bool,
) -> list[dict[str, Any]]:
    """One ``connection_stats`` row per player (``links``: participant id → (seat, link))."""
    from igym_core.runtime.records import connection_row

    return [
        connection_row(
            ids,
            participant_id=pid,
            seat=seat,
            episode=episode,
            step=step,
            period_ms=period_ms,
            connected=connected.get(pid, False),
            runtime_draws=runtime_draws,
            **link.report(),
        )
        for pid, (seat, link) in links.items()
    ]


def quantile(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def rtt_summary(samples: Sequence[float]) -> dict[str, Any]:
    """Round-trip times of one player in one episode: how many, median, p95 and max (ms)."""
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "median": quantile(ordered, 0.5),
        "p95": quantile(ordered, 0.95),
        "max": round(ordered[-1], 3) if ordered else None,
    }
