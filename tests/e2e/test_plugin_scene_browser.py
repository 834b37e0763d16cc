"""A scene type contributed by a plugin (tests/e2e/colour_plugin), with its own browser module,
loaded into a real `igym run` with ``--plugin`` and used in real Chromium."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from igym_core.testing import poll, read_records

PLUGIN = "tests.e2e.colour_plugin.plugin"
ROOT = Path(__file__).resolve().parents[2]


def state(page: Page) -> dict[str, Any]:
    return page.evaluate("() => window.igym && window.igym.state")


def wait_scene(page: Page, scene_id: str) -> None:
    poll(
        lambda: (s := state(page)) and s["connected"] and s["scene_id"] == scene_id,
        page,
        f"scene {scene_id} (state: {state(page)})",
    )


def test_plugin_scene_type_is_rendered_and_recorded(live_server: Any, new_page: Any, shots: Any) -> None:
    server = live_server(f"{PLUGIN}:experiment", args=["--plugin", PLUGIN])
    page = new_page()
    page.goto(f"{server.url}/?PROLIFIC_PID=colours")

    wait_scene(page, "hello")
    expect(page.get_by_text("A scene type from a plugin comes next.")).to_be_visible()
    page.get_by_role("button", name="Continue", exact=True).click()

    # The plugin's renderer: its prompt and one swatch per colour.
    wait_scene(page, "favourite")
    assert state(page)["kind"] == "colour_pick"
    expect(page.get_by_role("heading", name="Which colour do you like best?")).to_be_visible()
    swatches = page.get_by_role("group", name="Which colour do you like best?").get_by_role("button")
    expect(swatches).to_have_text(["red", "green", "blue"])
    blue = page.get_by_role("button", name="blue", exact=True)
    assert blue.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(0, 0, 255)"
    shots(page, "01-colour-pick")
    blue.click()

    wait_scene(page, "end")
    expect(page.get_by_role("heading", level=1, name="Thank you")).to_be_visible()
    completion = page.get_by_role("region", name="Your completion code")
    expect(completion.get_by_text("COLOUR1", exact=True)).to_be_visible()
    shots(page, "02-end")

    participant_id = state(page)["participant_id"]
    rows = poll(lambda: read_records(server.data_dir, "colour_study", "responses"), page, "responses")
    assert [(r["scene_id"], r["question_id"], r["value"], r["participant_id"]) for r in rows] == [
        ("favourite", "colour", "blue", participant_id)
    ]
    assert rows[0]["scene_kind"] == "colour_pick"
    assert rows[0]["params"] == {"PROLIFIC_PID": "colours"}
    assert page.errors == []

    # `igym plugins` names the plugin and what it registers.
    listing = subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "plugins", "--plugin", PLUGIN],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    lines = listing.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(PLUGIN))
    block = []
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break
        block.append(line.strip())
    assert "scene_types: colour_pick" in block, listing
    assert "client_assets: colour_pick" in block, listing
