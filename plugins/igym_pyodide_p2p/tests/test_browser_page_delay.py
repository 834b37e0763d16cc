"""A ``pyodide`` game in headless Chromium whose page keeps the server's round-trip probes waiting
(a real ``igym run``): the page says how long each probe waited (``rtt_echo.page_delay_ms``), so the
server's ``rtt_ms`` stays the network's share and the scene's slow-connection rule leaves a fast
network alone.

The test page's main thread is busy for 1 s whenever a probe reaches it (a listener on the socket
that runs before the page's own handler and spins), after a few probes answered at once. The rule
(over 900 ms for 1 s warns, 1.5 s more ends the game) would end the game at the third such probe if
the wait counted as the network's. And the other way round: probes that reach a free page's
handler 1 s late (as over a slow downlink) are the network's (the page's main thread ran its timer
meanwhile), and the rule judges them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from browser_support import Standin  # noqa: E402

from igym_core.testing import LiveServer, read_records  # noqa: E402
from igym_core.testing.support import in_chromium  # noqa: E402

STUDY = f"{HERE / 'studies' / 'slime_busy_browser.py'}:experiment"
EXPERIMENT = "slime_busy"
BUSY_MS = 1000
BUSY_PROBES = 3

#: While ``window.__busyMs`` is set, the page's main thread spins that long when a round-trip probe
#: reaches a socket, before the page's own handler runs (a listener added when the socket is made
#: comes before the `onmessage` the page sets); ``window.__busied`` counts those probes.
BUSY_PAGE = """
(() => {
  const Native = window.WebSocket;
  window.__busyMs = 0;
  window.__busied = 0;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        const ms = window.__busyMs;
        if (!ms || !(event.data instanceof ArrayBuffer)) return;
        if (!new TextDecoder("latin1").decode(event.data).includes("rtt_probe")) return;
        const until = performance.now() + ms;
        while (performance.now() < until) {}
        window.__busied += 1;
      });
    }
  };
})();
"""


def _play(tmp_path: Path, script: str, participant: str) -> tuple[dict[str, Any], Path]:
    """A page of the study with ``script`` as its init script: it plays, answers two probes at once
    (the page learns how late a probe that did not wait reaches it), then ``window.__busyMs`` is set
    to BUSY_MS until BUSY_PROBES probes went through ``script``'s hold (``window.__busied``) or the
    game ended. The page's last state and errors, and the data directory."""
    with LiveServer(STUDY, tmp_path / "data", plugins=["igym_pyodide_p2p.plugin"]) as server:
        url = server.url
        standin = Standin(url, ("slime",))

        def work(browser: Any) -> Any:
            context = browser.new_context()
            context.route("**/*", standin.route)
            context.add_init_script(script)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def look() -> dict[str, Any]:
                return page.evaluate(
                    """() => ({
                      game: (window.igym && window.igym.state && window.igym.state.game) || {},
                      pyodide: (window.igym && window.igym.state && window.igym.state.pyodide) || {},
                      scene_id: window.igym && window.igym.state && window.igym.state.scene_id,
                      busied: window.__busied,
                    })"""
                )

            def wait(check: Any, what: str, timeout_s: float) -> Any:
                deadline = time.monotonic() + timeout_s
                while not (found := check(look())):
                    if time.monotonic() > deadline:
                        raise AssertionError(f"timed out waiting for {what}; page: {look()}")
                    page.wait_for_timeout(50)
                return found

            page.goto(f"{url}/?PROLIFIC_PID={participant}")
            wait(lambda s: s["game"].get("phase") == "playing", "playing", 60)
            wait(lambda s: s["pyodide"].get("rtt_echoes", 0) >= 2, "two probes answered", 20)
            page.evaluate("(ms) => { window.__busyMs = ms; }", BUSY_MS)
            wait(
                lambda s: s["busied"] >= BUSY_PROBES or s["scene_id"] != "slime",
                f"{BUSY_PROBES} probes held (or the game's end)",
                20,
            )
            page.evaluate("() => { window.__busyMs = 0; }")
            final = look()
            context.close()
            return {"errors": errors, "final": final}

        result = in_chromium(work)
        assert standin.blocked == []
    return result, server.data_dir


def test_a_busy_pages_wait_is_reported_apart_and_kept_out_of_the_round_trip(tmp_path: Path) -> None:
    result, data_dir = _play(tmp_path, BUSY_PAGE, "busybee")
    assert result["errors"] == []
    games = read_records(data_dir, EXPERIMENT, "games")
    assert [g for g in games if g["event"].startswith("slow_connection")] == []
    assert result["final"]["scene_id"] == "slime" and result["final"]["busied"] >= BUSY_PROBES
    rows = read_records(data_dir, EXPERIMENT, "connection_stats")
    rtts = [v for r in rows for v in r["rtt_ms"]]
    delays = [v for r in rows for v in r["page_delay_ms"]]
    # Every echo says how long its probe waited: one figure per round trip.
    assert all(len(r["page_delay_ms"]) == len(r["rtt_ms"]) for r in rows)
    assert len(rtts) >= 2 + BUSY_PROBES - 1  # (the last echo may be after the last row)
    # The waits of the busy probes are the page's; the network's share stays small (loopback: a
    # loose bound, for a loaded machine).
    busy = [d for d in delays if d >= 0.8 * BUSY_MS]
    assert len(busy) >= BUSY_PROBES - 1, delays
    assert all(0 <= d <= 60_000 for d in delays)
    print(f"rtt_ms {rtts}\npage_delay_ms {delays}")
    assert max(rtts) < 900, rtts


#: While ``window.__busyMs`` is set, a round-trip probe reaches the page's handler that much later
#: while the main thread stays free (as a slow downlink would deliver it: the page cannot tell the
#: two apart by the probe's lag alone); ``window.__busied`` counts those probes.
LATE_PROBES = """
(() => {
  const Native = window.WebSocket;
  const handler = Object.getOwnPropertyDescriptor(Native.prototype, "onmessage");
  window.__busyMs = 0;
  window.__busied = 0;
  window.WebSocket = class extends Native {
    set onmessage(fn) {
      const wrapped = typeof fn !== "function" ? fn : (event) => {
        const ms = window.__busyMs;
        const probe = event.data instanceof ArrayBuffer
          && new TextDecoder("latin1").decode(event.data).includes("rtt_probe");
        if (!ms || !probe) return fn.call(this, event);
        setTimeout(() => { window.__busied += 1; fn.call(this, event); }, ms);
      };
      handler.set.call(this, wrapped);
    }
    get onmessage() {
      return handler.get.call(this);
    }
  };
})();
"""


def test_a_probe_that_reaches_a_free_page_late_counts_as_the_networks(tmp_path: Path) -> None:
    result, data_dir = _play(tmp_path, LATE_PROBES, "latebee")
    assert result["errors"] == []
    assert result["final"]["busied"] >= BUSY_PROBES - 1
    rows = read_records(data_dir, EXPERIMENT, "connection_stats")
    pairs = [(rtt, delay) for r in rows for rtt, delay in zip(r["rtt_ms"], r["page_delay_ms"], strict=True)]
    print(f"(rtt_ms, page_delay_ms) {pairs}")
    # The page's main thread was free (it runs a timer every 50 ms) while the late probes were on
    # their way to its handler: their wait is not the page's, and the rule judged the round trip.
    late = [(rtt, delay) for rtt, delay in pairs if rtt + delay >= 0.8 * BUSY_MS]
    assert len(late) >= 2, pairs
    assert all(rtt >= 0.8 * BUSY_MS - 300 and delay < 300 for rtt, delay in late), pairs
    games = read_records(data_dir, EXPERIMENT, "games")
    assert "slow_connection_warned" in [g["event"] for g in games]
