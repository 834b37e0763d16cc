"""FrameOutbox: frames go out at once when the socket is free and are dropped, never queued, when not.
ReplyOutbox: replies go out at once when nothing waits, queue in order otherwise, up to a bound.

The send function here behaves like uvicorn's: it writes synchronously unless the transport is
paused, in which case it waits until writing resumes.
"""

from __future__ import annotations

import asyncio

import pytest

from igym_core.server.outbox import FrameOutbox, ReplyOutbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class PausableSocket:
    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.written: list[bytes] = []
        self.fail = False

    async def send(self, event: dict) -> None:
        await self.writable.wait()
        if self.fail:
            raise ConnectionError("closed")
        self.written.append(event["bytes"])


async def test_free_socket_sends_synchronously_without_a_task():
    socket = PausableSocket()
    outbox = FrameOutbox(socket.send, 1)
    tasks_before = len(asyncio.all_tasks())
    assert outbox.offer(b"a")
    assert outbox.offer(b"b")
    # Written before any await: no task was needed.
    assert socket.written == [b"a", b"b"]
    assert len(asyncio.all_tasks()) == tasks_before
    assert (outbox.sent, outbox.dropped) == (2, 0)


async def test_paused_socket_drops_frames_until_it_drains_then_delivers_in_order():
    socket = PausableSocket()
    outbox = FrameOutbox(socket.send, 1)
    socket.writable.clear()
    assert outbox.offer(b"first")  # accepted: waits for the buffer
    assert outbox.busy
    assert not outbox.offer(b"second")  # dropped while the first waits
    assert not outbox.offer(b"third")
    for _ in range(5):  # the waiting send's task runs while the socket is still paused
        await asyncio.sleep(0)
    assert socket.written == [] and outbox.busy and not outbox.closed
    socket.writable.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert socket.written == [b"first"]
    assert not outbox.busy
    assert outbox.offer(b"fourth")
    assert socket.written == [b"first", b"fourth"]
    assert (outbox.sent, outbox.dropped) == (2, 2)


async def test_a_failing_socket_closes_the_outbox_instead_of_raising():
    socket = PausableSocket()
    socket.fail = True
    outbox = FrameOutbox(socket.send, 1)
    assert not outbox.offer(b"x")
    assert outbox.closed
    assert not outbox.offer(b"y")


async def test_failure_after_waiting_frees_the_outbox():
    socket = PausableSocket()
    outbox = FrameOutbox(socket.send, 1)
    socket.writable.clear()
    assert outbox.offer(b"x")
    socket.fail = True
    socket.writable.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert outbox.closed
    assert not outbox.busy


def _reply(data: bytes) -> dict:
    return {"type": "websocket.send", "bytes": data}


async def test_replies_wait_in_order_and_a_client_that_lets_too_many_wait_is_dropped_once():
    socket = PausableSocket()
    overflows: list[tuple[int, int]] = []
    replies = ReplyOutbox(
        socket.send, max_messages=3, max_bytes=100, on_overflow=lambda n, b: overflows.append((n, b))
    )
    tasks_before = len(asyncio.all_tasks())
    assert replies.put(_reply(b"a"))
    assert socket.written == [b"a"] and len(asyncio.all_tasks()) == tasks_before  # at once, no task
    socket.writable.clear()
    assert replies.put(_reply(b"b"))  # waits (one task)
    assert replies.put(_reply(b"c")) and replies.put(_reply(b"d")) and replies.put(_reply(b"e"))  # queued: 3
    assert replies.waiting
    assert not replies.put(_reply(b"f"))  # a fourth waiting reply: the client is not reading
    assert overflows == [(3, 3)] and replies.closed
    assert not replies.put(_reply(b"g"))
    assert overflows == [(3, 3)]  # once


async def test_queued_replies_are_bounded_in_bytes_and_sent_in_order_when_the_client_reads():
    socket = PausableSocket()
    overflows: list[tuple[int, int]] = []
    replies = ReplyOutbox(
        socket.send, max_messages=100, max_bytes=10, on_overflow=lambda n, b: overflows.append((n, b))
    )
    socket.writable.clear()
    assert replies.put(_reply(b"first"))
    assert replies.put(_reply(b"12345")) and replies.put(_reply(b"67890"))  # 10 bytes wait
    socket.writable.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert socket.written == [b"first", b"12345", b"67890"] and not replies.waiting
    socket.writable.clear()
    assert replies.put(_reply(b"x"))
    assert replies.put(_reply(b"0123456789"))
    assert not replies.put(_reply(b"!"))  # 11 bytes would wait
    assert overflows == [(1, 10)]
