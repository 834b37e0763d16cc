"""The client's game runtime registry (frontend/src/registry.ts) in real Chromium, on the game
harness of test_game_client_logic.py: a plugin runtime loaded from a scene's `runtime_module`
drives the same game shell as the server runtime (HUD, objects, input, the participant's own
objects drawn without interpolation); a runtime that cannot be found is an error the participant
sees; a kind registers once."""

# The harness's `page` fixture is imported by name, so each test's `page` parameter "redefines" it.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from tests.e2e.test_game_client_logic import MOUNT, SCENE, assert_clean, game, harness_url, page, poll  # noqa: F401  (the harness's fixtures)

LOCAL = {**SCENE, "assets": [], "runtime": "local_test", "runtime_module": "/test_runtime.js"}

NEXT_PAINT = (
    "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"
)


def drawn(page: Page, object_id: str) -> dict[str, float] | None:
    return page.evaluate("(id) => window.igym.gameDrawnPose(id)", object_id)


def overlay(page: Page) -> str:
    return page.locator("#root .igym-game-overlay").inner_text()


def errors(page: Page) -> list[str]:
    return [text for kind, text in page.console if kind == "error"]  # type: ignore[attr-defined]


def test_a_plugin_runtime_from_runtime_module_drives_the_shared_shell(page: Page) -> None:
    page.evaluate(MOUNT, LOCAL)
    poll(lambda: page.evaluate("() => !!window.localRuntime"), page, "the runtime module to load and start")
    poll(lambda: game(page).get("view") == "ready", page, "the view")
    state = game(page)
    assert state["runtime"] == "local_test" and state["game_id"] == "local-1" and state["phase"] == "playing"
    assert page.locator("#root .igym-game-hud").inner_text() == "Local game"
    assert page.locator("#root .igym-game-status").inner_text() == "Episode 1 of 2"
    assert set(page.evaluate("() => window.igym.gameObjects()")) == {"mine", "theirs", "ball"}
    assert drawn(page, "mine") == {"x": 100, "y": 100, "angle": 0}
    assert page.evaluate("() => window.localRuntime.changes").count(["view", True]) == 1

    # Input goes to the runtime with the scene's keys and held semantics; nothing to the server.
    page.locator("#root .igym-game-stage").focus()
    page.keyboard.down("ArrowLeft")
    poll(lambda: page.evaluate("() => window.localRuntime.inputs.length") >= 1, page, "the input")
    page.keyboard.up("ArrowLeft")
    poll(lambda: page.evaluate("() => window.localRuntime.inputs.length") >= 2, page, "the release")
    assert page.evaluate("() => window.localRuntime.inputs") == [{"keys": ["ArrowLeft"]}, {"keys": []}]
    assert page.evaluate("() => window.h.sent") == []  # no game_ready, no input: not the server runtime

    # A delta: the participant's own object ("owner" = their seat) is drawn at its new place at the
    # next paint; another seat's object and an unowned one glide (tween_ms 5000).
    page.evaluate(
        """() => window.localRuntime.shell.applyFrame({ type: "frame", game_id: "local-1", tick: 1,
             upd: [{ id: "mine", x: 160 }, { id: "theirs", x: 360 }, { id: "ball", y: 260 }] })"""
    )
    page.evaluate(NEXT_PAINT)
    assert drawn(page, "mine") == {"x": 160, "y": 100, "angle": 0}
    theirs, ball = drawn(page, "theirs"), drawn(page, "ball")
    assert theirs is not None and 300 <= theirs["x"] < 359
    assert ball is not None and 200 <= ball["y"] < 259

    page.evaluate("() => window.h.renderer.destroy()")
    assert page.evaluate("() => window.localRuntime.destroyed") is True
    assert page.evaluate("() => window.h.handlers()") == 0
    assert_clean(page)


STATUS_ONLY = {**SCENE, "assets": [], "runtime": "status_test", "runtime_module": "/test_runtime.js"}


def status(game_id: str) -> dict[str, Any]:
    return {"type": "game_status", "game_id": game_id, "phase": "waiting", "episode": 0, "num_episodes": 1}


def test_a_runtime_whose_module_loads_late_starts_from_the_latest_game_status(page: Page) -> None:
    # Two statuses arrive right after the scene mounts, while the runtime's module is still loading.
    early = [status("g-1"), status("g-2")]
    page.evaluate(
        f"([scene, early]) => {{ ({MOUNT})(scene); window.h.deliver(...early); }}", [STATUS_ONLY, early]
    )
    poll(
        lambda: page.evaluate("() => window.statusRuntime?.statuses.length"),
        page,
        "the runtime's first status",
    )
    page.evaluate(NEXT_PAINT)
    # Only the latest, once, and after its onMessage call had returned.
    assert page.evaluate("() => window.statusRuntime.statuses") == [["g-2", True]]

    # Later statuses reach it as they come; a handler that subscribes later still gets the latest
    # status at once, but no earlier message of a type that is not state (a frame).
    page.evaluate("(msgs) => window.h.deliver(...msgs)", [status("g-3"), {"type": "frame", "game_id": "g-3"}])
    page.evaluate(
        "() => ['game_status', 'frame'].forEach((type) => window.statusRuntime.subscribeLate(type))"
    )
    page.evaluate(NEXT_PAINT)
    assert page.evaluate("() => window.statusRuntime.statuses") == [["g-2", True], ["g-3", True]]
    assert page.evaluate("() => window.statusRuntime.late") == [["game_status", "g-3"]]
    page.evaluate("(msg) => window.h.deliver(msg)", status("g-4"))
    assert page.evaluate("() => window.statusRuntime.late") == [
        ["game_status", "g-3"],
        ["game_status", "g-4"],
    ]
    assert_clean(page)


def missing_runtime(page: Page, scene: dict[str, Any], kind: str) -> None:
    page.evaluate(MOUNT, scene)
    poll(lambda: "could not be started" in overlay(page), page, "the error")
    assert "Please reload the page" in overlay(page)
    assert any(f'game runtime "{kind}"' in text for text in errors(page)), errors(page)
    assert game(page)["runtime"] == kind
    page.keyboard.down("ArrowLeft")
    page.wait_for_timeout(100)
    assert page.evaluate("() => window.h.sent") == []


def test_a_runtime_that_is_neither_registered_nor_loadable_is_an_error_the_participant_sees(
    page: Page,
) -> None:
    missing_runtime(page, {**SCENE, "assets": [], "runtime": "nowhere"}, "nowhere")
    assert any("names no runtime_module" in text for text in errors(page))


def test_a_runtime_module_that_does_not_register_the_kind_is_an_error(page: Page) -> None:
    scene = {**SCENE, "assets": [], "runtime": "other", "runtime_module": "/test_runtime.js"}
    missing_runtime(page, scene, "other")
    assert any("registered none" in text for text in errors(page))


def test_a_module_that_fails_to_load_is_an_error(page: Page) -> None:
    scene = {**SCENE, "assets": [], "runtime": "gone", "runtime_module": "/no_such_module.js"}
    missing_runtime(page, scene, "gone")
    assert any("loading plugin module /no_such_module.js failed" in text for text in errors(page))


def test_a_runtime_kind_registers_once(page: Page) -> None:
    result = page.evaluate(
        """() => {
        const T = window.igymTest;
        const builtIn = T.getRuntime("server");
        return {
          server: T.registerRuntime("server", () => {}),
          same: T.getRuntime("server") === builtIn,
          empty: T.registerRuntime("", () => {}),
          notFunction: T.registerRuntime("x", 42),
          fresh: T.registerRuntime("fresh_kind", () => {}),
        };
    }"""
    )
    assert result == {"server": False, "same": True, "empty": False, "notFunction": False, "fresh": True}
    assert any('game runtime "server" is already registered' in text for text in errors(page))
