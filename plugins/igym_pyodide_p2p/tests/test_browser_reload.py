"""A reload and a closed tab in the middle of a browser-run episode, in real Chromium against a real
``igym run``.

- Reload: the new page loads the runtime again; the server records the episode ``interrupted`` and,
  by the scene's ``on_reload="restart"``, plays it again with the same seed as the next episode; the
  new page numbers its batches on from the server's count (``next_batch``), so nothing is refused
  and every (episode, step) is stored once.
- Closed tab: the steps the page had made reach the server but for at most the last second (the
  page sends them every ``batch_interval_ms``, 500 ms by default).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from igym_core.testing import poll, read_records

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from browser_support import Standin  # noqa: E402

from igym_core.testing import LiveServer  # noqa: E402
from igym_core.testing.support import in_chromium  # noqa: E402

STUDY = f"{HERE / 'studies' / 'slime_reload_browser.py'}:experiment"
EXPERIMENT = "slime_reload"


def _state(page: Any) -> dict[str, Any]:
    return page.evaluate("() => (window.igym && window.igym.state) || {}")


def _pyodide(page: Any) -> dict[str, Any]:
    return (_state(page).get("game") or {}).get("pyodide") or {}


def _wait(page: Any, check: Any, what: str, timeout_s: float = 90) -> Any:
    return poll(check, page, what, timeout_s, detail=lambda: _state(page))


def _step_now(page: Any) -> int:
    """The steps the page has drawn in this game (the frames' tick: in the first episode, its step)."""
    return int(page.evaluate("() => (window.igym.state.game && window.igym.state.game.tick) || 0"))


def test_a_reload_restarts_the_episode_and_a_closed_tab_loses_at_most_a_second(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with LiveServer(STUDY, data_dir, plugins=["igym_pyodide_p2p.plugin"]) as server:
        url = server.url
        standin = Standin(url, ("slime",))

        def work(browser: Any) -> Any:
            out: dict[str, Any] = {}
            # --- a reload mid-episode --------------------------------------------------------------
            context = browser.new_context()
            context.route("**/*", standin.route)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/?PROLIFIC_PID=reloader")
            _wait(page, lambda: _pyodide(page).get("batches_acked", 0) >= 3, "three batches stored")
            out["reloaded_at"] = _step_now(page)
            page.reload()
            _wait(page, lambda: _pyodide(page).get("episodes_done", 0) >= 1, "an episode after the reload")
            _wait(page, lambda: _state(page).get("scene_id") == "after", "the next scene", 60)
            out["reload_errors"] = errors
            context.close()
            # --- a closed tab mid-episode ----------------------------------------------------------
            context = browser.new_context()
            context.route("**/*", standin.route)
            page = context.new_page()
            page.goto(f"{url}/?PROLIFIC_PID=closer")
            _wait(page, lambda: _pyodide(page).get("batches_acked", 0) >= 4, "four batches stored")
            out["closed_at"] = _step_now(page)
            context.close()
            return out

        result = in_chromium(work)
        assert result["reload_errors"] == []
        # The closed tab's game ends abandoned after abandon_after_s (3 s): then both games are over.
        deadline = time.monotonic() + 30
        while len([r for r in read_records(data_dir, EXPERIMENT, "games") if r["event"] == "ended"]) < 2:
            assert time.monotonic() < deadline, read_records(data_dir, EXPERIMENT, "games")
            time.sleep(0.2)

    steps = read_records(data_dir, EXPERIMENT, "steps")
    episodes = read_records(data_dir, EXPERIMENT, "episodes")
    rejected = read_records(data_dir, EXPERIMENT, "rejected_batches")
    assert rejected == [], rejected
    by_player: dict[str, list[dict[str, Any]]] = {}
    for row in episodes:
        by_player.setdefault(row["seats"]["left"], []).append(row)
    reloader, closer = (
        next(p for p, rows in by_player.items() if len(rows) >= 3),
        next(p for p, rows in by_player.items() if len(rows) < 3),
    )
    # Reload: the interrupted play, then the same seed again, then the second seed; each complete.
    plays = sorted(by_player[reloader], key=lambda r: r["episode"])
    assert [p["end_reason"] for p in plays] == ["interrupted", "max_steps", "max_steps"]
    assert plays[0]["seed"] == plays[1]["seed"] != plays[2]["seed"]
    mine = [r for r in steps if r["participant_id"] == reloader]
    counts = Counter((r["episode"], r["step"], r["agent"]) for r in mine)
    assert set(counts.values()) == {1}, "every step once"
    for play in plays:
        numbers = sorted(r["step"] for r in mine if r["episode"] == play["episode"] and r["agent"] == "left")
        assert numbers == list(range(1, play["steps"] + 1))
    assert plays[0]["steps"] >= 30
    # Closed tab: at most a second of steps (30 at 30 fps) missing from what the page had made.
    made = result["closed_at"]
    stored = max(r["step"] for r in steps if r["participant_id"] == closer and r["episode"] == 1)
    assert made - 30 <= stored, (made, stored)
