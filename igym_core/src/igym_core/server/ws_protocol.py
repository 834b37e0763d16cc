"""uvicorn's sans-I/O WebSocket protocol with a direct path for game traffic (``igym.direct``).

A server running many games sends each player a frame per tick and receives a key change from each
player several times a second. Through ASGI, each of those messages costs a queue hand-off, a
coroutine switch, a pause and a resume of the socket's reading (two ``epoll_ctl`` calls) and the
generic frame parser; together more than the game's own work. This protocol class, which
``igym run`` gives uvicorn, keeps everything uvicorn does and adds, in the ASGI scope's
``extensions``, an ``igym.direct`` :class:`DirectChannel` through which the participant socket:

- writes a finished binary frame straight to the transport, unless data is still waiting in the
  transport's buffer, in which case it reports the frame as not sent (the game drops it for that
  client and sends a keyframe later); and
- handles incoming binary messages synchronously, as they are read, when nothing is queued ahead
  of them (the receiver may decline a message, which then goes through ASGI as usual, so order is
  kept).

Incoming frames take a shortcut past the generic parser only in the plain case (one complete,
masked, unfragmented binary frame under 64 KiB and within ``ws_max_size``, nothing buffered, no
extension negotiated);
anything else goes through ``websockets`` exactly as before. Under any other ASGI server (or
Litestar's test client) the extension is absent and the socket falls back to plain ASGI.

Every connection is read within its budgets (:mod:`igym_core.server.budget`): a :class:`FrameGate`
follows the client's frames as the bytes arrive and admits them to the parser only while the
connection has frames and bytes left; past that, the rest of the data waits unparsed and reading
the socket is paused until the budgets refill. An honest player (a key change per tick at most)
never gets near them; a flooder fills its own TCP buffers instead of taking the event loop.

Per-message compression is turned off for this server (``igym run`` passes
``ws_per_message_deflate=False``): game messages are a few hundred bytes, where zlib costs more CPU
than it saves bandwidth, and images are PNG already.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, ClassVar

import structlog
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State
from websockets.streams import StreamReader

from igym_core.server.budget import FrameGate, InboundLimits

try:  # the C version ships with websockets on every platform with wheels
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

__all__ = ["DIRECT_EXTENSION", "DirectChannel", "IgymWebSocketProtocol", "frame_header"]

log = structlog.get_logger(__name__)

#: The key of the direct channel in the ASGI scope's ``extensions``.
DIRECT_EXTENSION = "igym.direct"

_FIN_BINARY = 0x82
_MASK_BIT = 0x80

Receiver = Callable[[bytes], bool]

# The parser waits in StreamReader.at_eof() between frames (and only there with an empty buffer).
_AT_EOF_CODE = StreamReader.at_eof.__code__


def _parser_between_frames(conn: Any) -> bool:
    """Whether ``websockets``' parser is waiting for the first byte of a new frame.

    Checked from the generator's own state; if a future ``websockets`` parses differently this is
    False and every frame takes the generic path.
    """
    generator = conn.parser
    for _ in range(4):  # ServerProtocol.parse -> Protocol.parse -> StreamReader.at_eof
        generator = getattr(generator, "gi_yieldfrom", None)
        if generator is None:
            return False
        if getattr(generator, "gi_code", None) is _AT_EOF_CODE:
            return True
    return False


def frame_header(length: int) -> bytes:
    """The header of an unmasked, final, binary WebSocket frame (server to client) of ``length`` bytes."""
    if length < 126:
        return bytes((_FIN_BINARY, length))
    if length < 65536:
        return bytes((_FIN_BINARY, 126)) + length.to_bytes(2, "big")
    return bytes((_FIN_BINARY, 127)) + length.to_bytes(8, "big")


class DirectChannel:
    """The participant socket's direct line to one connection (see the module docstring)."""

    __slots__ = ("_protocol", "receiver")

    @property
    def throttled(self) -> int:
        """How many times reading this connection was paused because it was over its budgets."""
        return self._protocol.throttled

    def __init__(self, protocol: IgymWebSocketProtocol) -> None:
        self._protocol = protocol
        #: Called with each complete binary message while nothing is queued ahead of it; returns
        #: True when it handled the message, False to have it delivered through ASGI ``receive``.
        self.receiver: Receiver | None = None

    @property
    def open(self) -> bool:
        protocol = self._protocol
        return not (protocol.close_sent or protocol.disconnected or protocol.transport.is_closing())

    @property
    def busy(self) -> bool:
        """Whether data is still waiting in the transport's buffer (a frame now would be dropped)."""
        return bool(self._protocol.transport.get_write_buffer_size())

    def abort(self) -> None:
        """Drop the connection at once, discarding whatever is still buffered for the client."""
        if not self._protocol.disconnected:
            self._protocol.transport.abort()

    def write_binary(self, data: bytes) -> bool:
        """Write ``data`` as one binary message now; False (nothing written) if the buffer is not empty.

        Raises ``ConnectionError`` once the connection is closing or closed.
        """
        protocol = self._protocol
        transport = protocol.transport
        if protocol.close_sent or protocol.disconnected or transport.is_closing():
            raise ConnectionError("the WebSocket is closed")
        if transport.get_write_buffer_size():
            return False  # the client has not taken the previous data yet
        n = len(data)
        header = bytes((_FIN_BINARY, n)) if n < 126 else frame_header(n)
        transport.write(header + data)
        return True


class IgymWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol plus the ``igym.direct`` ASGI extension and budgets."""

    #: The budgets of every connection (``configured`` makes a subclass with others).
    limits: ClassVar[InboundLimits] = InboundLimits()

    @classmethod
    def configured(cls, limits: InboundLimits) -> type[IgymWebSocketProtocol]:
        """This protocol with ``limits`` as every connection's budgets (for ``uvicorn.run(ws=...)``)."""
        return type(cls.__name__, (cls,), {"limits": limits})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = FrameGate(self.limits, time.monotonic())
        self.throttled = 0  # times reading was paused for the budgets
        self._held = b""  # data past the budgets, not parsed yet
        self._throttle_timer: asyncio.TimerHandle | None = None
        self._request_tail = b""  # the end of the HTTP request seen so far (before the handshake)
        #: The largest frame (header included) the shortcut takes: a 16-bit length within ws_max_size.
        self._max_plain = min(65535, self.config.ws_max_size) + 8

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the handshake was accepted; the app has not started yet
            self.direct = DirectChannel(self)
            scope["extensions"][DIRECT_EXTENSION] = self.direct

    def data_received(self, data: bytes) -> None:
        if self._held:  # over budget: whatever else arrives waits too, and reading stays paused
            self._held += data
            if not self.read_paused:  # resumed by uvicorn (to read the close reply, say)
                self.read_paused = True
                self.transport.pause_reading()
            return
        # The plain case of a client message, parsed here: one whole frame, FIN + binary, masked,
        # a 7-bit length (a key change) or a 16-bit one (a browser-run game's step batch, about 1.5
        # kB), within uvicorn's ws_max_size, the parser between frames, no fragmented message
        # pending, no extension.
        conn = self.conn
        n = len(data)
        gate = self.gate
        if 6 < n < 132:
            head = 6
            plain = data[0] == _FIN_BINARY and data[1] == (n - 6) | _MASK_BIT
        else:
            head = 8
            plain = (
                133 < n <= self._max_plain
                and data[0] == _FIN_BINARY
                and data[1] == 126 | _MASK_BIT
                and int.from_bytes(data[2:4], "big") == n - 8
            )
        if (
            plain
            and self.handshake_complete
            and conn.state is State.OPEN
            and conn.current_size is None
            and not conn.extensions
            and _parser_between_frames(conn)
            and gate.take_frame(n, time.monotonic())
        ):
            self.frames = [apply_mask(data[head:], data[head - 4 : head])]
            self.curr_msg_data_type = "bytes"
            self.send_receive_event_to_app()
            return
        if not self.handshake_initiated:
            # The HTTP request is the parser's to read, and is not budgeted; frames sent right
            # behind it in the same data are.
            seen = self._request_tail + data
            end = seen.find(b"\r\n\r\n")
            if end < 0:
                self._request_tail = seen[-3:]
                super().data_received(data)
                return
            split = end + 4 - len(self._request_tail)
            self._request_tail = b""
            super().data_received(data[:split])
            data = data[split:]
            if not data or self.transport.is_closing():
                return
        admitted = gate.admit(data, time.monotonic())
        if admitted == len(data):
            super().data_received(data)
            return
        self._held = data[admitted:]
        if admitted:
            super().data_received(data[:admitted])
        self._throttle()

    def _throttle(self) -> None:
        """Stop reading until the budgets cover what is held (uvicorn's own pause stays as it is)."""
        if self.transport.is_closing() or self._throttle_timer is not None:
            return
        self.throttled += 1
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
        self._throttle_timer = self.loop.call_later(self.gate.wait_s(len(self._held)), self._unthrottle)

    def _unthrottle(self) -> None:
        self._throttle_timer = None
        if self.transport.is_closing():
            return
        held, self._held = self._held, b""
        self.data_received(held)
        if self._throttle_timer is None and self.read_paused and self.queue.empty():
            self.read_paused = False
            self.transport.resume_reading()

    async def receive(self) -> Any:
        message = await self.queue.get()
        # uvicorn resumes reading once the app has taken every queued message; not while throttled.
        if self.read_paused and self.queue.empty() and self._throttle_timer is None:
            self.read_paused = False
            self.transport.resume_reading()
        return message

    def connection_lost(self, exc: Exception | None) -> None:
        if self._throttle_timer is not None:
            self._throttle_timer.cancel()
            self._throttle_timer = None
        self._held = b""
        super().connection_lost(exc)

    def send_receive_event_to_app(self) -> None:
        direct: DirectChannel | None = getattr(self, "direct", None)
        if (
            direct is not None
            and direct.receiver is not None
            and self.curr_msg_data_type == "bytes"
            and not self.close_sent
            and self.queue.empty()
        ):
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            try:
                handled = direct.receiver(data)
            except Exception:  # a bug in the receiver must not take the connection down
                log.exception("direct_receiver_failed")
                handled = False
            if handled:
                self.frames = []
                return
        super().send_receive_event_to_app()
