"""The server runtime's one inbound message: the page's echo of an ``rtt_probe``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import attrs

from igym_core.protocol.messages import game_id_field, int_field
from igym_core.runtime.interface import RuntimeMessage

__all__ = ["RttEcho"]


@attrs.frozen
class RttEcho(RuntimeMessage):
    """The page's answer to the server's ``rtt_probe`` number ``n`` (round-trip time)."""

    type: ClassVar[str] = "rtt_echo"
    n: int

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Self:
        return cls(game_id=game_id_field(data), n=int_field(data, "n"))
