"""The ``new_page`` fixture applies a test's context options once, each replacing its default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import DEFAULT_VIEWPORT


def _window(page: Any) -> dict[str, Any]:
    return page.evaluate("({width: innerWidth, height: innerHeight, agent: navigator.userAgent})")


def test_new_page_takes_the_callers_viewport_and_other_options(new_page: Callable[..., Any]) -> None:
    plain = _window(new_page())
    assert (plain["width"], plain["height"]) == (DEFAULT_VIEWPORT["width"], DEFAULT_VIEWPORT["height"])
    small = new_page(viewport={"width": 700, "height": 500}, user_agent="igym-fixture-test")
    assert _window(small) == {"width": 700, "height": 500, "agent": "igym-fixture-test"}
    # Only the viewport was asked for: the user agent is the browser's own.
    other = _window(new_page(viewport={"width": 640, "height": 480}))
    assert (other["width"], other["height"]) == (640, 480) and other["agent"] != "igym-fixture-test"
    # A second page in the same context has that context's options.
    same = _window(new_page(small.context))
    assert same == {"width": 700, "height": 500, "agent": "igym-fixture-test"}


def test_new_page_refuses_options_for_an_existing_context(new_page: Callable[..., Any]) -> None:
    first = new_page()
    with pytest.raises(TypeError, match="existing context"):
        new_page(first.context, viewport={"width": 700, "height": 500})
