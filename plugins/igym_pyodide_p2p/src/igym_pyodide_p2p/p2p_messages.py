"""The messages between a ``pyodide_p2p`` game's pages and the server (the issue 19 contract).

Page → server, besides the pyodide runtime's ``runtime_loaded``, ``runtime_load_failed``,
``step_batch`` and ``episode_done`` (the same classes, declared by both runtimes):

``p2p_signal {game_id, signal}``        WebRTC signalling (an SDP offer/answer or an ICE candidate,
                                        opaque to the server, ≤ 16 KB), forwarded to the partner
``p2p_relay {game_id, data}``           one engine packet (bytes, ≤ 8 KB), forwarded to the partner
``p2p_route {game_id, route, rtt_ms, input_delay, reason}``   the route the page's inputs take
``p2p_event {game_id, kind, episode, frame, detail}``         what the page's engine noticed

Server → page: ``p2p_start``, ``p2p_partner``, and the forwarded ``p2p_signal`` / ``p2p_relay``;
``pyodide_episode``, ``batch_ack`` and ``game_status`` as in the pyodide runtime.

Every ``decode`` checks its fields strictly and raises ``ProtocolError("bad_message", why)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import msgspec

from igym_core.errors import ProtocolError
from igym_core.protocol.server_messages import ServerMessage
from igym_core.runtime.interface import RuntimeMessage
from igym_pyodide_p2p.messages import count_field, game_id_field

__all__ = [
    "EVENT_KINDS",
    "MAX_DETAIL_BYTES",
    "MAX_RELAY_BYTES",
    "MAX_SIGNAL_BYTES",
    "P2PEvent",
    "P2PPartner",
    "P2PRelay",
    "P2PRoute",
    "P2PSignal",
    "P2PStart",
    "relay_wire",
    "signal_wire",
]

#: A signalling message (SDP or ICE candidate) as msgpack; an SDP offer is a few KB.
MAX_SIGNAL_BYTES = 16 * 1024
#: One engine packet: all unacknowledged inputs of a window of 8 frames, hashes and stamps.
MAX_RELAY_BYTES = 8 * 1024
#: An event's ``detail`` map as msgpack.
MAX_DETAIL_BYTES = 2 * 1024
MAX_REASON_CHARS = 200
EVENT_KINDS = (
    "desync_detected",
    "desync_repaired",
    "partner_silent",
    "partner_back",
    "partner_lost",
    "packet_refused",
    "resumed",
    "state_too_large",
    "snapshot_refused",
)
ROUTES = ("direct", "relay")

_encode = msgspec.msgpack.Encoder().encode


def _map(data: Mapping[str, Any], key: str, limit: int, *, required: bool = True) -> dict[str, Any]:
    value = data.get(key, None if required else {})
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ProtocolError("bad_message", f"'{key}' must be a map with string keys")
    try:
        size = len(_encode(value))
    except Exception:
        raise ProtocolError("bad_message", f"'{key}' holds a value that cannot be sent on") from None
    if size > limit:
        raise ProtocolError("bad_message", f"'{key}' takes {size} bytes; at most {limit} are accepted")
    return value


@attrs.frozen
class P2PSignal(RuntimeMessage):
    """WebRTC signalling for the partner (opaque to the server)."""

    type: ClassVar[str] = "p2p_signal"
    game_id: str
    signal: dict[str, Any] = attrs.field(repr=False)

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> P2PSignal:
        return cls(game_id=game_id_field(data), signal=_map(data, "signal", MAX_SIGNAL_BYTES))


@attrs.frozen
class P2PRelay(RuntimeMessage):
    """One engine packet for the partner, through the server (no direct connection)."""

    type: ClassVar[str] = "p2p_relay"
    game_id: str
    data: bytes = attrs.field(repr=False)

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> P2PRelay:
        packet = data.get("data")
        if not isinstance(packet, bytes) or not packet:
            raise ProtocolError("bad_message", "'data' must be bytes (one engine packet)")
        if len(packet) > MAX_RELAY_BYTES:
            raise ProtocolError(
                "bad_message", f"'data' is {len(packet)} bytes; a packet is at most {MAX_RELAY_BYTES}"
            )
        return cls(game_id=game_id_field(data), data=packet)


@attrs.frozen
class P2PRoute(RuntimeMessage):
    """The route the page's inputs take (``direct`` or ``relay``), the round trip it measured,
    the input delay it plays with and, for the relay, why."""

    type: ClassVar[str] = "p2p_route"
    game_id: str
    route: str
    rtt_ms: float | None
    input_delay: int
    reason: str

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> P2PRoute:
        route = data.get("route")
        if route not in ROUTES:
            raise ProtocolError("bad_message", f"'route' must be one of {list(ROUTES)}, got {route!r:.40}")
        rtt = data.get("rtt_ms")
        if rtt is not None and (
            isinstance(rtt, bool)
            or not isinstance(rtt, int | float)
            or not math.isfinite(rtt)
            or not 0 <= rtt <= 60_000
        ):
            raise ProtocolError(
                "bad_message", f"'rtt_ms' must be milliseconds (0 to 60000) or null, got {rtt!r:.40}"
            )
        delay = data.get("input_delay")
        if isinstance(delay, bool) or not isinstance(delay, int) or not 1 <= delay <= 8:
            raise ProtocolError(
                "bad_message", f"'input_delay' must be a whole number from 1 to 8, got {delay!r:.40}"
            )
        reason = data.get("reason", "")
        if reason is None:
            reason = ""
        if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
            raise ProtocolError(
                "bad_message", f"'reason' must be text of at most {MAX_REASON_CHARS} characters"
            )
        return cls(
            game_id=game_id_field(data),
            route=route,
            rtt_ms=None if rtt is None else float(rtt),
            input_delay=delay,
            reason=reason,
        )


@attrs.frozen
class P2PEvent(RuntimeMessage):
    """Something the page's engine noticed (a desync and its repair, a silent or lost partner, …)."""

    type: ClassVar[str] = "p2p_event"
    game_id: str
    kind: str
    episode: int
    frame: int
    detail: dict[str, Any]

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> P2PEvent:
        kind = data.get("kind")
        if kind not in EVENT_KINDS:
            raise ProtocolError("bad_message", f"'kind' must be one of {list(EVENT_KINDS)}, got {kind!r:.40}")
        return cls(
            game_id=game_id_field(data),
            kind=kind,
            episode=count_field(data, "episode"),
            frame=count_field(data, "frame"),
            detail=_map(data, "detail", MAX_DETAIL_BYTES, required=False),
        )


# --- server → page ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class P2PStart(ServerMessage):
    """Both pages have loaded: connect to the partner and play as ``seat``. ``authority``: this page
    makes the WebRTC offer and sends its state for a desync repair or a reloading partner.
    ``resume``: this page reloaded mid-game and resumes from the partner's state."""

    type: ClassVar[str] = "p2p_start"
    game_id: str
    seat: str
    partner_seat: str
    authority: bool
    input_delay: int | str
    window: int
    hash_every: int
    connect_timeout_ms: int
    route: str
    ice_servers: tuple[dict[str, Any], ...]
    silent_notice_ms: int
    lost_after_ms: int
    resume: bool = False
    #: Where this page's worker opens its relay socket, and the key it opens it with
    #: (``p2p_relay_socket``; the key goes to this page only, never to data or logs).
    relay_url: str | None = None
    relay_key: str | None = None
    #: The largest state the pages send each other (``P2POptions.max_state_bytes``).
    max_state_bytes: int | None = None

    def wire(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "game_id": self.game_id,
            "seat": self.seat,
            "partner_seat": self.partner_seat,
            "authority": self.authority,
            "input_delay": self.input_delay,
            "window": self.window,
            "hash_every": self.hash_every,
            "connect_timeout_ms": self.connect_timeout_ms,
            "route": self.route,
            "ice_servers": [dict(s) for s in self.ice_servers],
            "silent_notice_ms": self.silent_notice_ms,
            "lost_after_ms": self.lost_after_ms,
            "resume": self.resume,
            "relay_url": self.relay_url,
            "relay_key": self.relay_key,
            "max_state_bytes": self.max_state_bytes,
        }


@attrs.frozen(kw_only=True)
class P2PPartner(ServerMessage):
    """What the server knows of the partner: their page is ``reloading``, is ``back``, or they ``left``
    (``resume``: with ``back``, the partner resumes from this page's state: send it)."""

    type: ClassVar[str] = "p2p_partner"
    game_id: str
    state: str
    resume: bool | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "game_id": self.game_id, "state": self.state}
        if self.resume is not None:
            out["resume"] = self.resume
        return out


def signal_wire(game_id: str, signal: Mapping[str, Any]) -> dict[str, Any]:
    """The forwarded ``p2p_signal`` (server → partner page)."""
    return {"type": "p2p_signal", "game_id": game_id, "signal": signal}


def relay_wire(game_id: str, data: bytes) -> dict[str, Any]:
    """The forwarded ``p2p_relay`` (server → partner page)."""
    return {"type": "p2p_relay", "game_id": game_id, "data": data}
