"""The worker's relay socket of a ``pyodide_p2p`` game: the relay route without the page's main thread.

Where no direct WebRTC connection formed, the engines' packets go through the server. Through the
page's own WebSocket they cross the page's main thread twice (worker → page → server → partner page
→ partner worker), and that thread also draws the game: on a loaded machine its lateness became the
packets' (21–26 fps at load 8–14). So each page's worker opens a WebSocket of its own to
``/plugins/pyodide_p2p/relay/{game_id}`` and the server forwards the raw packet bytes between the
two workers' sockets (to the partner's page socket, as ``p2p_relay``, while the partner's worker
socket is not open).

A worker proves which page it is with the relay key the server sent that page in its ``p2p_start``
(a fresh key at each start: a reloaded page's new key retires the old page's socket). The key is the
socket's first message (never in the URL, so no access log holds it); a socket whose first message
does not come within :data:`KEY_TIMEOUT_S`, or is not a live page's key, is closed with 1008 (policy
violation). After it, each message is one engine packet of at most ``MAX_RELAY_BYTES``; a larger one
closes the socket (1009). The game's relay bounds apply as to ``p2p_relay`` (``RELAY_PACKETS_PER_S``
per page, counted once for both paths). Sends to a worker go through a queue of
:data:`SEND_QUEUE_PACKETS`: a slow socket drops packets (unreliable by design, as the DataChannel:
the next packet carries every unacknowledged input again).

The socket is outside the core's participant WebSocket, so its own bounds stand in for the core's: a
socket for no live game is refused before it is accepted; at most :data:`MAX_AWAITING_KEY` sockets
of the server (counted by its runtime, not the process) wait for their key at once (more are closed
with 1013, try again later); and a worker that sends more than :data:`FLOOD_PACKETS_PER_S` packets
in a second (twice the relay budget, which an honest worker never nears) is closed with 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from igym_pyodide_p2p.assets import PREFIX
from igym_pyodide_p2p.p2p_page import RELAY_PACKETS_PER_S

if TYPE_CHECKING:
    from igym_pyodide_p2p.p2p_runtime import P2PGame

__all__ = [
    "FLOOD_PACKETS_PER_S",
    "KEY_TIMEOUT_S",
    "MAX_AWAITING_KEY",
    "RELAY_PATH",
    "SEND_QUEUE_PACKETS",
    "WorkerRelay",
    "relay_socket",
]

log = structlog.get_logger(__name__)

#: Where a page's worker opens its relay socket (``{game_id}`` is the game's id).
RELAY_PATH = f"{PREFIX}/relay"
#: How long a new relay socket has to send its key.
KEY_TIMEOUT_S = 5.0
#: Packets waiting to go out on one worker's socket; past it new ones are dropped.
SEND_QUEUE_PACKETS = 64
#: Relay sockets of one server (its ``pyodide_p2p`` runtime: ``P2PRuntime.relay_sockets_awaiting_key``)
#: that may wait for their key at once (each waits at most KEY_TIMEOUT_S).
MAX_AWAITING_KEY = 64
#: Packets in one second past which a worker's socket is closed (1008): twice the relay budget.
FLOOD_PACKETS_PER_S = 2 * RELAY_PACKETS_PER_S


class WorkerRelay:
    """One page's worker socket, as the game sees it: :meth:`offer` queues a packet for it."""

    def __init__(self, socket: WebSocket[Any, Any, Any]) -> None:
        self.socket = socket
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=SEND_QUEUE_PACKETS)
        self.open = True

    def offer(self, data: bytes) -> bool:
        """Queue ``data`` for the worker; False (dropped) when the socket is closed or its queue full."""
        if not self.open:
            return False
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            return False
        return True

    def close(self) -> None:
        """Retire the socket (its page reloaded, or the game ended): the sender closes it."""
        if not self.open:
            return
        self.open = False
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    async def send_loop(self) -> None:
        while True:
            data = await self.queue.get()
            if data is None or not self.open:
                break
            try:
                await self.socket.send_bytes(data)
            except Exception:  # the socket went away: the receive loop ends too
                break
        self.open = False
        with contextlib.suppress(Exception):
            await self.socket.close(code=1000)


def _game_of(socket: WebSocket[Any, Any, Any], game_id: str) -> P2PGame | None:
    from igym_pyodide_p2p.p2p_runtime import P2PGame

    study = getattr(socket.app.state, "study", None)
    games = getattr(getattr(study, "games", None), "games", None)
    game = games.get(game_id) if isinstance(games, dict) else None
    return game if isinstance(game, P2PGame) and not game.ended else None


async def _first_key(socket: WebSocket[Any, Any, Any]) -> str | None:
    try:
        async with asyncio.timeout(KEY_TIMEOUT_S):
            message = await socket.receive_data(mode="text")
    except (TimeoutError, WebSocketDisconnect, UnicodeDecodeError):
        return None
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return message if isinstance(message, str) and 0 < len(message) <= 128 else None


@websocket(f"{RELAY_PATH}/{{game_id:str}}")
async def relay_socket(socket: WebSocket[Any, Any, Any], game_id: FromPath[str]) -> None:
    """A page's worker relay socket (see the module docstring)."""
    claimed = _game_of(socket, game_id[:128])
    if claimed is None:
        # Refused at the handshake: nothing to wait for.
        with contextlib.suppress(Exception):
            await socket.close(code=1008, reason="not a live P2P game")
        return
    # The count belongs to this app's runtime: two apps in one process (tests) never share it.
    runtime = claimed.runtime
    if runtime.relay_sockets_awaiting_key >= MAX_AWAITING_KEY:
        log.warning("p2p_relay_socket_refused", reason="too_many_awaiting_key", limit=MAX_AWAITING_KEY)
        with contextlib.suppress(Exception):
            await socket.close(code=1013, reason="too many relay sockets are opening; try again")
        return
    runtime.relay_sockets_awaiting_key += 1
    try:
        await socket.accept()
        key = await _first_key(socket)
    finally:
        runtime.relay_sockets_awaiting_key -= 1
    game = _game_of(socket, game_id[:128]) if key is not None else None
    page = game.page_for_relay_key(key) if game is not None and key is not None else None
    if game is None or page is None:
        with contextlib.suppress(Exception):
            await socket.close(code=1008, reason="not a page of a live P2P game")
        return
    relay = WorkerRelay(socket)
    game.attach_worker_relay(page, relay)
    sender = asyncio.create_task(relay.send_loop())
    limit = game.max_relay_bytes
    window_start = time.monotonic()
    in_window = 0
    try:
        while relay.open:
            try:
                data = await socket.receive_data(mode="binary")
            except WebSocketDisconnect:
                break
            if not isinstance(data, bytes):
                data = str(data).encode()
            if len(data) > limit:
                with contextlib.suppress(Exception):
                    await socket.close(code=1009, reason=f"a relay packet is at most {limit} bytes")
                break
            now = time.monotonic()
            if now - window_start >= 1.0:
                window_start, in_window = now, 0
            in_window += 1
            if in_window > FLOOD_PACKETS_PER_S:
                log.warning("p2p_relay_socket_flooded", game_id=game.info.game_id, limit=FLOOD_PACKETS_PER_S)
                with contextlib.suppress(Exception):
                    await socket.close(
                        code=1008, reason=f"more than {FLOOD_PACKETS_PER_S} relay packets a second"
                    )
                break
            if not relay.open or game.ended:
                break
            game.relay_packet(page, data)
    finally:
        relay.close()
        game.detach_worker_relay(page, relay)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(sender, timeout=1.0)
