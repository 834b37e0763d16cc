"""``igym_core.testing.poll``: the one bounded wait the repository's tests share."""

from __future__ import annotations

import time

import pytest

from igym_core.testing import poll


def test_poll_returns_the_first_truthy_result() -> None:
    calls: list[int] = []

    def check() -> dict[str, int] | None:
        calls.append(1)
        return {"n": len(calls)} if len(calls) == 3 else None

    assert poll(check, what="the third call", interval_ms=1) == {"n": 3}
    assert len(calls) == 3


def test_poll_times_out_with_what_it_waited_for_and_the_detail_at_that_moment() -> None:
    seen: list[str] = []
    started = time.monotonic()
    with pytest.raises(AssertionError) as raised:
        poll(
            lambda: seen.append("x"), what="nothing", timeout_s=0.2, interval_ms=10, detail=lambda: len(seen)
        )
    waited = time.monotonic() - started
    assert waited >= 0.2 and len(seen) >= 2
    assert str(raised.value) == f"timed out after 0.2 s waiting for nothing; {len(seen)}"


def test_poll_waits_with_the_page_when_given_one() -> None:
    class Page:
        waits: list[float] = []

        def wait_for_timeout(self, ms: float) -> None:
            self.waits.append(ms)

    page = Page()
    answers = iter([0, "", "done"])
    assert poll(lambda: next(answers), page, "a page", interval_ms=30) == "done"
    assert page.waits == [30, 30]
