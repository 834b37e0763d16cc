"""Frames to one socket without ever waiting for a slow client.

The ASGI servers we run on apply no backpressure to the application: a send to a client whose
socket buffer is full simply waits (uvicorn pauses until the buffer drains). A game loop must not
wait for one participant's network, so frames are *offered*: when the socket is free the frame is
written at once, without a task switch; when an earlier frame is still waiting for the buffer to
drain, the new frame is dropped and counted, and the game sends that client a keyframe next.

Under ``igym run`` the socket has the ``igym.direct`` channel (see :mod:`igym_core.server.ws_protocol`):
a frame is then written straight to the transport when the transport's buffer is empty and dropped
otherwise. Without it (another ASGI server, the test client), frames go through ASGI ``send``:

Why not ``asyncio.create_task(send(frame))`` for every frame: a task per frame costs more than the
send itself (the send is a synchronous ``transport.write`` whenever the client keeps up, which is
nearly always). So the send coroutine is started eagerly, by hand, and a task is created only in
the rare case that it actually has to wait.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from igym_core.server.ws_protocol import DirectChannel

__all__ = ["FrameOutbox", "ReplyOutbox"]

log = structlog.get_logger(__name__)

AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]


class FrameOutbox:
    """One socket's frame path; ``offer`` never blocks."""

    __slots__ = ("_busy", "_direct", "_send", "_tasks", "closed", "connection_id", "dropped", "sent")

    def __init__(self, send: AsgiSend, connection_id: int, direct: DirectChannel | None = None) -> None:
        self._send = send
        self._direct = direct
        self.connection_id = connection_id
        self._busy = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        self.sent = 0
        self.dropped = 0

    @property
    def busy(self) -> bool:
        if self._direct is not None:
            return not self.closed and self._direct.busy
        return self._busy

    def offer(self, frame: bytes) -> bool:
        """Send ``frame`` if the socket is free; return False (and count a drop) otherwise."""
        if self.closed:
            return False
        direct = self._direct
        if direct is not None:
            try:
                written = direct.write_binary(frame)
            except ConnectionError:  # closing; the participant's reconnect gets a keyframe
                self.closed = True
                return False
            if written:
                self.sent += 1
            else:
                self.dropped += 1
            return written
        if self._busy:
            self.dropped += 1
            return False
        coro = self._send({"type": "websocket.send", "bytes": frame})
        try:
            waiting_on = coro.send(None)  # type: ignore[attr-defined]
        except StopIteration:
            self.sent += 1
            return True
        except Exception:
            # The socket is closing or closed; the participant's reconnect gets a keyframe.
            self.closed = True
            return False
        # The send must wait (the client's buffer is full): let a task finish it.
        self._busy = True
        self.sent += 1
        task = asyncio.get_running_loop().create_task(self._finish(coro, waiting_on))  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _finish(self, coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        try:
            await _complete(coro, waiting_on)
        except Exception:
            self.closed = True
            log.debug("frame_send_failed", connection=self.connection_id, exc_info=True)
        finally:
            self._busy = False


async def _complete(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Finish a coroutine started by hand (``coro.send(None)``) that yielded ``waiting_on``."""
    try:
        while True:
            if waiting_on is None:  # a bare yield (sleep(0))
                await asyncio.sleep(0)
            else:
                # Do what asyncio's Task does with a future a coroutine yields: clear its
                # "blocking" flag, or awaiting it again fails ("await wasn't used with future").
                waiting_on._asyncio_future_blocking = False
                try:
                    await waiting_on
                except asyncio.CancelledError:
                    if not waiting_on.cancelled():  # this task was cancelled (shutdown)
                        raise
                except Exception:  # the coroutine sees the outcome when it is resumed
                    pass
            waiting_on = coro.send(None)
    except StopIteration:
        pass
    finally:
        coro.close()


class ReplyOutbox:
    """One socket's replies (everything but game frames), in order, without ever waiting for the client.

    ``put`` writes an ASGI event at once when nothing is waiting ahead of it (the usual case: no
    task, no switch); otherwise it queues the event behind the ones waiting, and one task sends them
    in order as the client reads. The queue is bounded (``max_messages`` events and ``max_bytes``
    bytes): a client that lets more pile up is not reading, and ``put`` then calls ``on_overflow``
    once (which drops the connection) and refuses everything after.
    """

    __slots__ = (
        "_queue",
        "_queued_bytes",
        "_send",
        "_task",
        "closed",
        "max_bytes",
        "max_messages",
        "on_overflow",
    )

    def __init__(
        self,
        send: AsgiSend,
        *,
        max_messages: int,
        max_bytes: int,
        on_overflow: Callable[[int, int], None],
    ) -> None:
        self._send = send
        self._queue: deque[dict[str, Any]] = deque()
        self._queued_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.on_overflow = on_overflow
        self.closed = False

    @property
    def waiting(self) -> bool:
        """Whether replies are still waiting for the client to read."""
        return self._task is not None

    def put(self, event: dict[str, Any]) -> bool:
        """Send or queue ``event`` (an ASGI ``websocket.send`` or ``websocket.close``); False if refused."""
        if self.closed:
            return False
        if self._task is not None:
            size = len(event.get("bytes") or b"")
            if len(self._queue) >= self.max_messages or self._queued_bytes + size > self.max_bytes:
                self.closed = True
                self.on_overflow(len(self._queue), self._queued_bytes)
                return False
            self._queue.append(event)
            self._queued_bytes += size
            return True
        coro = self._send(event)
        try:
            waiting_on = coro.send(None)  # type: ignore[attr-defined]
        except StopIteration:
            return True
        except Exception:  # the socket is closing or closed
            self.closed = True
            coro.close()  # type: ignore[attr-defined]
            return False
        self._task = asyncio.get_running_loop().create_task(self._drain(coro, waiting_on))  # type: ignore[arg-type]
        return True

    async def _drain(self, coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        try:
            await _complete(coro, waiting_on)
            while self._queue and not self.closed:
                event = self._queue.popleft()
                self._queued_bytes -= len(event.get("bytes") or b"")
                await self._send(event)
        except Exception:
            self.closed = True
            log.debug("reply_send_failed", exc_info=True)
        finally:
            self._queue.clear()
            self._queued_bytes = 0
            self._task = None
