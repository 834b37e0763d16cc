"""Chromium loads Pyodide, micropip and a scene's wheels from a real ``igym run`` (no other network),
imports the slime env, steps and renders it; the second load comes from the HTTP cache."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from igym_core.testing import LiveServer
from igym_core.testing.support import CHROMIUM, CHROMIUM_ARGS
from igym_pyodide_p2p.testing import NO_NETWORK_ARGS, load_scene_in_chromium

STUDY = Path(__file__).resolve().parent / "studies" / "packages_slime.py"
TARGET = f"{STUDY}:experiment"
HASHED = ("/plugins/pyodide_p2p/pyodide/", "/plugins/pyodide_p2p/files/")


def test_chromium_loads_the_slime_env_from_igym_cold_then_from_its_cache(tmp_path: Path) -> None:
    with LiveServer(TARGET, tmp_path / "data", cwd=STUDY.parent) as server:
        url = server.url
        outcome = load_scene_in_chromium(url, "slime", runs=2, steps=300, profile_dir=tmp_path / "profile")
        # The second game's env is a plain file of the study, which imports a neighbour file.
        study = load_scene_in_chromium(url, "slime_study", runs=1, steps=50, profile_dir=tmp_path / "profile")
    assert study["errors"] == []
    (run,) = study["runs"]
    assert run["env_module_file"] == "/lib/python3.14/site-packages/packages_study_envs.py"
    assert run["lives"] == 2  # packages_study_helpers.LIVES
    assert outcome["errors"] == []
    # Nothing but igym's own server was asked for anything.
    assert outcome["requests"] and all(r.startswith(url) for r in outcome["requests"]), outcome["requests"]
    cold, warm = outcome["runs"]
    for run in (cold, warm):
        assert run["objects"] == 42 and {"Circle", "Polygon", "Text"} <= set(run["object_types"])
        assert run["frame_keys"] == ["add"]
        # igym-core's lean build, not the server's package; no server stack came with it.
        assert run["igym_core_file"] == "/lib/python3.14/site-packages/igym_core/__init__.py"
        assert run["server_stack_loaded"] == []
        assert run["python"].startswith("3.14")
    # The same seeded steps give the same state in both loads.
    assert cold["state_hash"] == warm["state_hash"]

    def transferred(run: dict[str, object]) -> dict[str, int]:
        return {
            entry["url"].rsplit("/", 1)[1]: entry["transferSize"]
            for entry in run["resources"]  # type: ignore[attr-defined]
            if any(part in entry["url"] for part in HASHED)
        }

    first, second = transferred(cold), transferred(warm)
    expected = {
        "pyodide.mjs",
        "pyodide.asm.mjs",
        "pyodide.asm.wasm",
        "python_stdlib.zip",
        "pyodide-lock.json",
    }
    assert expected <= set(first) and expected <= set(second)
    assert {"attrs", "igym_core", "igym_slime", "micropip"} <= {name.split("-")[0] for name in second}
    # Cold: the WebAssembly came over the wire, gzipped (9.6 MB as 3.6 MB).
    assert 3_000_000 < first["pyodide.asm.wasm"] < 4_500_000, first
    # Warm: every content-hashed file came from the cache (nothing transferred, not even a revalidation).
    assert all(size == 0 for size in second.values()), second
    print(
        f"\ncold: runtime {cold['runtime_ms']:.0f} ms, micropip {cold['micropip_ms']:.0f} ms, "
        f"packages {cold['packages_ms']:.0f} ms, env {cold['env_ms']:.0f} ms; "
        f"warm: runtime {warm['runtime_ms']:.0f} ms, micropip {warm['micropip_ms']:.0f} ms, "
        f"packages {warm['packages_ms']:.0f} ms, env {warm['env_ms']:.0f} ms"
    )


def test_a_page_without_a_browser_run_scene_in_view_loads_none_of_the_runtime(tmp_path: Path) -> None:
    """The participant's page on the study's first (text) scene fetches nothing of the runtime; the
    next scene, a browser-run game, fetches the runtime's page module and Pyodide."""
    requests: list[str] = []
    on_text_scene: list[str] = []
    failure: list[BaseException] = []

    def run(url: str) -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *NO_NETWORK_ARGS], headless=True
                )
                try:
                    page = browser.new_page()
                    page.on("request", lambda request: requests.append(request.url))
                    page.goto(url)
                    page.get_by_text("Press continue to play.").wait_for(timeout=20_000)
                    page.wait_for_timeout(1000)
                    on_text_scene.extend(requests)
                    page.get_by_role("button", name="Continue", exact=True).click()
                    deadline = time.monotonic() + 60
                    while not any("pyodide.asm" in r for r in requests) and time.monotonic() < deadline:
                        page.wait_for_timeout(100)
                finally:
                    browser.close()
        except BaseException as exc:
            failure.append(exc)

    with LiveServer(TARGET, tmp_path / "data", cwd=STUDY.parent) as server:
        thread = threading.Thread(target=run, args=(server.url,))
        thread.start()
        thread.join(120)
    if failure:
        raise failure[0]
    assert any("/client/igym.js" in r for r in on_text_scene), on_text_scene
    assert not [r for r in on_text_scene if "pyodide" in r], on_text_scene
    # The game scene: the runtime's module (a client asset of this plugin), then Pyodide from igym.
    after = requests[len(on_text_scene) :]
    assert any("/plugins/pyodide/runtime.js" in r for r in after), after
    assert any("/plugins/pyodide_p2p/pyodide/" in r and "pyodide.asm" in r for r in after), after
