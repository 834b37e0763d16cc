"""igym_core.testing.LiveServer: a real `igym run` child process for end-to-end tests."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from igym_core.testing import LiveServer

SURVEY = "igym_core.examples.survey_study:experiment"


def loaded_plugins(server: LiveServer) -> list[str]:
    for line in server.log().splitlines():
        if line.startswith("{") and json.loads(line).get("event") == "plugins_loaded":
            return [entry.split("=")[0] for entry in json.loads(line)["plugins"]]
    raise AssertionError(f"no plugins_loaded line in:\n{server.log()}")


def test_plugins_names_the_only_plugins_loaded_and_the_server_stops_on_leaving(tmp_path: Path) -> None:
    with LiveServer(SURVEY, tmp_path / "only", plugins=[], env={"IGYM_LOG_LEVEL": "info"}) as server:
        with urllib.request.urlopen(f"{server.url}/health", timeout=5) as response:
            assert response.status == 200
        assert server.stats()["participants"] is not None  # the operator token it runs with works
        only = loaded_plugins(server)
    assert server.process.poll() is not None  # stopped
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{server.url}/health", timeout=2)
    assert only and all(name.startswith("igym.") for name in only), only  # the built-ins only

    with LiveServer(SURVEY, tmp_path / "all", plugins=None, env={"IGYM_LOG_LEVEL": "info"}) as server:
        everything = loaded_plugins(server)
    assert set(only) < set(everything)  # the installed plugins' entry points too


def test_a_server_that_cannot_start_fails_with_its_log(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"igym run exited with [1-9](.|\n)*no_such_module"):
        # It fails as soon as the child exits; the timeout only bounds a child slow to start (a
        # machine busy with parallel tests took over 30 s).
        LiveServer("no_such_module:experiment", tmp_path / "data", ready_timeout_s=120)


def test_a_port_taken_before_the_server_binds_it_is_replaced_and_never_mistaken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests run in parallel: the port `free_port` found can be taken (here by another test's igym
    server, which answers /health) before this server binds it. The server is started again on
    another port, and is never taken for the server already there."""
    import igym_core.testing.live_server as live_server

    with LiveServer(SURVEY, tmp_path / "other" / "data", plugins=[]) as other:
        ports = iter([other.port])
        real_free_port = live_server.free_port
        monkeypatch.setattr(live_server, "free_port", lambda: next(ports, None) or real_free_port())
        with LiveServer(SURVEY, tmp_path / "mine" / "data", plugins=[]) as mine:
            assert mine.port != other.port
            assert (
                "address already in use"
                in (tmp_path / "mine" / f"server-{other.port}.log").read_text().lower()
            )
            assert mine.stats()["participants"] is not None  # its own token: this server, not the other
            with urllib.request.urlopen(f"{mine.url}/health", timeout=5) as response:
                assert response.status == 200
