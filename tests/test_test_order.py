"""Test order never matters: a test that runs an event loop (``asyncio.run``) passes after a
browser test in the same pytest session, as it does before one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BROWSER_TEST = "tests/e2e/test_refusal_browser.py"
ASYNCIO_TEST = "igym_core/tests/test_outbox.py::test_free_socket_sends_synchronously_without_a_task"


@pytest.mark.parametrize("order", [(BROWSER_TEST, ASYNCIO_TEST), (ASYNCIO_TEST, BROWSER_TEST)])
def test_an_asyncio_test_passes_before_and_after_a_browser_test(order: tuple[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-q", "-p", "no:cacheprovider", *order],
        cwd=ROOT,
        env={**os.environ, "PYTEST_ADDOPTS": ""},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout, result.stdout[-2000:]
