"""What a server-run game's page says of its own wait when it answers a round-trip probe
(`rtt_echo.page_delay_ms`), in real Chromium against a real `igym run`.

The page estimates how long a probe waited in it (a busy main thread) from how late the probe
reaches its handler compared with the earliest messages of the game. A probe that is late because
the *network* got slower looks the same to that estimate, so the page caps it by the time since its
main thread last ran a timer: here the test page holds each probe back for 1 s with a `setTimeout`
(its main thread stays free, as over a downlink that turned slow), and the server must see those
round trips as the network's: `rtt_ms` about 1 s, `page_delay_ms` small, and the scene's
slow-connection rule warns.
"""

from __future__ import annotations

from pathlib import Path

from igym_core.testing import poll
from tests.e2e.game_pages import wait_phase
from tests.e2e.test_survey_browser import continue_button, records, wait_scene

STUDY = f"{Path(__file__).with_name('game_study.py')}:probed"
EXPERIMENT = "game_e2e_probed"
HOLD_MS = 1000

#: Once ``window.__holdMs`` is set, round-trip probes reach the page's own handler that much later
#: (a `setTimeout`: the main thread is free meanwhile); everything else at once.
LATE_PROBES = """
(() => {
  const Native = window.WebSocket;
  const handler = Object.getOwnPropertyDescriptor(Native.prototype, "onmessage");
  window.__holdMs = 0;
  window.__held = 0;
  window.WebSocket = class extends Native {
    set onmessage(fn) {
      const wrapped = typeof fn !== "function" ? fn : (event) => {
        const ms = window.__holdMs;
        const probe = event.data instanceof ArrayBuffer
          && new TextDecoder("latin1").decode(event.data).includes("rtt_probe");
        if (!ms || !probe) return fn.call(this, event);
        setTimeout(() => { window.__held += 1; fn.call(this, event); }, ms);
      };
      handler.set.call(this, wrapped);
    }
    get onmessage() {
      return handler.get.call(this);
    }
  };
})();
"""


def test_a_probe_late_to_a_free_page_is_the_networks_and_the_rule_judges_it(live_server, new_page) -> None:
    server = live_server(STUDY)
    page = new_page()
    page.add_init_script(LATE_PROBES)
    page.goto(f"{server.url}/?PROLIFIC_PID=downlink")
    wait_scene(page, "intro")
    continue_button(page).click()
    wait_scene(page, "car")
    wait_phase(page, "playing", timeout_s=30)
    # A few probes answered at once first: the page learns how late an unheld probe reaches it.
    poll(
        lambda: page.evaluate("() => window.igym.state.game.rtt_echoes") >= 3,
        page=page,
        timeout_s=20,
        what="3 echoes",
    )
    page.evaluate(f"() => {{ window.__holdMs = {HOLD_MS}; }}")
    warned = poll(
        lambda: [g for g in records(server, EXPERIMENT, "games") if g["event"] == "slow_connection_warned"],
        page=page,
        timeout_s=40,
        what="the slow-connection warning",
    )
    assert warned

    def held() -> list[tuple[float, float]]:
        return [
            (rtt, delay)
            for row in records(server, EXPERIMENT, "connection_stats")
            for rtt, delay in zip(row["rtt_ms"], row["page_delay_ms"], strict=True)
            if rtt + delay >= 0.8 * HOLD_MS
        ]

    rows = poll(
        lambda: len(held()) >= 3 and held(),
        page=page,
        timeout_s=20,
        what="connection rows with the held probes",
    )
    print(f"held probes (rtt_ms, page_delay_ms): {rows}")
    # The main thread was free while the probes were held: their time is the network's share.
    assert len(rows) >= 3, rows
    assert all(rtt >= 0.8 * HOLD_MS - 300 and delay < 300 for rtt, delay in rows), rows
