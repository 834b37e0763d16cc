"""Who may start as a new participant: link parameters within limits, and a rate per client address.

The study link is public, so anyone can open it any number of times; each opening without a token
creates a participant. :class:`NewParticipantRate` counts new participants per client address in a
fixed 60-second window that starts at the address's first new participant. Its bookkeeping holds
only addresses seen in the last window and never more than ``max_addresses`` of them, so it does not
grow with the number of distinct addresses over time. IPv6 addresses are counted per /64 network
(one host usually has a whole /64 to itself).
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from igym_core.errors import AdmissionError

__all__ = ["NewParticipantRate", "address_key", "check_url_params"]

WINDOW_S = 60.0


def address_key(host: str | None) -> str:
    """The key an address is counted under: IPv4 as is, IPv6 by its /64 network."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]  # not an IP (a test client, a Unix socket): counted as given
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class NewParticipantRate:
    """At most ``limit`` new participants per address in a 60 s window; ``limit`` 0 = no limit."""

    def __init__(
        self,
        limit: int,
        *,
        max_addresses: int = 65_536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.max_addresses = max_addresses
        self._clock = clock
        # address → (window start, count); insertion order = window start order, so expired
        # windows are always at the front.
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def allow(self, address: str) -> bool:
        """Whether ``address`` may start one more new participant now (counted if so)."""
        if self.limit <= 0:
            return True
        now = self._clock()
        self._expire(now)
        window = self._windows.get(address)
        if window is None:
            self._windows[address] = (now, 1)
            if len(self._windows) > self.max_addresses:
                # More addresses in one minute than we keep: forget the oldest window. An attacker
                # with this many addresses is held back by the cap on participants in memory.
                self._windows.popitem(last=False)
            return True
        started, count = window
        if count >= self.limit:
            return False
        self._windows[address] = (started, count + 1)  # keeps its place: same window start
        return True

    def retry_after_s(self, address: str) -> float:
        window = self._windows.get(address)
        if window is None:
            return 0.0
        return max(0.0, window[0] + WINDOW_S - self._clock())

    def _expire(self, now: float) -> None:
        windows = self._windows
        while windows:
            address, (started, _count) = next(iter(windows.items()))
            if now - started < WINDOW_S:
                break
            del windows[address]


def check_url_params(
    params: Mapping[str, str], *, max_count: int, max_name_chars: int, max_value_chars: int
) -> None:
    """Raise :class:`AdmissionError` (code ``url_params``) if the link's parameters break a limit."""
    fix = "Please open the study with the exact link you were given, without added parameters."
    if len(params) > max_count:
        raise AdmissionError(
            "url_params",
            f"This link carries {len(params)} URL parameters; the study accepts at most {max_count}. {fix}",
        )
    for name, value in params.items():
        if len(name) > max_name_chars:
            raise AdmissionError(
                "url_params",
                f"A URL parameter name of this link ({name[:24]!r}…) is {len(name)} characters long; "
                f"the study accepts at most {max_name_chars}. {fix}",
            )
        if len(value) > max_value_chars:
            raise AdmissionError(
                "url_params",
                f"The URL parameter {name!r} of this link is {len(value)} characters long; the study "
                f"accepts at most {max_value_chars}. {fix}",
            )
