"""The server runtime's one inbound message: the page's echo of an ``rtt_probe``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import attrs

from igym_core.errors import ProtocolError
from igym_core.protocol.messages import game_id_field, int_field, number_field
from igym_core.runtime.interface import RuntimeMessage

__all__ = ["MAX_PAGE_DELAY_MS", "RttEcho"]

MAX_PAGE_DELAY_MS = 60_000.0
"""The longest wait in the page an echo may claim (a larger claim is a bad message)."""


@attrs.frozen
class RttEcho(RuntimeMessage):
    """The page's answer to the server's ``rtt_probe`` number ``n`` (round-trip time).

    ``page_delay_ms`` is how long the probe waited in the page before it was answered (a busy main
    thread), as the page estimates it; None when the page does not say (a Python client).
    """

    type: ClassVar[str] = "rtt_echo"
    n: int
    page_delay_ms: float | None = None

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Self:
        return cls(game_id=game_id_field(data), n=int_field(data, "n"), page_delay_ms=_page_delay(data))


def _page_delay(data: Mapping[str, Any]) -> float | None:
    if data.get("page_delay_ms") is None:
        return None
    value = number_field(data, "page_delay_ms")
    if not 0 <= value <= MAX_PAGE_DELAY_MS:
        raise ProtocolError(
            "bad_message", f"'page_delay_ms' must be between 0 and {MAX_PAGE_DELAY_MS:.0f} ms, got {value!r}"
        )
    return value
