"""Waiting in tests for something that happens on its own time (a page, a server, a file): :func:`poll`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["poll"]


def poll(
    check: Callable[[], Any],
    page: Any = None,
    what: str = "",
    timeout_s: float = 10.0,
    *,
    interval_ms: float = 50.0,
    detail: Callable[[], Any] | None = None,
) -> Any:
    """Call ``check`` until it returns something truthy, and return that.

    Args:
        check: what to wait for; called at once, then every ``interval_ms``.
        page: a Playwright page to wait with (``page.wait_for_timeout``, so that its events are
            handled meanwhile; a page's CSP forbids ``wait_for_function``); None: ``time.sleep``.
        what: what is awaited, for the failure message.
        timeout_s: past this, :class:`AssertionError` (``timed out after … waiting for …``).
        detail: called on a timeout; what it returns (the page's state, say) ends the message.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            message = f"timed out after {timeout_s:g} s waiting for {what or check}"
            if detail is not None:
                message += f"; {detail()}"
            raise AssertionError(message)
        if page is not None:
            page.wait_for_timeout(interval_ms)
        else:
            time.sleep(interval_ms / 1000.0)
