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
masked, unfragmented binary frame under 126 bytes, nothing buffered, no extension negotiated);
anything else goes through ``websockets`` exactly as before. Under any other ASGI server (or
Litestar's test client) the extension is absent and the socket falls back to plain ASGI.

Per-message compression is turned off for this server (``igym run`` passes
``ws_per_message_deflate=False``): game messages are a few hundred bytes, where zlib costs more CPU
than it saves bandwidth, and images are PNG already.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State
from websockets.streams import StreamReader

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
    """uvicorn's ``websockets-sansio`` protocol plus the ``igym.direct`` ASGI extension."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the handshake was accepted; the app has not started yet
            self.direct = DirectChannel(self)
            scope["extensions"][DIRECT_EXTENSION] = self.direct

    def data_received(self, data: bytes) -> None:
        # The plain case of a client message, parsed here: one whole frame, FIN + binary, masked,
        # a 7-bit length, the parser between frames, no fragmented message pending, no extension.
        conn = self.conn
        n = len(data)
        if (
            6 < n < 132
            and data[0] == _FIN_BINARY
            and data[1] == (n - 6) | _MASK_BIT
            and self.handshake_complete
            and conn.state is State.OPEN
            and conn.current_size is None
            and not conn.extensions
            and _parser_between_frames(conn)
        ):
            self.frames = [apply_mask(data[6:], data[2:6])]
            self.curr_msg_data_type = "bytes"
            self.send_receive_event_to_app()
            return
        super().data_received(data)

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
