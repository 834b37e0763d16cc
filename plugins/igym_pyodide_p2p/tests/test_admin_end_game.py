"""The admin dashboard's "end game" on a ``pyodide`` game (real ``igym run``, a page over a real
socket): the game ends with the scene's partner-left message and the player moves on."""

from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from websockets.sync.client import connect

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from page_client import Page  # noqa: E402

from igym_core.testing import read_records  # noqa: E402
from tests.conftest import LiveServer  # noqa: E402

STUDY = f"{HERE / 'studies' / 'slime_pyodide.py'}:experiment"
TOKEN = "admin-token-for-the-pyodide-test-000"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(STUDY, tmp_path / "data", env={"IGYM_ADMIN_TOKEN": TOKEN})
    yield live
    live.stop()


def _admin_cookie(server: LiveServer) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(
        "POST",
        "/admin/login",
        body=urlencode({"token": TOKEN}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = connection.getresponse()
    assert response.status == 303
    cookie = response.headers["Set-Cookie"].split(";")[0]
    connection.close()
    return cookie


def test_an_admin_ending_a_browser_game_gives_its_player_the_partner_left_ending(server: LiveServer) -> None:
    page = Page(server.url)
    game_id = page.to_game()
    with connect(
        f"ws://127.0.0.1:{server.port}/admin/ws", additional_headers={"Cookie": _admin_cookie(server)}
    ) as admin:
        snapshot = json.loads(admin.recv(timeout=10))
        (game,) = snapshot["games"]
        assert game["game_id"] == game_id and game["phase"] in ("loading", "countdown", "playing")
        assert game["fps"] == 30 and game["measured_fps"] is None
        admin.send(json.dumps({"type": "end_game", "game_id": game_id}))
        while (reply := json.loads(admin.recv(timeout=10)))["type"] == "snapshot":
            pass
        assert reply == {"type": "done", "action": "end_game", "game_id": game_id}
    ended = page.next("game_status", phase="ended")
    assert ended["message"] == "Your partner has left the game."
    assert page.next("scene")["position"] > 0  # moved on
    page.close()
    games = read_records(server.data_dir, "slime_pyodide", "games")
    assert [g["reason"] for g in games if g["event"] == "ended"] == ["ended_by_admin"]
