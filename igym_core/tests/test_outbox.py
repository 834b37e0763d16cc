"""FrameOutbox: frames go out at once when the socket is free and are dropped, never queued, when not.

The send function here behaves like uvicorn's: it writes synchronously unless the transport is
paused, in which case it waits until writing resumes.
"""

from __future__ import annotations

import asyncio

import pytest

from igym_core.server.outbox import FrameOutbox

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
