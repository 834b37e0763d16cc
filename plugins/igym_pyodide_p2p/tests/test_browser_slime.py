"""Slime Volleyball against the trained ONNX bot under ``runtime="pyodide"``, end to end.

A real ``igym run`` (this plugin and igym-onnx loaded) and headless Chromium. The participant first
plays the scene on the server, then the same scene in the browser: the loader's progress shows, held
arrow keys move the participant's slime, the episodes count up, the next scene follows, and the
server's data holds every step of the browser's episodes exactly once, keys and actions matching,
and ``igym verify`` finds the same rewards and state hashes when it re-runs them on the server.
Screenshots of both games are saved under test-artifacts/ (look at them: they must look the same),
and their canvases are compared: the same sky, the same slimes in the same colours.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from igym_core.testing import poll, read_records
from igym_core.testing.pixels import colour_mask, png_pixels
from igym_slime.render import COLOURS, SKY

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from browser_support import Standin  # noqa: E402

from igym_core.testing import LiveServer  # noqa: E402
from igym_core.testing.support import in_chromium  # noqa: E402

STUDY = f"{HERE / 'studies' / 'slime_browser.py'}:experiment"
EXPERIMENT = "slime_browser"
ARTIFACTS = HERE.parents[2] / "test-artifacts" / "pyodide_slime"


def _state(page: Any) -> dict[str, Any]:
    return page.evaluate("() => (window.igym && window.igym.state) || {}")


def _game(page: Any) -> dict[str, Any]:
    return _state(page).get("game") or {}


def _poll(page: Any, check: Any, what: str, timeout_s: float = 60) -> Any:
    return poll(check, page, what, timeout_s, detail=lambda: f"game state: {_game(page)}")


def _scene(page: Any, scene_id: str, timeout_s: float = 30) -> None:
    _poll(page, lambda: _state(page).get("scene_id") == scene_id, f"scene {scene_id}", timeout_s)


def _left_slime_x(page: Any) -> float | None:
    """Where the participant's slime is (its latest frame), or None when there is none."""
    x = page.evaluate("() => { const s = window.igym.gameObjects().left_slime; return s ? s.x : null; }")
    return None if x is None else float(x)


def _canvas(page: Any, name: str) -> np.ndarray:
    png = page.locator("canvas").first.screenshot(animations="disabled")
    (ARTIFACTS / f"{name}.png").write_bytes(png)
    return png_pixels(png)


def _play(page: Any, runtime: str, loader: dict[str, Any]) -> dict[str, Any]:
    """Hold the left arrow, then the right one, while the game plays; what the page showed."""
    _poll(page, lambda: _game(page).get("phase") == "playing", f"{runtime}: playing", 90)
    start = _poll(page, lambda: _left_slime_x(page), f"{runtime}: the slime drawn")
    page.locator(".igym-game-stage").first.click()
    page.keyboard.down("ArrowLeft")
    _poll(page, lambda: (_left_slime_x(page) or start) < start - 20, f"{runtime}: the slime moving left")
    page.keyboard.up("ArrowLeft")
    pixels = _canvas(page, f"{runtime}-playing")
    page.keyboard.down("ArrowRight")
    moved = _left_slime_x(page) or 0.0
    _poll(page, lambda: (_left_slime_x(page) or 0.0) > moved + 20, f"{runtime}: the slime moving right")
    page.keyboard.up("ArrowRight")
    return {"pixels": pixels, "hud": page.locator(".igym-game-hud").first.inner_text()}


def test_slime_against_the_onnx_bot_plays_the_same_in_the_browser(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data_dir = tmp_path / "data"
    with LiveServer(STUDY, data_dir, plugins=["igym_pyodide_p2p.plugin", "igym_onnx.plugin"]) as server:
        url = server.url
        standin = Standin(url, ("slime",))

        def work(browser: Any) -> Any:
            context = browser.new_context(viewport={"width": 1100, "height": 900})
            context.route("**/*", standin.route)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.goto(f"{url}/?PROLIFIC_PID=browser1")
            _scene(page, "intro")
            page.get_by_role("button", name="Continue", exact=True).click()

            _scene(page, "slime_server")
            server = _play(page, "server", {})
            _scene(page, "slime", timeout_s=60)

            # The loader: stages with sizes, a bar that fills; the shell's countdown after it.
            loader = page.locator(".igym-pyodide-loader")
            try:
                loader.wait_for(state="visible", timeout=20000)
            except Exception as exc:
                raise AssertionError(f"no loader: {console} {_state(page)}") from exc
            page.screenshot(path=str(ARTIFACTS / "loading.png"))
            text = loader.inner_text()
            percents = []
            read = """() => { const l = document.querySelector(".igym-pyodide-loader");
                               return l ? Number(l.getAttribute("aria-valuenow")) : null; }"""
            while (value := page.evaluate(read)) is not None:
                percents.append(value)
                page.wait_for_timeout(25)
            browser_game = _play(page, "pyodide", {})
            _poll(page, lambda: _game(page).get("episode") == 2, "episode 2", 30)
            page.screenshot(path=str(ARTIFACTS / "episode-2.png"))
            _scene(page, "after", timeout_s=30)
            return {
                "errors": errors,
                "loader_text": text,
                "percents": percents,
                "server": server,
                "browser": browser_game,
            }

        result = in_chromium(work)
        assert result["errors"] == []
        assert standin.blocked == []

    # Loading progress was visible: stages with their sizes, and a bar that grew.
    assert "Python runtime (" in result["loader_text"] and "Computer player (" in result["loader_text"]
    percents = result["percents"]
    assert percents == sorted(percents) and len(set(percents)) >= 3, percents

    # Both games drew the same picture: the sky, both slimes in their colours, the same HUD form.
    for name in ("server", "browser"):
        pixels = result[name]["pixels"]
        assert colour_mask(pixels, SKY, tolerance=12).mean() > 0.5, name
        for agent in ("left", "right"):
            assert colour_mask(pixels, COLOURS[agent], tolerance=30).sum() > 200, (name, agent)
    assert result["server"]["hud"].startswith("Game 1 of 1 · You")
    assert result["browser"]["hud"].startswith("Game ") and "Computer" in result["browser"]["hud"]

    # The server's data: every step of the browser's episodes exactly once, keys and actions agreeing.
    steps = [r for r in read_records(data_dir, EXPERIMENT, "steps") if r["scene_id"] == "slime"]
    episodes = [r for r in read_records(data_dir, EXPERIMENT, "episodes") if r["scene_id"] == "slime"]
    assert [e["episode"] for e in episodes] == [1, 2]
    counts = Counter((r["episode"], r["step"], r["agent"]) for r in steps)
    assert set(counts.values()) == {1}
    for episode in episodes:
        numbers = sorted(
            r["step"] for r in steps if r["episode"] == episode["episode"] and r["agent"] == "left"
        )
        assert numbers == list(range(1, episode["steps"] + 1))
    left = [r for r in steps if r["agent"] == "left"]
    assert any(r["keys_held"] == ["ArrowLeft"] for r in left)
    assert all(
        r["action"] == 1 and r["action_source"] == "human" for r in left if r["keys_held"] == ["ArrowLeft"]
    )
    assert all(r["action"] == 2 for r in left if r["keys_held"] == ["ArrowRight"])
    assert all(r["action_source"] in ("bot", "bot_repeat") for r in steps if r["agent"] == "right")

    # igym verify re-runs the browser's episodes on the server from their seeds and actions: the
    # same rewards, flags and state hashes.
    verify = subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "verify", str(data_dir / EXPERIMENT), "--experiment", STUDY],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
