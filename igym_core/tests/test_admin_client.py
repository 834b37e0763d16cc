"""One admin socket's sending (igym_core/admin/service.py ``AdminClient``): a slow admin holds at
most one snapshot, the newest, and the code that offers snapshots never waits for it."""

from __future__ import annotations

import asyncio

from igym_core.admin.auth import AdminSession
from igym_core.admin.service import AdminClient


def test_a_slow_admin_gets_the_newest_snapshot_and_nothing_piles_up() -> None:
    async def scenario() -> None:
        sent: list[str] = []
        reading = asyncio.Event()  # the admin's browser is stuck until this is set

        async def send_text(text: str) -> None:
            await reading.wait()
            sent.append(text)

        async def close(code: int, reason: str) -> None:
            return None

        client = AdminClient(AdminSession(session_id="a-1", expires_at=1e18), send_text, lambda: False, close)
        sender = asyncio.create_task(client.run())
        client.offer("snapshot 0")
        await asyncio.sleep(0.01)  # the sender is now blocked writing snapshot 0
        for n in range(1, 1001):
            client.offer(f"snapshot {n}")  # returns at once: offering never waits for the admin
        assert client.pending == "snapshot 1000" and client.skipped == 999
        reading.set()
        for _ in range(50):
            await asyncio.sleep(0.01)
            if len(sent) == 2:
                break
        assert sent == ["snapshot 0", "snapshot 1000"]
        sender.cancel()

    asyncio.run(scenario())


def test_nothing_is_written_while_the_previous_snapshot_waits_in_the_transport() -> None:
    async def scenario() -> None:
        sent: list[str] = []
        busy = True

        async def send_text(text: str) -> None:
            sent.append(text)

        async def close(code: int, reason: str) -> None:
            return None

        client = AdminClient(AdminSession(session_id="a-1", expires_at=1e18), send_text, lambda: busy, close)
        sender = asyncio.create_task(client.run())
        for n in range(5):
            client.offer(f"snapshot {n}")
            await asyncio.sleep(0.05)
        assert sent == []
        busy = False
        await asyncio.sleep(0.3)
        assert sent == ["snapshot 4"]
        sender.cancel()

    asyncio.run(scenario())
