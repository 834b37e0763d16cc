"""The server's side of one page of a ``pyodide_p2p`` game: its bookkeeping (:class:`Page`) and what
the server forwards between the two pages (:class:`PageForwarding`: WebRTC signalling, the relay on
the page sockets and on the workers' relay sockets, the routes and the engines' events), within the
bounds below. The game (episodes, records, partner rules) is ``p2p_runtime.P2PGame``."""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING, Any

import attrs
import msgspec
import structlog

from igym_core.errors import ProtocolError
from igym_core.runtime import records
from igym_pyodide_p2p.p2p_ingest import PageLedger
from igym_pyodide_p2p.p2p_messages import (
    MAX_RELAY_BYTES,
    P2PEvent,
    P2PRelay,
    P2PRoute,
    P2PSignal,
    relay_wire,
    signal_wire,
)

if TYPE_CHECKING:
    pass

__all__ = [
    "MAX_EVENTS_PER_PAGE",
    "MAX_LOADS_PER_PAGE",
    "MAX_ROUTES_PER_PAGE",
    "MAX_SIGNALS_PER_PAGE",
    "RELAY_PACKETS_PER_S",
    "Page",
    "PageForwarding",
]

log = structlog.get_logger("igym_pyodide_p2p.p2p_runtime")

_pack = msgspec.msgpack.Encoder().encode
#: Signalling messages one page may send in one game (an offer, an answer and the ICE candidates,
#: again after a reload); past it each is refused with ``p2p_signal_limit``.
MAX_SIGNALS_PER_PAGE = 300
#: Relay packets one page may send per second (a page sends one or two per frame at 30-60 fps);
#: past it they are dropped (counted in the game's ``p2p_summary`` record).
RELAY_PACKETS_PER_S = 240
#: ``p2p_event`` records one page may cause in one game; past it they are counted, not recorded.
MAX_EVENTS_PER_PAGE = 2_000
#: ``p2p_route`` reports and loads (``runtime_loaded``: the first and each reload) one page may
#: send in one game; past either, each is refused (``p2p_route_limit`` / ``p2p_reload_limit``):
#: each writes a record, and a reload sends the partner a message.
MAX_ROUTES_PER_PAGE = 50
MAX_LOADS_PER_PAGE = 50


@attrs.define(eq=False)
class Page:
    """One player's page of a P2P game, as the server sees it."""

    seat: str
    partner_seat: str
    participant_id: str
    authority: bool
    ledger: PageLedger
    loaded: bool = False
    #: The last episode this page said it finished (``episode_done``).
    done_episode: int = 0
    route: str | None = None
    signals: int = 0
    relay_window: float = 0.0
    relay_in_window: int = 0
    relayed: int = 0
    relay_dropped: int = 0
    events: int = 0
    events_dropped: int = 0
    routes: int = 0
    loads: int = 0
    absent_since: float | None = None
    #: The scene's partner-left rule was applied to this page's player.
    left: bool = False
    #: The page reloaded (a new page loaded in the game): it resumes from the partner's state.
    reloads: int = 0
    #: When this page last sent steps (monotonic).
    last_progress: float = 0.0
    #: The key this page's worker opens its relay socket with (p2p_relay_socket; new at each
    #: p2p_start), and that socket while open.
    relay_key: str = ""
    worker_relay: Any = None
    #: Packets that went out to this page's worker by its relay socket.
    worker_relayed_out: int = 0


class PageForwarding:
    """What a :class:`~igym_pyodide_p2p.p2p_runtime.P2PGame` forwards between its two pages (a part of
    that class, kept here: it uses the game's ``pages``, ``partner_of``, ``host``, ``runtime``)."""

    # --- signalling, relay, routes, events -----------------------------------------------------
    def _signal(self, page: Page, message: P2PSignal) -> None:
        if page.signals >= MAX_SIGNALS_PER_PAGE:
            raise ProtocolError(
                "p2p_signal_limit",
                f"a page may send at most {MAX_SIGNALS_PER_PAGE} p2p_signal messages in a game; the relay "
                "carries the inputs from here on",
            )
        page.signals += 1
        self.runtime.counters["signals"] += 1
        partner = self.partner_of(page)
        if partner is not page and not partner.left:
            self._offer(partner.participant_id, signal_wire(self.info.game_id, message.signal))

    def _relay(self, page: Page, message: P2PRelay) -> None:
        self.relay_packet(page, message.data)

    # --- the workers' relay sockets (p2p_relay_socket) ----------------------------------------------
    #: Largest packet a worker's relay socket may send (as a ``p2p_relay``'s data).
    max_relay_bytes = MAX_RELAY_BYTES

    def page_for_relay_key(self, key: str) -> Page | None:
        """The page whose current relay key is ``key`` (None: no page of this game, or a retired key)."""
        for page in self.pages.values():
            if page.relay_key and not page.left and hmac.compare_digest(page.relay_key, key):
                return page
        return None

    def attach_worker_relay(self, page: Page, relay: Any) -> None:
        """The page's worker opened its relay socket (a newer socket replaces an older one)."""
        old = page.worker_relay
        page.worker_relay = relay
        if old is not None and old is not relay:
            old.close()
        log.info("p2p_worker_relay_opened", game_id=self.info.game_id, seat=page.seat)

    def detach_worker_relay(self, page: Page, relay: Any) -> None:
        """The page's worker relay socket closed."""
        if page.worker_relay is relay:
            page.worker_relay = None

    def _close_worker_relays(self, page: Page | None = None) -> None:
        for each in [page] if page is not None else list(self.pages.values()):
            if each.worker_relay is not None:
                each.worker_relay.close()
                each.worker_relay = None

    def relay_packet(self, page: Page, data: bytes) -> None:
        """One engine packet from ``page`` (its page socket's ``p2p_relay`` or its worker's relay
        socket) for its partner: to the partner's worker socket when open, else its page socket."""
        now = time.monotonic()
        if now - page.relay_window >= 1.0:
            page.relay_window = now
            page.relay_in_window = 0
        page.relay_in_window += 1
        if page.relay_in_window > RELAY_PACKETS_PER_S:
            page.relay_dropped += 1
            self.runtime.counters["relay_dropped"] += 1
            return
        partner = self.partner_of(page)
        if partner is page or partner.left:
            return
        worker = partner.worker_relay
        if worker is not None and worker.open:
            if worker.offer(data):
                page.relayed += 1
                partner.worker_relayed_out += 1
                self.runtime.counters["relayed"] += 1
            else:
                page.relay_dropped += 1
                self.runtime.counters["relay_dropped"] += 1
            return
        sink = self.host.frame_sink(partner.participant_id)
        # Unreliable by design (as the DataChannel): a busy socket drops the packet, the next
        # packet carries every unacknowledged input again.
        if sink is not None and sink.offer(_pack(relay_wire(self.info.game_id, data))):
            page.relayed += 1
            self.runtime.counters["relayed"] += 1
        else:
            page.relay_dropped += 1
            self.runtime.counters["relay_dropped"] += 1

    def _route(self, page: Page, message: P2PRoute) -> None:
        if page.routes >= MAX_ROUTES_PER_PAGE:
            raise ProtocolError(
                "p2p_route_limit",
                f"a page may report its route at most {MAX_ROUTES_PER_PAGE} times in a game",
            )
        page.routes += 1
        first = page.route is None
        page.route = message.route
        self.host.record(
            records.GAMES,
            records.p2p_route_row(
                self._ids,
                participant_id=page.participant_id,
                seat=page.seat,
                route=message.route,
                rtt_ms=message.rtt_ms,
                input_delay=message.input_delay,
                reason=message.reason,
                episode=self.plays,
            ),
        )
        log.info(
            "p2p_route_chosen",
            game_id=self.info.game_id,
            seat=page.seat,
            route=message.route,
            rtt_ms=message.rtt_ms,
        )
        if (
            first
            and self.started_p2p
            and self.plays == 0
            and self.phase == "loading"
            and all(p.route is not None for p in self._active())
        ):
            self._cancel_timer()
            self._countdown()

    def _event(self, page: Page, message: P2PEvent) -> None:
        if page.events >= MAX_EVENTS_PER_PAGE:
            page.events_dropped += 1
        else:
            page.events += 1
            self.host.record(
                records.P2P_EVENTS,
                records.p2p_event_row(
                    self._ids,
                    participant_id=page.participant_id,
                    seat=page.seat,
                    kind=message.kind,
                    episode=message.episode,
                    frame=message.frame,
                    detail=message.detail,
                    t_server_ms=round(time.time() * 1000, 1),
                ),
            )
        if message.kind == "partner_lost":
            self._partner_lost(page)
