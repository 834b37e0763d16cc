"""The participant WebSocket: binary msgpack frames in, typed calls on the study, replies out."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
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
    MessageDecoder,
    PageEvent,
    Ping,
    Submit,
    encode,
)
from igym_core.protocol.server_messages import ErrorMessage, Pong
from igym_core.runtime.interface import RuntimeMessage
from igym_core.server.budget import REJECTION_LOG_INTERVAL_S, InboundBudget, InboundLimits, RejectionTally
from igym_core.server.outbox import FrameOutbox, ReplyOutbox
from igym_core.server.security import origin_allowed
from igym_core.server.ws_protocol import DIRECT_EXTENSION, DirectChannel
from igym_core.session.study import Connection, Study

__all__ = ["participant_socket"]

log = structlog.get_logger(__name__)

CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013
#: How long a client has to answer the server's close (uvicorn would wait 10 s) before it is dropped.
CLOSE_GRACE_S = 2.0


def _error(code: str, message: str, seq: int | None = None) -> dict[str, Any]:
    return ErrorMessage(code=code, message=message, seq=seq).wire()


#: Messages for a game: the built-in ones and every runtime's own (routed by the game coordinator).
_GAME_MESSAGES = (Input, GameReady, RuntimeMessage)


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
    decoder: MessageDecoder = socket.app.state.messages
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
    started = time.monotonic()
    await socket.accept()
    closed = asyncio.Event()
    # Under `igym run`, the direct channel of igym's WebSocket protocol (see server/ws_protocol.py).
    direct: DirectChannel | None = socket.scope.get("extensions", {}).get(DIRECT_EXTENSION)
    conduct = _Conduct(settings.ws_max_errors)

    def dropped(messages: int, size: int) -> None:
        """The reply queue is full: the client is not reading. Drop it; a close frame would wait too."""
        closed.set()
        connection.frames.closed = True
        log.warning(
            "connection_dropped",
            reason="the client is not reading its socket",
            queued=messages,
            queued_bytes=size,
        )
        if direct is not None:
            direct.abort()

    replies = ReplyOutbox(
        socket.asgi_send,
        max_messages=settings.ws_send_queue_messages,
        max_bytes=settings.ws_send_queue_bytes,
        on_overflow=dropped,
    )

    def post(message: dict[str, Any]) -> None:
        """Queue a reply (never waits for the client); error replies count against the error budget."""
        if closed.is_set():
            return
        replies.put({"type": "websocket.send", "bytes": encode(message)})
        if (
            message.get("type") == "error"
            and not conduct.tally.reject(str(message.get("code")), str(message.get("message")))
            and conduct.closing is None
        ):
            conduct.closing = asyncio.ensure_future(close_for_policy())

    async def send(message: dict[str, Any]) -> None:
        post(message)

    async def close(code: int, reason: str) -> None:
        if not closed.is_set():
            closed.set()
            connection.frames.closed = True
            socket.connection_state = "disconnect"  # what Litestar's send wrapper records on close
            replies.put({"type": "websocket.close", "code": code, "reason": reason})
            if direct is not None:  # the client has CLOSE_GRACE_S to answer (uvicorn would wait 10 s)
                asyncio.get_running_loop().call_later(CLOSE_GRACE_S, direct.abort)

    async def close_for_policy() -> None:
        if closed.is_set():
            return
        log.warning(
            "connection_closed_for_policy",
            reason=f"more than {settings.ws_max_errors} rejected messages in {REJECTION_LOG_INTERVAL_S:g} s",
            rejected=conduct.tally.total,
            counts=conduct.tally.counts,
        )
        await close(CLOSE_POLICY, "too many rejected messages")

    client = socket.scope.get("client")  # uvicorn's, from X-Forwarded-For with --proxy-headers
    connection = study.open_connection(
        send,
        close,
        lambda cid: FrameOutbox(socket.asgi_send, cid, direct),
        address=client[0] if client else None,
    )
    connection.user_agent = (socket.headers.get("user-agent") or "")[:512] or None
    with structlog.contextvars.bound_contextvars(connection=connection.id):
        try:
            await _serve(socket, study, connection, settings, closed, direct, post, conduct, started, decoder)
        except (WebSocketDisconnect, ConnectionError):
            pass
        except Exception:
            log.exception("socket_failed")
            await _quietly(close(1011, "internal error"))
        finally:
            if direct is not None:
                direct.receiver = None
                if replies.waiting:  # replies the client never read: do not wait for it any longer
                    direct.abort()
            connection.frames.closed = True
            conduct.tally.flush()
            if direct is not None and direct.throttled:
                log.info("connection_throttled", times=direct.throttled)
            study.disconnected(connection)


class _Conduct:
    """How one connection has behaved: its rejected messages, and the close they led to."""

    __slots__ = ("closing", "tally")

    def __init__(self, max_errors: int) -> None:
        self.tally = RejectionTally(max_errors)
        self.closing: asyncio.Future[None] | None = None


class _LoopState:
    """Whether ``_serve`` is handling a message (True) or waiting for the next one (False)."""

    __slots__ = ("busy",)

    def __init__(self) -> None:
        self.busy = True


def _direct_receiver(
    study: Study,
    connection: Connection,
    limit: int,
    state: _LoopState,
    post: Callable[[dict[str, Any]], None],
    closed: asyncio.Event,
    decoder: MessageDecoder,
):
    """Handles game messages as they are read (the ``igym.direct`` path); declines everything else.

    Declined messages (anything but ``input`` and ``game_ready``, anything malformed or too large,
    and everything once another tab owns the participant) go through ``_serve`` as usual, which
    replies, logs and closes as the protocol says. While ``_serve`` is still handling an earlier
    message (a submit waiting for its records to reach the disk, say), everything is declined, so
    messages are always handled in the order they arrived.
    """

    def receive(frame: bytes) -> bool:
        if closed.is_set():
            return True  # closing: nothing more is handled
        if state.busy or len(frame) > limit:
            return False
        try:
            message = decoder.decode(frame)
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
            post(_error(exc.code, str(exc), getattr(message, "seq", None)))
        except Exception:
            log.exception("message_failed", type=message.type)
            post(
                _error("internal", "The server could not handle that message.", getattr(message, "seq", None))
            )
        return True

    return receive


async def _serve(
    socket: ParticipantWebSocket,
    study: Study,
    connection: Connection,
    settings: Any,
    closed: asyncio.Event,
    direct: DirectChannel | None,
    post: Callable[[dict[str, Any]], None],
    conduct: _Conduct,
    started: float,
    decoder: MessageDecoder,
) -> None:
    participant = None
    limit = settings.max_message_bytes
    receive = socket.asgi_receive
    state = _LoopState()
    # The hello must come within hello_timeout_ms of the connection's start, whatever comes before it.
    hello_deadline = started + settings.hello_timeout_ms / 1000
    # igym's WebSocket protocol budgets a connection where its bytes arrive; through plain ASGI
    # (other servers, the test client) the same budgets are charged here, per message.
    budget = None if direct is not None else InboundBudget(InboundLimits.from_settings(settings), started)
    while not closed.is_set():
        state.busy = False
        if participant is None:
            try:
                event = await asyncio.wait_for(receive(), max(0.0, hello_deadline - time.monotonic()))
            except TimeoutError:
                post(_error("hello_required", "Send 'hello' first."))
                await connection.close(CLOSE_POLICY, "no hello")
                return
        else:
            event = await receive()
        state.busy = True
        if event["type"] == "websocket.disconnect":
            socket.connection_state = "disconnect"  # what Litestar's receive wrapper records
            return
        if closed.is_set():
            return
        frame = event.get("bytes")
        if budget is not None:
            wait = budget.charge(
                len(frame if frame is not None else event.get("text") or ""), time.monotonic()
            )
            if wait > 0:
                await asyncio.sleep(wait)
        if frame is None:
            post(_error("bad_frame", "Text frames are not accepted: send binary msgpack frames."))
            continue
        if len(frame) > limit:
            post(_error("too_large", f"Frames are limited to {limit} bytes."))
            await connection.close(CLOSE_TOO_BIG, "message too big")
            return
        try:
            message = decoder.decode(frame)
        except ProtocolError as exc:
            post(_error(exc.code, str(exc)))
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
                direct.receiver = _direct_receiver(study, connection, limit, state, post, closed, decoder)
            continue
        owner = study.owner(connection)
        if owner is None:  # another tab took over; this socket is being closed
            return
        try:
            if isinstance(message, _GAME_MESSAGES):  # the hot path: no replies
                study.game_message(owner, message)
                continue
            for reply in await _dispatch(study, owner, message):
                post(reply)
        except ProtocolError as exc:
            post(_error(exc.code, str(exc), getattr(message, "seq", None)))
        except Exception:
            log.exception("message_failed", type=message.type)
            post(
                _error("internal", "The server could not handle that message.", getattr(message, "seq", None))
            )


async def _dispatch(study: Study, participant: Any, message: Any) -> list[dict[str, Any]]:
    if isinstance(message, Submit):
        return await study.submit(participant, message)
    if isinstance(message, Draft):
        return [study.draft(participant, message)]
    if isinstance(message, PageEvent):
        study.page_event(participant, message)
        return []
    if isinstance(message, Ping):
        return [Pong(seq=message.seq, t=message.t, server_time=time.time() * 1000).wire()]
    if isinstance(message, Hello):
        raise ProtocolError("bad_message", "'hello' was already received on this connection.")
    raise ProtocolError("unknown_type", f"{message.type!r} is not handled here")


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(Exception):
        await awaitable
