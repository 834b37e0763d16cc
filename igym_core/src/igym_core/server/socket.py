"""The participant WebSocket: binary msgpack frames in, typed calls on the study, replies out."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from igym_core.errors import AdmissionError, ProtocolError, StudyUnavailableError
from igym_core.protocol.messages import (
    PROTOCOL_VERSION,
    Draft,
    GameReady,
    Hello,
    Input,
    Ping,
    RttEcho,
    Submit,
    decode_client_message,
    encode,
)
from igym_core.server.outbox import FrameOutbox
from igym_core.server.security import origin_allowed
from igym_core.server.ws_protocol import DIRECT_EXTENSION, DirectChannel
from igym_core.session.study import Connection, Study
from igym_core.tasks import BackgroundTasks

__all__ = ["participant_socket"]

log = structlog.get_logger(__name__)

CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013


def _error(code: str, message: str, seq: int | None = None) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "seq": seq}


_GAME_MESSAGES = (Input, GameReady, RttEcho)


class ParticipantWebSocket(WebSocket):
    """Litestar's WebSocket, keeping also the plain ASGI ``receive`` and ``send`` it wraps.

    A server running many games receives about 20 input messages a second from every player and
    sends each a frame per tick; Litestar's wrappers (which track the connection's state for its own
    helpers) add a coroutine to each of those. The hot paths (the receive loop and the frame
    outbox) use the plain callables and keep ``connection_state`` up to date themselves.
    """

    def receive_wrapper(self, receive: Any) -> Any:
        self.asgi_receive = receive
        return super().receive_wrapper(receive)

    def send_wrapper(self, send: Any) -> Any:
        self.asgi_send = send
        return super().send_wrapper(send)


@websocket("/ws", websocket_class=ParticipantWebSocket)
async def participant_socket(socket: ParticipantWebSocket) -> None:
    study: Study = socket.app.state.study
    settings = socket.app.state.settings
    if not origin_allowed(socket.headers, settings.allowed_origins):
        # Closing before accepting refuses the handshake (HTTP 403): another site's page cannot
        # open a participant's socket in their browser.
        log.warning(
            "websocket_origin_rejected",
            origin=socket.headers.get("origin"),
            host=socket.headers.get("host"),
            fix="behind a proxy, pass the Host header on or add the origin to IGYM_ALLOWED_ORIGINS",
        )
        await socket.close(code=CLOSE_POLICY)
        return
    await socket.accept()
    closed = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if not closed.is_set():
            await socket.send_bytes(encode(message))

    async def close(code: int, reason: str) -> None:
        if not closed.is_set():
            closed.set()
            connection.frames.closed = True
            await socket.close(code=code, reason=reason)

    # Under `igym run`, the direct channel of igym's WebSocket protocol (see server/ws_protocol.py).
    direct: DirectChannel | None = socket.scope.get("extensions", {}).get(DIRECT_EXTENSION)
    client = socket.scope.get("client")  # uvicorn's, from X-Forwarded-For with --proxy-headers
    connection = study.open_connection(
        send,
        close,
        lambda cid: FrameOutbox(socket.asgi_send, cid, direct),
        address=client[0] if client else None,
    )
    with structlog.contextvars.bound_contextvars(connection=connection.id):
        try:
            await _serve(socket, study, connection, settings, closed, direct)
        except (WebSocketDisconnect, ConnectionError):
            pass
        except Exception:
            log.exception("socket_failed")
            await _quietly(close(1011, "internal error"))
        finally:
            if direct is not None:
                direct.receiver = None
            connection.frames.closed = True
            study.disconnected(connection)


class _LoopState:
    """Whether ``_serve`` is handling a message (True) or waiting for the next one (False)."""

    __slots__ = ("busy",)

    def __init__(self) -> None:
        self.busy = True


def _direct_receiver(study: Study, connection: Connection, limit: int, state: _LoopState):
    """Handles game messages as they are read (the ``igym.direct`` path); declines everything else.

    Declined messages (anything but ``input`` and ``game_ready``, anything malformed or too large,
    and everything once another tab owns the participant) go through ``_serve`` as usual, which
    replies, logs and closes as the protocol says. While ``_serve`` is still handling an earlier
    message (a submit waiting for its records to reach the disk, say), everything is declined, so
    messages are always handled in the order they arrived.
    """

    def receive(frame: bytes) -> bool:
        if state.busy or len(frame) > limit:
            return False
        try:
            message = decode_client_message(frame)
        except ProtocolError:
            return False
        if not isinstance(message, _GAME_MESSAGES):
            return False
        owner = study.owner(connection)
        if owner is None:
            return False
        try:
            study.game_message(owner, message)
        except ProtocolError as exc:
            log.warning("message_rejected", code=exc.code, reason=str(exc))
            _reply_later(connection, _error(exc.code, str(exc), getattr(message, "seq", None)))
        except Exception:
            log.exception("message_failed", type=message.type)
            _reply_later(
                connection,
                _error(
                    "internal", "The server could not handle that message.", getattr(message, "seq", None)
                ),
            )
        return True

    return receive


def _reply_later(connection: Connection, reply: dict[str, Any]) -> None:
    _pending_replies.spawn(_quietly(connection.send(reply)))


_pending_replies = BackgroundTasks()


async def _serve(
    socket: ParticipantWebSocket,
    study: Study,
    connection: Connection,
    settings: Any,
    closed: asyncio.Event,
    direct: DirectChannel | None = None,
) -> None:
    participant = None
    limit = settings.max_message_bytes
    receive = socket.asgi_receive
    state = _LoopState()
    while not closed.is_set():
        state.busy = False
        if participant is None:
            try:
                event = await asyncio.wait_for(receive(), settings.hello_timeout_ms / 1000)
            except TimeoutError:
                await connection.send(_error("hello_required", "Send 'hello' first."))
                await connection.close(CLOSE_POLICY, "no hello")
                return
        else:
            event = await receive()
        state.busy = True
        if event["type"] == "websocket.disconnect":
            socket.connection_state = "disconnect"  # what Litestar's receive wrapper records
            return
        frame = event.get("bytes")
        if frame is None:
            await connection.send(
                _error("bad_frame", "Text frames are not accepted: send binary msgpack frames.")
            )
            log.warning("message_rejected", code="bad_frame", reason="text frame")
            continue
        if len(frame) > limit:
            await connection.send(_error("too_large", f"Frames are limited to {limit} bytes."))
            log.warning("message_rejected", code="too_large", size=len(frame))
            await connection.close(CLOSE_TOO_BIG, "message too big")
            return
        try:
            message = decode_client_message(frame)
        except ProtocolError as exc:
            log.warning("message_rejected", code=exc.code, reason=str(exc))
            await connection.send(_error(exc.code, str(exc)))
            continue
        if participant is None:
            if not isinstance(message, Hello):
                await connection.send(_error("hello_required", "The first message must be 'hello'."))
                await connection.close(CLOSE_POLICY, "hello required")
                return
            if message.protocol != PROTOCOL_VERSION:
                await connection.send(
                    _error(
                        "protocol_version",
                        f"This server speaks protocol {PROTOCOL_VERSION}; the page sent "
                        f"{message.protocol}. Reload the page.",
                    )
                )
                await connection.close(CLOSE_POLICY, "protocol version")
                return
            try:
                participant = await study.hello(connection, message)
            except StudyUnavailableError as exc:  # its data could not be saved: try again later
                # Debug: the page retries every few seconds, and the recorder already reports
                # the failing sink (once, then a reminder now and then).
                log.debug("participant_refused", code=exc.code, reason=str(exc))
                await connection.send(_error(exc.code, str(exc)))
                await connection.close(CLOSE_TRY_AGAIN_LATER, "data cannot be saved")
                return
            except AdmissionError as exc:  # logged by the study; the page shows the message
                await connection.send(_error(exc.code, str(exc)))
                await connection.close(CLOSE_POLICY, exc.code)
                return
            structlog.contextvars.bind_contextvars(participant_id=participant.participant_id)
            if direct is not None:
                direct.receiver = _direct_receiver(study, connection, limit, state)
            continue
        owner = study.owner(connection)
        if owner is None:  # another tab took over; this socket is being closed
            return
        try:
            if isinstance(message, _GAME_MESSAGES):  # the hot path: no replies
                study.game_message(owner, message)
                continue
            for reply in await _dispatch(study, owner, message):
                await connection.send(reply)
        except ProtocolError as exc:
            log.warning("message_rejected", code=exc.code, reason=str(exc))
            await connection.send(_error(exc.code, str(exc), getattr(message, "seq", None)))
        except Exception:
            log.exception("message_failed", type=message.type)
            await connection.send(
                _error("internal", "The server could not handle that message.", getattr(message, "seq", None))
            )


async def _dispatch(study: Study, participant: Any, message: Any) -> list[dict[str, Any]]:
    if isinstance(message, Submit):
        return await study.submit(participant, message)
    if isinstance(message, Draft):
        return [study.draft(participant, message)]
    if isinstance(message, Ping):
        return [{"type": "pong", "seq": message.seq, "t": message.t, "server_time": time.time() * 1000}]
    if isinstance(message, Hello):
        raise ProtocolError("bad_message", "'hello' was already received on this connection.")
    raise ProtocolError("unknown_type", f"{message.type!r} is not handled here")


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(Exception):
        await awaitable
