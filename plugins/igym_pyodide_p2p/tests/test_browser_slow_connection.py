"""A ``pyodide`` game in headless Chromium whose connection turns slow (a real ``igym run``).

The test page holds back everything it sends on its socket when told to (the step batches and the
echoes of the server's round-trip probes alike, as a slow uplink does). First it sends at once: the
admin dashboard's snapshot shows the game's step rate and the page's round trip. Then it holds each
message 2.5 s: the server measures round trips over the scene's 1.5 s limit (a loose limit: on
a loaded test machine a headless page drawing in software answers late by itself), the page shows
the warning, and the rule ends the game (outcome ``slow_connection``); the page moves on, and the
records say what was measured.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from websockets.sync.client import connect

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from browser_support import Standin  # noqa: E402

from igym_core.testing import LiveServer, read_records  # noqa: E402
from igym_core.testing.support import in_chromium  # noqa: E402

STUDY = f"{HERE / 'studies' / 'slime_slow_browser.py'}:experiment"
EXPERIMENT = "slime_slow"
TOKEN = "admin-token-for-the-slow-browser-test"
HOLD_S = 2.5


#: The test page's own slow uplink: while ``window.__holdMs`` is set, everything the page sends on a
#: WebSocket leaves that much later (in order); the server only sees the messages arrive late.
SLOW_UPLINK = """
(() => {
  const send = WebSocket.prototype.send;
  window.__holdMs = 0;
  WebSocket.prototype.send = function (data) {
    const hold = window.__holdMs;
    if (!hold) return send.call(this, data);
    setTimeout(() => {
      if (this.readyState === WebSocket.OPEN) send.call(this, data);
    }, hold);
  };
})();
"""


def _admin_cookie(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
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


def test_a_slow_page_is_warned_then_its_browser_game_ends_and_the_dashboard_showed_its_rtt(
    tmp_path: Path,
) -> None:
    with LiveServer(
        STUDY, tmp_path / "data", plugins=["igym_pyodide_p2p.plugin"], env={"IGYM_ADMIN_TOKEN": TOKEN}
    ) as server:
        url = server.url
        standin = Standin(url, ("slime",))

        def work(browser: Any) -> Any:
            context = browser.new_context()
            context.route("**/*", standin.route)
            context.add_init_script(SLOW_UPLINK)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def game() -> dict[str, Any]:
                return page.evaluate(
                    "() => (window.igym && window.igym.state && window.igym.state.game) || {}"
                )

            def wait(check: Any, what: str, timeout_s: float) -> Any:
                deadline = time.monotonic() + timeout_s
                while not (found := check()):
                    if time.monotonic() > deadline:
                        raise AssertionError(f"timed out waiting for {what}; game: {game()}")
                    page.wait_for_timeout(50)
                return found

            page.goto(f"{url}/?PROLIFIC_PID=slowpoke")
            wait(lambda: game().get("phase") == "playing", "playing", 60)
            # Fast: the dashboard shows the game's step rate and the page's round trip.
            shown: list[dict[str, Any]] = []
            with connect(
                f"ws://127.0.0.1:{server.port}/admin/ws",
                additional_headers={"Cookie": _admin_cookie(server.port)},
            ) as admin:

                def snapshot_with_rtt() -> bool:
                    try:
                        snapshot = json.loads(admin.recv(timeout=0.01))
                    except TimeoutError:
                        return False
                    shown.extend(g for g in snapshot["games"] if g["scene_id"] == "slime")
                    last = shown[-1] if shown else {}
                    # (The first round trips of a game can be slow while the page warms up.)
                    return bool(last.get("measured_fps")) and any(
                        v is not None and v < 1500 for v in (last.get("rtt_ms") or {}).values()
                    )

                wait(snapshot_with_rtt, "a snapshot with the game's rate and RTT", 20)
            # Slow: everything the page sends arrives 2.5 s late.
            page.evaluate("(ms) => { window.__holdMs = ms; }", HOLD_S * 1000)
            notice = wait(lambda: game().get("notice"), "the slow-connection warning", 20)
            wait(
                lambda: page.evaluate("() => window.igym.state.scene_id") == "after",
                "the next scene",
                20,
            )
            return {"errors": errors, "shown": shown[-1], "notice": notice, "snapshots": len(shown)}

        result = in_chromium(work)
        assert standin.blocked == []
    assert result["errors"] == []
    shown = result["shown"]
    # Steps stored per second between two snapshots (batches every 500 ms: it wavers around 30, and a
    # loaded machine's page steps slower).
    assert shown["phase"] == "playing" and 0 < shown["measured_fps"] <= 90
    ((pid, rtt),) = shown["rtt_ms"].items()
    assert 0 <= rtt < 1500
    assert "connection to the study server is slow" in result["notice"]
    games = read_records(server.data_dir, EXPERIMENT, "games")
    slow = [g for g in games if g["event"].startswith("slow_connection")]
    assert [g["event"] for g in slow] == ["slow_connection_warned", "slow_connection_ended"]
    # Judged from an echo that came back late, or from a probe still out that long.
    assert all(g["participant_id"] == pid and g["rtt_ms"] > 1500 for g in slow)
    assert [g["reason"] for g in games if g["event"] == "ended"] == ["slow_connection"]
    (episode,) = read_records(server.data_dir, EXPERIMENT, "episodes")
    assert episode["end_reason"] == "slow_connection" and episode["rtt_ms"][pid]["n"] >= 3
    rows = read_records(server.data_dir, EXPERIMENT, "connection_stats")
    assert {r["participant_id"] for r in rows} == {pid} and len(rows) >= 3
    assert sum(r["steps_received"] for r in rows) == episode["steps"] > 0
    assert [v for r in rows for v in r["rtt_ms"] if v < 1500]  # the round trips before it slowed down
    sessions = read_records(server.data_dir, EXPERIMENT, "sessions")
    finished = [s for s in sessions if s["event"] == "scene_left" and s["scene_id"] == "slime"]
    assert finished[0]["detail"]["reason"] == "slow_connection"
