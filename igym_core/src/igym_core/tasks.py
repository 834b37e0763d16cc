"""Fire-and-forget tasks that are kept alive until they finish.

The event loop keeps only weak references to tasks, so a task nobody holds may be collected before
it runs to the end. :class:`BackgroundTasks` holds them, and can cancel whatever is left (shutdown).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

__all__ = ["BackgroundTasks"]


class BackgroundTasks:
    """A set of running tasks, each dropped when it is done."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, awaitable: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run ``awaitable`` as a task on the running loop and keep it until it is done."""
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel(self) -> None:
        """Cancel every task still running."""
        for task in list(self._tasks):
            task.cancel()

    def __len__(self) -> int:
        return len(self._tasks)
