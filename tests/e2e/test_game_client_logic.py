"""The browser side of game scenes (docs/game-protocol.md), in real Chromium, without a game server.

The client's game modules are bundled by the test with esbuild from `game_harness/harness.ts`
(splitting on, as in the real build, so Phaser is a lazily loaded chunk), served from a loopback
`http.server` with the participant page's Content-Security-Policy, and driven with Playwright:

- the pure parts: delta application, colour parsing, interpolation maths, key tracking and pacing;
- the whole "gym" renderer mounted with a minimal fake scene context and fed `game_status` and
  `frame` messages: what it draws (screenshots, checked pixel by pixel), sends, and exposes.

The last test loads the chunk of the real build from a real `igym run` under its real CSP.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import re
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from igym_core.server.app import _CSP, CLIENT_DIR
from igym_core.testing import poll as _poll

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
ESBUILD = FRONTEND / "node_modules" / ".bin" / "esbuild"
HARNESS = Path(__file__).resolve().parent / "game_harness"

Colour = tuple[int, int, int]

#: Every 30 ms: the countdown's digits each show for one second.
poll = functools.partial(_poll, interval_ms=30)


# ---- fixtures: the harness bundle and its loopback server ---------------------------------------


def png(width: int, height: int, pixel: Callable[[int, int], Colour]) -> bytes:
    """A truecolour PNG (no dependency: zlib + struct)."""
    raw = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


ORANGE, CYAN = (255, 128, 0), (0, 255, 255)
SHEET_0, SHEET_1 = (255, 0, 255), (128, 255, 128)
ATLAS_A, ATLAS_B = (128, 64, 0), (192, 192, 255)
BLUE, YELLOW = (0, 0, 255), (255, 255, 0)


def write_assets(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    # car.png 16x8: left half orange, right half cyan.
    (directory / "car.png").write_bytes(png(16, 8, lambda x, y: ORANGE if x < 8 else CYAN))
    # sheet.png: two 32x32 frames.
    (directory / "sheet.png").write_bytes(png(64, 32, lambda x, y: SHEET_0 if x < 32 else SHEET_1))
    # tiles.png + tiles.json: an atlas with frames "a" and "b".
    (directory / "tiles.png").write_bytes(png(32, 16, lambda x, y: ATLAS_A if x < 16 else ATLAS_B))
    frames = {
        name: {
            "frame": {"x": x, "y": 0, "w": 16, "h": 16},
            "rotated": False,
            "trimmed": False,
            "spriteSourceSize": {"x": 0, "y": 0, "w": 16, "h": 16},
            "sourceSize": {"w": 16, "h": 16},
        }
        for name, x in (("a", 0), ("b", 16))
    }
    meta = {"image": "tiles.png", "size": {"w": 32, "h": 16}, "scale": "1"}
    (directory / "tiles.json").write_text(json.dumps({"frames": frames, "meta": meta}))


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".css": "text/css",
        ".json": "application/json",
        ".png": "image/png",
        ".map": "application/json",
    }

    def end_headers(self) -> None:
        # The participant page's policy: no eval, scripts and connections from 'self' only.
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def harness_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not ESBUILD.exists():
        pytest.fail(f"{ESBUILD} is missing: run `make build` (npm ci in frontend/) first")
    out = tmp_path_factory.mktemp("game_harness")
    common = ["--bundle", "--minify", "--target=es2022", "--log-level=warning"]
    subprocess.run(
        [
            str(ESBUILD),
            str(HARNESS / "harness.ts"),
            *common,
            "--format=esm",
            "--splitting",
            f"--outdir={out}",
            "--entry-names=[name]",
            "--chunk-names=chunks/[name]-[hash]",
        ],
        cwd=FRONTEND,
        check=True,
        timeout=120,
    )
    subprocess.run(
        [str(ESBUILD), str(FRONTEND / "src" / "styles.css"), *common, f"--outfile={out / 'igym.css'}"],
        cwd=FRONTEND,
        check=True,
        timeout=120,
    )
    (out / "index.html").write_text((HARNESS / "index.html").read_text())
    write_assets(out / "assets")
    (out / "test_runtime.js").write_text((HARNESS / "test_runtime.js").read_text())
    # The game chunk is separate: the harness entry does not contain Phaser.
    chunks = list((out / "chunks").glob("view-*.js"))
    assert len(chunks) == 1 and chunks[0].stat().st_size > 1_000_000
    assert (out / "harness.js").stat().st_size < 200_000

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def page(harness_url: str, new_page: Callable[..., Page]) -> Page:
    page = new_page()
    page.console = []  # type: ignore[attr-defined]
    page.on("console", lambda msg: page.console.append((msg.type, msg.text)))  # type: ignore[attr-defined]
    page.goto(f"{harness_url}/index.html")
    poll(lambda: page.evaluate("() => !!window.igymTest"), page, "the harness module")
    return page


def assert_clean(page: Page) -> None:
    assert page.errors == []  # type: ignore[attr-defined]
    # A handler that throws is caught (and logged) by the subscriptions, as in the real client.
    failed = [text for kind, text in page.console if kind == "error" and "handler failed" in text]  # type: ignore[attr-defined]
    assert failed == []
    assert page.evaluate("() => window.igymTest.violations") == []


# ---- pure parts ---------------------------------------------------------------------------------


def test_colour_parsing_and_field_defaults(page: Page) -> None:
    result = page.evaluate(
        """() => {
        const T = window.igymTest;
        const colours = ["#ff8000", "#FF8000", "#f80", " #00ff00 ", "red", "#12345", "#gg0000", null, 42]
          .map((c) => T.parseColour(c));
        const rect = { id: "r", object_type: "rect", fill: null, x: null, width: 30 };
        return {
          colours,
          css: T.colourToCss(0x0a0b0c),
          fill: T.fieldValue(rect, "fill"),
          stroke: T.fieldValue(rect, "stroke"),
          lineWidth: T.fieldValue(rect, "line_width"),
          x: T.numberField(rect, "x"),
          alpha: T.numberField(rect, "alpha"),
          width: T.numberField(rect, "width"),
          tween: T.fieldValue(rect, "tween_ms"),
          textDefaults: T.TYPE_DEFAULTS.text,
          points: T.pointsField({ id: "l", object_type: "line", points: [[1, 2], "bad", [3], [4, 5]] }),
        };
    }"""
    )
    assert result["colours"] == [0xFF8000, 0xFF8000, 0xFF8800, 0x00FF00, None, None, None, None, None]
    assert result["css"] == "#0a0b0c"
    # Present-but-null is a value (no fill); absent takes the default.
    assert result["fill"] is None
    assert result["stroke"] is None
    assert result["lineWidth"] == 1
    assert result["x"] == 0  # null where null is not meaningful: the default
    assert result["alpha"] == 1
    assert result["width"] == 30
    assert result["tween"] is None
    assert result["textDefaults"] == {
        "text": "",
        "font_size": 16,
        "font_family": "sans-serif",
        "color": "#ffffff",
        "align": "left",
        "origin_x": 0,
        "origin_y": 0,
    }
    assert result["points"] == [[1, 2], [4, 5]]
    assert_clean(page)


def test_delta_application(page: Page) -> None:
    steps = page.evaluate(
        """() => {
        const T = window.igymTest;
        const table = new T.ObjectTable();
        const out = [];
        const step = (frame) => {
          const r = table.apply(frame);
          out.push({
            keyframe: r.keyframe,
            removed: r.removed,
            added: r.added.map((o) => o.id),
            updated: r.updated.map((u) => ({ id: u.id, patch: u.patch, retyped: u.retyped })),
            skipped: r.skipped,
            objects: table.snapshot(),
          });
        };
        // 1. A keyframe.
        step({ key: true, add: [
          { id: "a", object_type: "rect", x: 10, y: 20, width: 5, height: 6, fill: "#ff0000" },
          { id: "b", object_type: "circle", x: 1, radius: 3 },
        ] });
        // 2. add / partial upd / rm in one frame; upd and rm of unknown ids are skipped.
        step({ key: false, tick: 2,
          add: [{ id: "c", object_type: "text", text: "hi" }],
          upd: [{ id: "a", x: 11, alpha: 0.5, fill: null }, { id: "zz", x: 1 }],
          rm: ["b", "nope"] });
        // 3. Fields going back to their defaults arrive with the default value.
        step({ upd: [{ id: "a", alpha: 1, fill: "#ffffff", tween_ms: null }, { id: "c", text: "" }] });
        // 4. Re-adding a live id replaces it; a type change in upd is reported.
        step({ add: [{ id: "c", object_type: "circle", radius: 9 }],
               upd: [{ id: "a", object_type: "circle" }] });
        // 5. rm then add of the same id in one frame.
        step({ rm: ["c"], add: [{ id: "c", object_type: "rect", width: 1 }] });
        // 6. A keyframe drops everything it does not add.
        step({ key: true, add: [{ id: "d", object_type: "line", points: [[0, 0], [1, 1]] }] });
        // 7. Garbage is skipped, not fatal.
        step({ add: [{ id: 5 }, "x", null], upd: "nope", rm: [7] });
        return out;
    }"""
    )
    s1, s2, s3, s4, s5, s6, s7 = steps
    assert s1["keyframe"] and s1["removed"] == [] and s1["added"] == ["a", "b"]
    assert s1["objects"]["b"] == {"id": "b", "object_type": "circle", "x": 1, "radius": 3}

    assert s2["removed"] == ["b"] and s2["added"] == ["c"] and s2["skipped"] == 2
    assert s2["updated"] == [{"id": "a", "patch": {"x": 11, "alpha": 0.5, "fill": None}, "retyped": False}]
    assert s2["objects"]["a"] == {
        "id": "a",
        "object_type": "rect",
        "x": 11,
        "y": 20,
        "width": 5,
        "height": 6,
        "fill": None,
        "alpha": 0.5,
    }
    assert set(s2["objects"]) == {"a", "c"}

    assert s3["objects"]["a"]["alpha"] == 1 and s3["objects"]["a"]["fill"] == "#ffffff"
    assert s3["objects"]["a"]["tween_ms"] is None and s3["objects"]["c"]["text"] == ""

    assert s4["removed"] == ["c"] and s4["added"] == ["c"]
    assert s4["objects"]["c"] == {"id": "c", "object_type": "circle", "radius": 9}
    assert s4["updated"][0]["retyped"] is True and s4["objects"]["a"]["object_type"] == "circle"

    assert s5["removed"] == ["c"] and s5["added"] == ["c"] and s5["objects"]["c"]["object_type"] == "rect"

    assert s6["keyframe"] and sorted(s6["removed"]) == ["a", "c"] and list(s6["objects"]) == ["d"]
    assert s7["skipped"] == 5 and list(s7["objects"]) == ["d"]
    assert_clean(page)


def test_angle_interpolation_takes_the_shortest_way(page: Page) -> None:
    r = page.evaluate(
        """() => {
        const T = window.igymTest;
        const m = T.startMotion({ x: 0, y: 0, angle: 350 }, { x: 100, y: -50, angle: 10 }, 1000, 200);
        const at = (t) => T.poseAt(m, t);
        const back = T.startMotion({ x: 0, y: 0, angle: 10 }, { x: 0, y: 0, angle: -160 + 360 * 2 }, 0, 100);
        return {
          deltas: [[350, 10], [10, 350], [0, 180], [0, -180], [90, -90], [-170, 170], [720, 30], [0, 0]]
            .map(([a, b]) => T.shortestAngleDelta(a, b)),
          lerps: [T.lerpAngle(350, 10, 0.5), T.lerpAngle(10, 350, 0.25), T.lerpAngle(-170, 170, 0.5)],
          wraps: [T.wrapAngle(190), T.wrapAngle(-190), T.wrapAngle(360), T.wrapAngle(180)],
          start: at(900), quarter: at(1050), half: at(1100), end: at(1200), after: at(5000),
          back: T.poseAt(back, 50).pose.angle,
          durations: [T.tweenDuration(null, 30), T.tweenDuration(undefined, 20), T.tweenDuration(0, 30),
                      T.tweenDuration(-5, 30), T.tweenDuration(250, 30), T.tweenDuration("x", 30)],
        };
    }"""
    )
    assert r["deltas"] == [20, -20, 180, 180, 180, -20, 30, 0]
    assert r["lerps"] == [360, 5, -180]
    assert r["wraps"] == [-170, 170, 0, -180]
    assert r["start"] == {"pose": {"x": 0, "y": 0, "angle": 350}, "done": False}
    assert r["quarter"]["pose"] == {"x": 25, "y": -12.5, "angle": 355}
    assert r["half"]["pose"] == {"x": 50, "y": -25, "angle": 360}  # 350 → 370 (≡ 10) through 0, not back
    assert r["end"] == {"pose": {"x": 100, "y": -50, "angle": 370}, "done": True}
    assert r["after"]["done"] is True
    assert r["back"] == pytest.approx(-75)  # 10 → 560 (≡ -160): the short way is -170, half is -85
    assert r["durations"] == [pytest.approx(1000 / 30), 50, 0, 0, 250, 0]
    assert_clean(page)


# ---- keyboard ---------------------------------------------------------------------------------

SETUP_KEYS = """([mode, interval, listened]) => {
    const T = window.igymTest;
    window.sent = [];
    window.allow = true;
    window.events = [];
    const t0 = performance.now();
    window.input = new T.KeyInput({
      mode, intervalMs: interval, canSend: () => window.allow,
      send: (p) => window.sent.push({ t: performance.now() - t0, ...p }),
    });
    window.offKeys = T.listenKeyboard(window, window.input, { listened: new Set(listened) });
    // Registered after the game's listener: sees whether it prevented the default.
    for (const type of ["keydown", "keyup"]) {
      window.addEventListener(type, (e) => window.events.push([type, e.key, e.repeat, e.defaultPrevented]));
    }
}"""


def sent(page: Page, field: str = "keys") -> list[Any]:
    return [m[field] for m in page.evaluate("() => window.sent")]


def test_held_keys_combos_in_press_order_and_auto_repeat(page: Page) -> None:
    page.evaluate(SETUP_KEYS, ["held", 0, ["ArrowLeft", "ArrowRight", "ArrowDown", " ", "a", "Shift"]])
    kb = page.keyboard
    kb.down("ArrowRight")
    kb.down("Space")
    kb.down("a")
    kb.down("a")  # auto-repeat: ignored (but its default is still prevented)
    kb.up("Space")
    kb.down("Space")
    kb.up("ArrowRight")
    kb.down("x")  # not a game key: ignored, default kept
    kb.up("x")
    kb.up("a")
    kb.up("Space")
    assert sent(page) == [
        ["ArrowRight"],
        ["ArrowRight", " "],
        ["ArrowRight", " ", "a"],
        ["ArrowRight", "a"],
        ["ArrowRight", "a", " "],
        ["a", " "],
        [" "],
        [],
    ]
    events = page.evaluate("() => window.events")
    assert ["keydown", "a", True, True] in events
    assert ["keydown", "x", False, False] in events
    assert all(prevented for _, key, _, prevented in events if key != "x")

    # Shift+A is "a" (letters lower-case); the release matches the press even after Shift is up.
    page.evaluate("() => { window.sent.length = 0; }")
    kb.down("Shift")
    kb.down("KeyA")
    kb.up("Shift")
    kb.up("KeyA")
    assert sent(page) == [["Shift"], ["Shift", "a"], ["a"], []]

    # Arrows and space do not scroll the page.
    page.evaluate("() => { document.body.style.height = '5000px'; window.scrollTo(0, 0); }")
    kb.press("ArrowDown")
    kb.press("Space")
    assert page.evaluate("() => window.scrollY") == 0
    page.evaluate("() => window.offKeys()")
    kb.press("ArrowDown")
    poll(lambda: page.evaluate("() => window.scrollY") > 0, page, "scrolling once the game stopped listening")
    assert_clean(page)


def test_keys_released_on_blur_and_hidden_page(page: Page) -> None:
    page.evaluate(SETUP_KEYS, ["held", 0, ["ArrowLeft", "ArrowUp"]])
    page.keyboard.down("ArrowLeft")
    page.keyboard.down("ArrowUp")
    page.evaluate("() => window.dispatchEvent(new Event('blur'))")
    page.keyboard.up("ArrowLeft")  # the late release of a released key changes nothing
    page.keyboard.up("ArrowUp")
    assert sent(page) == [["ArrowLeft"], ["ArrowLeft", "ArrowUp"], []]

    page.keyboard.down("ArrowUp")
    page.evaluate(
        """() => {
        Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
        document.dispatchEvent(new Event("visibilitychange"));
        delete document.visibilityState;
    }"""
    )
    page.keyboard.up("ArrowUp")
    assert sent(page)[3:] == [["ArrowUp"], []]
    assert_clean(page)


def test_keys_typed_into_text_fields_are_not_game_input(page: Page) -> None:
    page.evaluate(SETUP_KEYS, ["held", 0, ["ArrowLeft", " ", "a"]])
    page.evaluate(
        """() => {
        const root = document.getElementById("root");
        for (const [tag, id] of [["input", "in"], ["textarea", "ta"], ["select", "se"]]) {
          const el = document.createElement(tag);
          el.id = id;
          if (tag === "select") el.append(new Option("one"), new Option("two"));
          root.append(el);
        }
        const ce = document.createElement("div");
        ce.id = "ce";
        ce.contentEditable = "true";
        root.append(ce);
    }"""
    )
    page.locator("#in").click()
    page.keyboard.type("a a")
    page.keyboard.press("ArrowLeft")
    page.locator("#ta").click()
    page.keyboard.type("aa ")
    page.locator("#ce").click()
    page.keyboard.type("a ")
    assert page.locator("#in").input_value() == "a a"
    assert page.locator("#ta").input_value() == "aa "
    assert page.locator("#ce").inner_text().strip() == "a"
    assert sent(page) == []
    checks = page.evaluate(
        """() => ["in", "ta", "se", "ce", "root"]
          .map((id) => window.igymTest.isTextEntry(document.getElementById(id)))
          .concat([window.igymTest.isTextEntry(window), window.igymTest.isTextEntry(null)])"""
    )
    assert checks == [True, True, True, True, False, False, False]

    # A key held when a text field takes focus is still released.
    page.evaluate("() => document.activeElement.blur()")
    page.keyboard.down("ArrowLeft")
    page.evaluate("() => document.getElementById('in').focus()")
    page.keyboard.up("ArrowLeft")
    assert sent(page) == [["ArrowLeft"], []]
    assert_clean(page)


def test_shortcuts_with_modifiers_are_left_to_the_browser(page: Page) -> None:
    page.evaluate(SETUP_KEYS, ["held", 0, ["a", "ArrowLeft"]])
    page.keyboard.down("Control")
    page.keyboard.down("a")
    page.keyboard.up("a")
    page.keyboard.up("Control")
    assert sent(page) == []
    assert ["keydown", "a", False, False] in page.evaluate("() => window.events")
    # With the modifier among the game's keys, combos with it are game input.
    page.evaluate(SETUP_KEYS, ["held", 0, ["a", "Control"]])
    page.keyboard.down("Control")
    page.keyboard.down("a")
    assert sent(page) == [["Control"], ["Control", "a"]]
    assert_clean(page)


def test_held_key_pacing_sends_at_most_once_per_interval_with_the_final_state(page: Page) -> None:
    result = page.evaluate(
        """async () => {
        const T = window.igymTest;
        const sent = [];
        const t0 = performance.now();
        const input = new T.KeyInput({
          mode: "held", intervalMs: 100, canSend: () => true,
          send: (p) => sent.push({ t: performance.now() - t0, keys: p.keys }),
        });
        const off = T.listenKeyboard(window, input, { listened: new Set(["ArrowLeft", "ArrowRight", " "]) });
        const key = (type, k, code) =>
          window.dispatchEvent(new KeyboardEvent(type, { key: k, code, cancelable: true }));
        const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
        const until = async (t) => { while (performance.now() - t0 < t) await sleep(2); };

        key("keydown", "ArrowLeft", "ArrowLeft");      // t=0: sent at once
        await until(10);
        key("keydown", " ", "Space");                  // inside the interval: waits for its end...
        await until(20);
        key("keyup", "ArrowLeft", "ArrowLeft");
        await until(30);
        key("keydown", "ArrowRight", "ArrowRight");    // ...and is sent then, as the state at that time
        await until(130);
        key("keydown", "ArrowLeft", "ArrowLeft");      // a tap inside one interval, over before its end:
        await until(140);
        key("keyup", "ArrowLeft", "ArrowLeft");        // nothing changed at the end, nothing sent
        await until(260);
        const mark = sent.length;
        // A burst: a change every 15 ms for 300 ms.
        const seq = ["ArrowLeft", "ArrowLeft", " ", "ArrowRight", "ArrowRight", " ", "ArrowLeft"];
        let down = new Set([" ", "ArrowRight"]);
        for (let i = 0; i < 20; i++) {
          const k = seq[i % seq.length];
          const type = down.has(k) ? "keyup" : "keydown";
          if (type === "keyup") down.delete(k); else down.add(k);
          key(type, k, k === " " ? "Space" : k);
          await sleep(15);
        }
        const finalHeld = input.held;
        await sleep(250);
        off();
        input.destroy();
        return { sent, mark, finalHeld };
    }"""
    )
    sent_ = result["sent"]
    first, second = sent_[0], sent_[1]
    assert first["keys"] == ["ArrowLeft"] and first["t"] < 10
    assert second["keys"] == [" ", "ArrowRight"] and second["t"] >= 99
    assert result["mark"] == 2, sent_  # the tap sent nothing
    times = [m["t"] for m in sent_]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 99, sent_
    burst = sent_[2:]
    assert 2 <= len(burst) <= 5, burst  # 300 ms of changes: about one send per 100 ms
    assert burst[-1]["keys"] == result["finalHeld"]
    assert_clean(page)


def test_press_mode_and_sending_only_when_allowed(page: Page) -> None:
    page.evaluate(SETUP_KEYS, ["press", 100, ["a", "b", " "]])
    kb = page.keyboard
    kb.press("a")  # sent at once
    kb.press("b")
    kb.down("a")
    kb.down("a")  # auto-repeat: not a press
    kb.up("a")
    poll(lambda: len(sent(page, "press")) == 2, page, "the second batch")
    page.wait_for_timeout(150)
    assert sent(page, "press") == [["a"], ["b", "a"]]

    # Not allowed (no game yet, or waiting/ended): presses are dropped.
    page.evaluate("() => { window.allow = false; }")
    kb.press("b")
    page.wait_for_timeout(150)
    page.evaluate("() => { window.allow = true; window.input.kick(); }")
    kb.press(" ")
    poll(lambda: len(sent(page, "press")) == 3, page, "the press after sending was allowed again")
    assert sent(page, "press")[2] == [" "]

    # Held mode: keys held while not allowed are tracked and sent by kick().
    page.evaluate(SETUP_KEYS, ["held", 50, ["a", "b"]])
    page.evaluate("() => { window.allow = false; }")
    kb.down("a")
    kb.down("b")
    page.wait_for_timeout(100)
    assert sent(page) == []
    page.evaluate("() => { window.allow = true; window.input.kick(); }")
    assert sent(page) == [["a", "b"]]
    # resync(): the server's view is unknown (reconnect): the same set again.
    page.evaluate("() => window.input.resync()")
    poll(lambda: len(sent(page)) == 2, page, "the resent set")
    assert sent(page) == [["a", "b"], ["a", "b"]]
    assert_clean(page)


# ---- the whole renderer -----------------------------------------------------------------------

# The scene context as the client's App makes it: `onMessage` is the App's own subscriptions
# (frontend/src/subscriptions.ts), `h.deliver` what the App does with a message from the server.
MOUNT = """(scene) => {
    const sent = [];
    const subscriptions = new window.igymTest.Subscriptions();
    const root = document.getElementById("root");
    const ctx = {
      root, scene, context: {}, draft: {}, position: 0, total: 1, instance: 0,
      saveDraft() {}, submit: async () => ({ ok: true }),
      send: (m) => sent.push(m),
      onMessage: (type, fn) => subscriptions.subscribe(type, fn),
    };
    const renderer = window.igymTest.gymScene(ctx);
    window.h = {
      sent, renderer,
      deliver: (...msgs) => { for (const m of msgs) subscriptions.dispatch(m); },
      handlers: () => subscriptions.size,
    };
}"""

SCENE = {
    "kind": "gym",
    "scene_id": "drive",
    "fps": 30,
    "canvas": {"width": 480, "height": 320, "background": "#102030"},
    "input_mode": "held",
    "keys": ["ArrowLeft", "ArrowRight", " ", "a"],
    "header_html": "<h2>Drive the car</h2>",
    "footer_html": "<p>Use the arrow keys.</p>",
    "renderer": "objects",
    "interpolate": True,
    "assets": [
        {"type": "image", "key": "car", "url": "assets/car.png"},
        {
            "type": "spritesheet",
            "key": "sheet",
            "url": "assets/sheet.png",
            "frame_width": 32,
            "frame_height": 32,
        },
        {"type": "atlas", "key": "tiles", "url": "assets/tiles.png", "atlas_url": "assets/tiles.json"},
        {"type": "image", "key": "missing", "url": "assets/missing.png"},
    ],
}

OBJECTS = [
    {"id": "red", "object_type": "rect", "x": 80, "y": 60, "width": 100, "height": 60, "fill": "#ff0000"},
    {
        "id": "ring",
        "object_type": "circle",
        "x": 240,
        "y": 80,
        "radius": 40,
        "fill": None,
        "stroke": "#00ff00",
        "line_width": 8,
    },
    {
        "id": "tri",
        "object_type": "polygon",
        "x": 400,
        "y": 80,
        "points": [[-40, 30], [40, 30], [0, -40]],
        "fill": "#0000ff",
    },
    {
        "id": "path",
        "object_type": "line",
        "points": [[20, 300], [120, 200], [220, 300]],
        "color": "#ffff00",
        "line_width": 8,
    },
    {
        "id": "label",
        "object_type": "text",
        "x": 240,
        "y": 160,
        "text": "Score",
        "font_size": 28,
        "origin_x": 0.5,
        "origin_y": 0.5,
        "depth": 3,
    },
    {"id": "car", "object_type": "sprite", "image": "car", "x": 300, "y": 250, "width": 64, "height": 32},
    {
        "id": "sheet",
        "object_type": "sprite",
        "image": "sheet",
        "frame": 1,
        "x": 380,
        "y": 250,
        "width": 48,
        "height": 48,
    },
    {
        "id": "atl",
        "object_type": "sprite",
        "image": "tiles",
        "frame": "b",
        "x": 440,
        "y": 250,
        "width": 32,
        "height": 32,
    },
    {"id": "ghost", "object_type": "sprite", "image": "missing", "x": 440, "y": 160},
    {
        "id": "mover",
        "object_type": "rect",
        "x": 60,
        "y": 140,
        "width": 20,
        "height": 20,
        "fill": "#ff00ff",
        "depth": 5,
        "tween_ms": 1500,
    },
]


def canvases(page: Page) -> int:
    return page.evaluate("() => document.querySelectorAll('canvas').length")


def game(page: Page) -> dict[str, Any]:
    return page.evaluate("() => window.igym.state.game")


def stage_box(page: Page) -> dict[str, float]:
    box = page.locator(".igym-game-stage").bounding_box()
    assert box is not None
    return box


def sample(page: Page, points: list[tuple[float, float]]) -> list[Colour]:
    """Colours at viewport points, read from a real screenshot (decoded in the page)."""
    shot = base64.b64encode(page.screenshot()).decode()
    colours = page.evaluate(
        """async ([b64, points]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const bmp = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
        const c = new OffscreenCanvas(bmp.width, bmp.height);
        const g = c.getContext("2d");
        g.drawImage(bmp, 0, 0);
        return points.map(([x, y]) =>
          Array.from(g.getImageData(Math.round(x), Math.round(y), 1, 1).data.slice(0, 3)));
    }""",
        [shot, [list(p) for p in points]],
    )
    return [tuple(c) for c in colours]


def colour_span(page: Page, colour: Colour, y: float, x0: float, x1: float) -> tuple[float, float] | None:
    """First and last x on the row `y` between x0 and x1 whose pixel is `colour` (±40)."""
    shot = base64.b64encode(page.screenshot()).decode()
    return page.evaluate(
        """async ([b64, colour, y, x0, x1]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const bmp = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
        const c = new OffscreenCanvas(bmp.width, bmp.height);
        const g = c.getContext("2d");
        g.drawImage(bmp, 0, 0);
        const row = g.getImageData(Math.round(x0), Math.round(y), Math.round(x1 - x0), 1).data;
        let first = null, last = null;
        for (let i = 0; i < row.length / 4; i++) {
          const near = [0, 1, 2].every((k) => Math.abs(row[i * 4 + k] - colour[k]) <= 40);
          if (near) { if (first === null) first = i; last = i; }
        }
        return first === null ? null : [x0 + first, x0 + last];
    }""",
        [shot, list(colour), y, x0, x1],
    )


def overlay_text(page: Page) -> list[str]:
    return page.locator("#root .igym-game-overlay p:visible").all_inner_texts()


def near(actual: Colour, expected: Colour, tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def test_gym_renderer_draws_frames_and_sends_input(page: Page, shots: Any) -> None:
    page.evaluate(MOUNT, SCENE)
    root = page.locator("#root")
    label = "Game: use the keys Left arrow, Right arrow, Space and A to play"
    stage = page.get_by_role("application", name=label)
    assert stage.count() == 1
    assert root.locator(".igym-game-header h2").inner_text() == "Drive the car"
    assert root.locator(".igym-game-footer").inner_text() == "Use the arrow keys."
    hud = root.locator(".igym-game-hud")
    assert hud.get_attribute("aria-live") == "off"
    overlay = root.locator(".igym-game-overlay")

    # Nothing is sent before a game_status names the game.
    poll(lambda: game(page)["view"] == "ready", page, "the Phaser view and its assets")
    assert page.evaluate("() => window.h.sent") == []
    assert page.evaluate("() => document.activeElement.getAttribute('role')") == "application"
    # The failed asset is reported with its URL, and the game still starts.
    errors = [text for kind, text in page.console if kind == "error" and "could not be loaded" in text]  # type: ignore[attr-defined]
    assert len(errors) == 1 and "assets/missing.png" in errors[0] and '"missing"' in errors[0]

    page.evaluate(
        """() => window.h.deliver({ type: "game_status", game_id: "g1", phase: "waiting", episode: 1,
                                   num_episodes: 3, seat: "0", message: "", countdown_ms: 0 })"""
    )
    assert page.evaluate("() => window.h.sent") == [{"type": "game_ready", "game_id": "g1"}]
    assert overlay_text(page) == ["Waiting for the game to start…", "Episode 1 of 3"]
    assert root.locator(".igym-game-status").inner_text() == "Episode 1 of 3"

    # A keyframe with every object type; the HUD.
    page.evaluate(
        """(objects) => window.h.deliver({ type: "frame", game_id: "g1", tick: 0, episode: 1, step: 0, t: 1,
                                          key: true, hud: "Score: 0\\nLives: 3", add: objects })""",
        OBJECTS,
    )
    assert hud.inner_text() == "Score: 0\nLives: 3"
    objects = page.evaluate("() => window.igym.gameObjects()")
    assert objects == {o["id"]: o for o in OBJECTS}

    # Countdown: a big number counting down locally, then hidden.
    page.evaluate(
        """() => window.h.deliver({ type: "game_status", game_id: "g1", phase: "countdown", episode: 1,
                                   num_episodes: 3, seat: "0", message: "", countdown_ms: 2500 })"""
    )
    title = root.locator(".igym-game-overlay-title")
    assert title.inner_text() == "3"
    shots(page, "00-countdown")
    assert root.locator(".igym-game-overlay-text").inner_text() == "Episode 1 of 3"
    poll(lambda: title.inner_text() == "2", page, "2")
    poll(lambda: title.inner_text() == "1", page, "1")
    poll(lambda: not overlay.is_visible(), page, "the countdown to end")
    page.evaluate(
        """() => window.h.deliver({ type: "game_status", game_id: "g1", phase: "playing", episode: 1,
                                   num_episodes: 3, seat: "0", message: "", countdown_ms: 0 })"""
    )
    assert not overlay.is_visible()

    # The picture: every shape where the frame put it, scaled to the stage.
    box = stage_box(page)
    scale = box["width"] / 480
    assert box["height"] == pytest.approx(320 * scale, abs=1.5)

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * scale, box["y"] + y * scale

    probes = {
        "red rect": (at(80, 60), (255, 0, 0)),
        "circle ring": (at(240 + 40, 80), (0, 255, 0)),
        "circle hollow": (at(240, 80), (16, 32, 48)),
        "triangle": (at(400, 95), (0, 0, 255)),
        "polyline": (at(70, 250), (255, 255, 0)),
        "car left half": (at(300 - 16, 250), ORANGE),
        "car right half": (at(300 + 16, 250), CYAN),
        "spritesheet frame 1": (at(380, 250), SHEET_1),
        "atlas frame b": (at(440, 250), ATLAS_B),
        "missing sprite placeholder": (at(440 - 10, 160 - 4), (154, 161, 173)),
        "mover": (at(60, 140), (255, 0, 255)),
        "background": (at(10, 10), (16, 32, 48)),
    }
    colours = sample(page, [p for p, _ in probes.values()])
    wanted = [(name, want) for name, (_, want) in probes.items()]
    wrong = {name: got for (name, want), got in zip(wanted, colours, strict=True) if not near(got, want)}
    assert wrong == {}, wrong
    text = colour_span(page, (255, 255, 255), at(240, 160)[1], at(150, 0)[0], at(330, 0)[0])
    assert text is not None and text[0] > at(190, 0)[0] and text[1] < at(290, 0)[0]  # centred text
    shots(page, "01-objects")

    # Input through the renderer: keys held on the focused stage.
    page.keyboard.down("ArrowRight")
    page.keyboard.down("Space")
    poll(lambda: len(page.evaluate("() => window.h.sent")) >= 3, page, "input messages")
    page.keyboard.up("ArrowRight")
    page.keyboard.up("Space")
    poll(lambda: game(page)["keys"] == [], page, "the release")
    inputs = [m for m in page.evaluate("() => window.h.sent") if m["type"] == "input"]
    assert inputs[0] == {"type": "input", "game_id": "g1", "seq": 1, "keys": ["ArrowRight"]}
    assert [m["seq"] for m in inputs] == list(range(1, len(inputs) + 1))
    assert inputs[-1]["keys"] == []
    assert ["ArrowRight", " "] in [m["keys"] for m in inputs]

    # A delta: partial updates (merged), a removal, a slow move that glides.
    page.evaluate(
        """() => window.h.deliver({ type: "frame", game_id: "g1", tick: 1, episode: 1, step: 1, t: 2,
            upd: [{ id: "red", fill: "#00ffff", angle: 0 }, { id: "mover", x: 420 },
                  { id: "label", text: "Score 1" }],
            rm: ["ghost"] })"""
    )
    started = time.monotonic()
    objects = page.evaluate("() => window.igym.gameObjects()")
    assert "ghost" not in objects and objects["mover"]["x"] == 420
    assert objects["red"] == {**OBJECTS[0], "fill": "#00ffff", "angle": 0}
    assert objects["label"]["text"] == "Score 1"
    page.wait_for_timeout(max(0, 600 - (time.monotonic() - started) * 1000))
    span = colour_span(page, (255, 0, 255), at(0, 140)[1], box["x"], box["x"] + box["width"] - 1)
    elapsed_ms = (time.monotonic() - started) * 1000
    assert span is not None
    centre = ((span[0] + span[1]) / 2 - box["x"]) / scale
    # 1.5 s from x=60 to x=420; sampled after ~0.6–1.2 s: somewhere in between, not at either end.
    assert 60 + 30 < centre < 420 - 30, (centre, elapsed_ms)
    shots(page, "02-mid-move")
    page.wait_for_timeout(1500)
    span = colour_span(page, (255, 0, 255), at(0, 140)[1], box["x"], box["x"] + box["width"] - 1)
    assert span is not None
    assert ((span[0] + span[1]) / 2 - box["x"]) / scale == pytest.approx(420, abs=3)
    assert near(sample(page, [at(80, 60)])[0], (0, 255, 255))
    assert near(sample(page, [at(440 - 10, 160 - 4)])[0], (16, 32, 48))  # the removed placeholder

    # Angles: a rotation by 90° of the wide red rect makes it tall.
    page.evaluate(
        """() => window.h.deliver({ type: "frame", game_id: "g1", tick: 2,
                                   upd: [{ id: "red", angle: 90, tween_ms: 0 }] })"""
    )
    page.wait_for_timeout(100)
    tall = sample(page, [at(80, 60 + 45), at(80 + 45, 60)])
    assert near(tall[0], (0, 255, 255)) and near(tall[1], (16, 32, 48)), tall

    g = game(page)
    assert g["game_id"] == "g1" and g["phase"] == "playing" and g["episode"] == 1 and g["num_episodes"] == 3
    assert g["tick"] == 2 and g["frames"] == 3 and g["keyframes"] == 1 and g["objects"] == len(OBJECTS) - 1
    assert g["hud"] == "Score: 0\nLives: 3" and g["keys"] == [] and g["dropped_images"] == 0

    # A reconnect (welcome, then game_status again): game_ready again; the HUD "" hides.
    page.evaluate(
        """() => window.h.deliver({ type: "welcome" },
            { type: "game_status", game_id: "g1", phase: "playing", episode: 1, num_episodes: 3, seat: "0",
              message: "" },
            { type: "frame", game_id: "g1", tick: 3, hud: "" },
            { type: "frame", game_id: "other", tick: 99, key: true, add: [] })"""
    )
    assert [m for m in page.evaluate("() => window.h.sent") if m["type"] == "game_ready"] == [
        {"type": "game_ready", "game_id": "g1"}
    ] * 2
    # ...and the held set (nothing now) once more, as the new connection knows nothing of it.
    poll(lambda: len(page.evaluate("() => window.h.sent")) == len(inputs) + 3, page, "the resent held set")
    resent = page.evaluate("() => window.h.sent")[-1]
    assert resent == {"type": "input", "game_id": "g1", "seq": len(inputs) + 1, "keys": []}
    inputs.append(resent)
    assert not hud.is_visible() or hud.evaluate("el => getComputedStyle(el).visibility") == "hidden"
    # The other game's frame is ignored.
    assert game(page)["tick"] == 3 and game(page)["objects"] == len(OBJECTS) - 1

    # Game over.
    page.evaluate(
        """() => window.h.deliver({ type: "game_status", game_id: "g1", phase: "ended", episode: 3,
                                   num_episodes: 3, seat: "0", message: "All episodes played." })"""
    )
    assert overlay.is_visible() and overlay_text(page) == ["Game over", "All episodes played."]
    shots(page, "03-ended")
    page.keyboard.press("ArrowLeft")
    page.wait_for_timeout(100)
    # Nothing is sent after the end.
    assert [m for m in page.evaluate("() => window.h.sent") if m["type"] == "input"] == inputs

    # The canvas fits the window: smaller window, smaller canvas, same aspect, crisp buffer.
    page.set_viewport_size({"width": 700, "height": 520})
    poll(lambda: stage_box(page)["width"] < box["width"], page, "the canvas to shrink")
    small = stage_box(page)
    assert small["y"] + small["height"] <= 520
    assert small["height"] == pytest.approx(small["width"] * 320 / 480, abs=1.5)
    canvas = page.locator("#root canvas")
    buffer = [canvas.evaluate("c => c.width"), canvas.evaluate("c => c.height")]
    assert buffer == [round(small["width"]), round(small["height"])]  # devicePixelRatio 1 here

    # destroy(): listeners gone, canvas removed, state kept as the last game's.
    page.evaluate("() => window.h.renderer.destroy()")
    page.keyboard.press("ArrowLeft")
    poll(lambda: canvases(page) == 0, page, "the canvas to go")
    assert page.evaluate("() => window.igym.gameObjects()") == {}
    assert game(page)["phase"] == "ended"
    assert_clean(page)


def test_rgb_array_frames_and_a_second_game_after_the_first(page: Page, shots: Any) -> None:
    plain = {"assets": [], "header_html": "", "footer_html": ""}
    page.evaluate(MOUNT, {**SCENE, **plain, "renderer": "rgb_array"})
    poll(lambda: game(page)["view"] == "ready", page, "the first view")
    page.evaluate("() => { window.h.renderer.destroy(); document.getElementById('root').replaceChildren(); }")

    scene = {
        **SCENE,
        **plain,
        "scene_id": "pixels",
        "renderer": "rgb_array",
        "keys": [],
        "canvas": {"width": 300, "height": 150, "background": "#000000"},
    }
    page.evaluate(MOUNT, scene)
    assert page.get_by_role("application", name="Game").count() == 1
    page.evaluate(
        """() => window.h.deliver({ type: "game_status", game_id: "g2", phase: "playing", episode: 1,
                                   num_episodes: 1, seat: "0", message: "" })"""
    )
    poll(lambda: game(page)["view"] == "ready", page, "the second view")
    assert page.evaluate("() => window.h.sent") == [{"type": "game_ready", "game_id": "g2"}]

    # 60x40 frames (aspect 3:2) in a 2:1 canvas: drawn centred, aspect kept.
    left_blue = png(60, 40, lambda x, y: BLUE if x < 30 else YELLOW)
    page.evaluate(
        """(bytes) => window.h.deliver({ type: "frame", game_id: "g2", tick: 1, key: true,
                                        image: new Uint8Array(bytes) })""",
        list(left_blue),
    )
    poll(lambda: game(page)["frames"] == 1, page, "the frame")
    page.wait_for_timeout(200)
    box = stage_box(page)
    scale = box["width"] / 300

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * scale, box["y"] + y * scale

    # Image drawn 225x150 at x 37.5..262.5.
    got = sample(page, [at(60, 75), at(240, 75), at(15, 75), at(285, 75)])
    black = (0, 0, 0)
    assert near(got[0], BLUE) and near(got[1], YELLOW) and near(got[2], black) and near(got[3], black), got
    shots(page, "01-rgb-array")

    # Frames that arrive while one is decoding: only the newest waiting one is drawn.
    right_blue = png(60, 40, lambda x, y: YELLOW if x < 30 else BLUE)
    page.evaluate(
        """([a, b]) => {
        for (let i = 0; i < 9; i++) {
          const image = new Uint8Array(i === 8 ? b : a);
          window.h.deliver({ type: "frame", game_id: "g2", tick: 2 + i, image });
        }
    }""",
        [list(left_blue), list(right_blue)],
    )
    poll(lambda: game(page)["frames"] == 10, page, "the burst")
    assert game(page)["dropped_images"] == 7
    page.wait_for_timeout(300)
    got = sample(page, [at(60, 75), at(240, 75)])
    assert near(got[0], YELLOW) and near(got[1], BLUE), got

    page.evaluate("() => window.h.renderer.destroy()")
    assert page.evaluate("() => window.h.handlers()") == 0
    poll(lambda: canvases(page) == 0, page, "the canvas to go")
    assert_clean(page)


# ---- multiplayer: waiting room, notices, players, final messages, round-trip probes ----------

WAITING_MESSAGE = "Waiting for other participants to join. Please keep this page open."
PLAIN = {"assets": [], "header_html": "", "footer_html": ""}


def status(page: Page, **fields: Any) -> None:
    """Deliver a game_status (defaults: game g1, playing, episode 1 of 3, seat "left")."""
    msg = {
        "type": "game_status",
        "game_id": "g1",
        "phase": "playing",
        "episode": 1,
        "num_episodes": 3,
        "seat": "left",
        "message": "",
        "countdown_ms": 0,
        **fields,
    }
    page.evaluate("(m) => window.h.deliver(m)", msg)


def matching(page: Page, count: int | None, waited_ms: int, group_size: int = 2) -> None:
    status(
        page,
        game_id=None,
        phase="matching",
        seat=None,
        message=WAITING_MESSAGE,
        waiting={"count": count, "group_size": group_size, "waited_ms": waited_ms, "timeout_ms": 300_000},
    )


def sent_of(page: Page, kind: str) -> list[dict[str, Any]]:
    return [m for m in page.evaluate("() => window.h.sent") if m["type"] == kind]


def test_waiting_room_shows_the_count_and_a_local_clock_then_readies_each_new_game(
    page: Page, shots: Any
) -> None:
    page.evaluate(MOUNT, {**SCENE, **PLAIN})
    poll(lambda: game(page)["view"] == "ready", page, "the view")
    matching(page, count=1, waited_ms=5_000)
    overlay = page.locator("#root .igym-game-overlay")
    count = overlay.locator(".igym-game-waiting-count")
    clock = overlay.locator(".igym-game-waiting-clock")
    assert overlay.get_attribute("data-variant") == "matching"
    assert overlay.locator(".igym-game-overlay-title").inner_text() == WAITING_MESSAGE
    assert count.inner_text() == "1 of 2 participants here"
    assert clock.inner_text() == "Time waited: 0:05"
    # The message and the count are a polite status region; the ticking clock is outside it.
    live = page.get_by_role("status").filter(has_text="1 of 2 participants here")
    assert live.count() == 1 and live.get_attribute("aria-live") == "polite"
    assert live.inner_text().startswith(WAITING_MESSAGE)
    assert clock.evaluate("el => el.closest('[aria-live], [role=status]')") is None
    assert root_text(page, ".igym-game-episode") == ""  # no "Episode 1 of 3" in the waiting room
    g = game(page)
    assert g["phase"] == "matching" and g["game_id"] is None and g["seat"] is None
    assert g["waiting"] == {"count": 1, "group_size": 2, "waited_ms": 5000, "timeout_ms": 300000}
    assert g["message"] == WAITING_MESSAGE

    # The clock counts on locally: two seconds later it says 0:07, with no message either way.
    poll(lambda: clock.inner_text() == "Time waited: 0:07", page, "the clock at 0:07", timeout_s=4)
    assert page.evaluate("() => window.h.sent") == []
    page.keyboard.down("ArrowRight")  # no game yet: nothing is sent
    page.wait_for_timeout(100)
    page.keyboard.up("ArrowRight")
    assert page.evaluate("() => window.h.sent") == []
    shots(page, "00-waiting-room")

    # A count update restarts the clock from the server's waited_ms; a hidden count says only the size.
    matching(page, count=None, waited_ms=65_000, group_size=3)
    assert count.inner_text() == "Waiting for a group of 3"
    assert "of 3 participants" not in overlay.inner_text()
    assert clock.inner_text() == "Time waited: 1:05"
    assert game(page)["waiting"]["count"] is None
    shots(page, "01-waiting-room-no-count")

    # Matched: a game id arrives; game_ready is sent for it, and the waiting room goes away.
    status(
        page,
        game_id="g7",
        phase="waiting",
        players=[
            {"seat": "left", "you": True, "status": "connected"},
            {"seat": "right", "you": False, "status": "connected"},
        ],
    )
    assert sent_of(page, "game_ready") == [{"type": "game_ready", "game_id": "g7"}]
    assert overlay_text(page) == ["Waiting for the game to start…", "Episode 1 of 3"]
    assert not clock.is_visible() and not count.is_visible()
    assert game(page)["waiting"] is None and game(page)["game_id"] == "g7"
    status(page, game_id="g7", phase="countdown", countdown_ms=1000)
    poll(lambda: not overlay.is_visible(), page, "the countdown to end")
    page.keyboard.down("ArrowLeft")
    poll(lambda: len(sent_of(page, "input")) == 1, page, "the input")
    page.keyboard.up("ArrowLeft")
    poll(lambda: len(sent_of(page, "input")) == 2, page, "the release")

    # Back to the waiting room (say, the group fell apart before the game started) and matched
    # again: a new game id, so a new game_ready, and nothing of the old game is kept.
    page.evaluate(
        """() => window.h.deliver({ type: "frame", game_id: "g7", tick: 0, key: true,
                                   add: [{ id: "dot", object_type: "circle", x: 50, y: 50, radius: 9 }] })"""
    )
    assert game(page)["objects"] == 1
    matching(page, count=1, waited_ms=0)
    assert game(page)["game_id"] is None and game(page)["objects"] == 0 and game(page)["players"] is None
    assert clock.inner_text() == "Time waited: 0:00"
    status(page, game_id="g8", phase="waiting")
    assert sent_of(page, "game_ready") == [
        {"type": "game_ready", "game_id": "g7"},
        {"type": "game_ready", "game_id": "g8"},
    ]
    assert game(page)["ready_sent"] == 2

    page.evaluate("() => window.h.renderer.destroy()")
    assert page.evaluate("() => window.h.handlers()") == 0
    assert_clean(page)


def test_game_ready_for_a_game_matched_before_the_view_loaded(page: Page) -> None:
    page.evaluate(MOUNT, {**SCENE, **PLAIN})
    matching(page, count=1, waited_ms=0)
    status(page, game_id="g3", phase="waiting")
    # Sent as soon as the view is ready, exactly once.
    poll(lambda: sent_of(page, "game_ready") == [{"type": "game_ready", "game_id": "g3"}], page, "game_ready")
    page.wait_for_timeout(100)
    assert len(sent_of(page, "game_ready")) == 1
    page.evaluate("() => window.h.renderer.destroy()")
    assert_clean(page)


def root_text(page: Page, selector: str) -> str:
    return page.locator(f"#root {selector}").evaluate("el => el.hidden ? '' : el.innerText")


def test_notice_banner_players_line_and_rtt_echoes_for_the_current_game_only(page: Page, shots: Any) -> None:
    page.evaluate(MOUNT, {**SCENE, **PLAIN})
    poll(lambda: game(page)["view"] == "ready", page, "the view")
    # Probes before any game, or for another game, are not answered.
    page.evaluate("""() => window.h.deliver({ type: "rtt_probe", game_id: "g1", n: 1, t: 1.5 })""")
    matching(page, count=1, waited_ms=0)
    page.evaluate("""() => window.h.deliver({ type: "rtt_probe", game_id: "g1", n: 2, t: 1.5 })""")
    assert sent_of(page, "rtt_echo") == []

    players = [
        {"seat": "left", "you": True, "status": "connected"},
        {"seat": "right", "you": False, "status": "connected"},
    ]
    status(page, players=players)
    page.evaluate(
        """() => window.h.deliver({ type: "frame", game_id: "g1", tick: 0, key: true, add: [
            { id: "left", object_type: "circle", x: 120, y: 160, radius: 20, fill: "#38bdf8" },
            { id: "right", object_type: "circle", x: 360, y: 160, radius: 20, fill: "#f97316" } ] })"""
    )
    assert root_text(page, ".igym-game-players") == "You: left · Partner: right (connected)"
    assert root_text(page, ".igym-game-episode") == "Episode 1 of 3"
    notice = page.locator("#root .igym-game-notice")
    assert not notice.is_visible() and game(page)["notice"] == ""

    # Answered at once (in the same task as the probe), only for the current game, integers only.
    echoes = page.evaluate(
        """() => {
        const before = window.h.sent.length;
        window.h.deliver({ type: "rtt_probe", game_id: "g1", n: 7, t: 123.25 });
        const immediate = window.h.sent.slice(before);
        // The main thread stays busy for 300 ms (no timer runs): the page can tell it waited.
        const until = performance.now() + 300;
        while (performance.now() < until) {}
        window.h.deliver({ type: "rtt_probe", game_id: "other", n: 8, t: 1 },
                         { type: "rtt_probe", game_id: "g1", n: 1.5, t: 1 },
                         { type: "rtt_probe", game_id: "g1", t: 1 },
                         { type: "rtt_probe", game_id: "g1", n: 9, t: 2 });
        return immediate;
    }"""
    )
    # page_delay_ms: a probe's lag (page clock minus the server's `t`) above the game's smallest lag so
    # far. The first probe sets the smallest (0); n 9 was sent 121.25 ms "earlier" by the server's
    # clock than n 7 and read later, so it waited at least 121.25 ms in the page; the page can claim
    # that wait because its main thread was busy (no timer ran) for 300 ms before it (a probe late to
    # a free page is the network's: tests/e2e/test_page_delay_browser.py).
    assert echoes == [{"type": "rtt_echo", "game_id": "g1", "n": 7, "page_delay_ms": 0}]
    sent = sent_of(page, "rtt_echo")
    assert [{k: v for k, v in e.items() if k != "page_delay_ms"} for e in sent] == [
        {"type": "rtt_echo", "game_id": "g1", "n": 7},
        {"type": "rtt_echo", "game_id": "g1", "n": 9},
    ]
    assert 121.25 <= sent[1]["page_delay_ms"] < 121.25 + 1000
    assert game(page)["rtt_echoes"] == 2

    # A partner's connection drops: a banner above the canvas, and their status in the players line.
    dropped = "Your partner's connection dropped; waiting for them to come back…"
    away = [players[0], {**players[1], "status": "away"}]
    status(page, notice=dropped, players=away)
    assert notice.is_visible() and notice.inner_text() == dropped
    assert page.get_by_role("status").filter(has_text=dropped).get_attribute("aria-live") == "polite"
    banner, stage = notice.bounding_box(), stage_box(page)
    assert banner is not None and banner["y"] + banner["height"] <= stage["y"]
    assert root_text(page, ".igym-game-players") == "You: left · Partner: right (connection lost)"
    assert game(page)["notice"] == dropped and game(page)["players"] == away
    shots(page, "00-notice")

    # Status updates without `players` keep the line; without `notice` the banner goes.
    status(page)
    assert not notice.is_visible() and game(page)["notice"] == ""
    assert root_text(page, ".igym-game-players") == "You: left · Partner: right (connection lost)"
    bot = [players[0], {**players[1], "status": "bot"}]
    took = "Your partner has left the game. A computer player has taken their seat."
    status(page, notice=took, players=bot)
    assert notice.inner_text() == took
    assert root_text(page, ".igym-game-players") == "You: left · Partner: right (computer player)"
    shots(page, "01-bot-notice")
    status(page, notice="", players=players)
    assert not notice.is_visible()
    assert overlay_text(page) == [] and game(page)["phase"] == "playing"

    # The pure helpers: odd inputs are tolerated.
    r = page.evaluate(
        """() => {
        const T = window.igymTest;
        return {
          clocks: [0, 999, 1000, 59_999, 60_000, 605_000, 3_600_000, -5, NaN].map(T.formatClock),
          counts: [T.waitingCountText(T.parseWaiting({ count: 3, group_size: 4 })),
                   T.waitingCountText(T.parseWaiting({ count: 1 })),
                   T.waitingCountText(T.parseWaiting({ count: null, group_size: 0 })),
                   T.waitingCountText(null), T.parseWaiting("x")],
          players: T.playersText(T.parsePlayers([{ seat: 1, status: "bot" }, { seat: 0, you: true },
                                                 { seat: 2, status: "weird" }, { you: true }, null])),
        };
    }"""
    )
    assert r["clocks"] == ["0:00", "0:00", "0:01", "0:59", "1:00", "10:05", "60:00", "0:00", "0:00"]
    assert r["counts"] == ["3 of 4 participants here", "1 participant here", "", "", None]
    assert r["players"] == "You: 0 · Partner 1: 1 (computer player) · Partner 2: 2 (connected)"
    assert_clean(page)


FINAL_MESSAGE = (
    "No other participant joined in time, so this part of the study cannot go ahead. "
    "Thank you for waiting; you may close this page."
)
PROLIFIC = "https://app.prolific.com/submissions/complete?cc=NOPARTNER&pid=abc"


def test_a_final_message_stays_and_a_redirect_is_followed(page: Page, shots: Any) -> None:
    page.evaluate(MOUNT, {**SCENE, **PLAIN})
    matching(page, count=1, waited_ms=290_000)
    status(page, game_id=None, phase="ended", final=True, message=FINAL_MESSAGE, seat=None)
    overlay = page.locator("#root .igym-game-overlay")
    assert overlay.get_attribute("data-variant") == "final"
    assert overlay_text(page) == [FINAL_MESSAGE]
    assert page.get_by_role("status").filter(has_text=FINAL_MESSAGE).count() == 1
    g = game(page)
    assert g["final"] is True and g["phase"] == "ended" and g["redirect_url"] is None and g["waiting"] is None
    # No spinner, no clock, no "Game over", no episode line; and it stays.
    page.wait_for_timeout(1500)
    assert overlay_text(page) == [FINAL_MESSAGE]
    assert page.locator("#root .igym-spinner, #root .igym-game-waiting-dots:visible").count() == 0
    assert not page.locator("#root .igym-game-waiting-clock").is_visible()
    assert root_text(page, ".igym-game-episode") == ""
    poll(lambda: game(page)["view"] == "ready", page, "the view")
    assert page.evaluate("() => window.h.sent") == []  # no game_ready for a finished participant
    shots(page, "00-final")
    page.evaluate("() => { window.h.renderer.destroy(); document.getElementById('root').replaceChildren(); }")

    # After a reload the server sends it again, now with a redirect: the page goes there. A URL
    # that is not http(s) is ignored.
    page.evaluate(MOUNT, {**SCENE, **PLAIN})
    status(
        page,
        game_id=None,
        phase="ended",
        final=True,
        message=FINAL_MESSAGE,
        seat=None,
        redirect_url="javascript:alert(1)",
    )
    assert game(page)["redirect_url"] is None
    errors = [t for k, t in page.console if k == "error" and "not an http(s) URL" in t]  # type: ignore[attr-defined]
    assert len(errors) == 1

    requested: list[str] = []

    def platform(route: Any) -> None:
        requested.append(route.request.url)
        body = "<!doctype html><title>Prolific</title><p>ok</p>"
        route.fulfill(status=200, content_type="text/html", body=body)

    page.route("https://app.prolific.com/**", platform)
    status(
        page,
        game_id=None,
        phase="ended",
        final=True,
        message=FINAL_MESSAGE,
        seat=None,
        redirect_url=PROLIFIC,
        redirect_delay_ms=800,
    )
    assert game(page)["redirect_url"] == PROLIFIC
    note = page.locator("#root .igym-game-redirect")
    assert note.is_visible() and "Returning you to the study platform" in note.inner_text()
    assert note.get_by_role("link", name="continue to the study platform").get_attribute("href") == PROLIFIC
    shots(page, "01-final-redirect")
    page.wait_for_url(PROLIFIC, timeout=5000)
    assert page.url == PROLIFIC and requested == [PROLIFIC]
    assert page.title() == "Prolific"


# ---- the real build -----------------------------------------------------------------------------


def test_built_client_keeps_phaser_in_a_chunk_that_loads_under_the_page_csp(client_page: Page) -> None:
    igym_js = (CLIENT_DIR / "igym.js").read_text()
    assert len(igym_js) < 150_000
    assert not re.search(r'(^|;)import[^(]*from"', igym_js)  # no static import of a chunk
    (chunk,) = re.findall(r'import\("\./(chunks/view-[A-Z0-9]+\.js)"\)', igym_js)
    assert (CLIENT_DIR / chunk).stat().st_size > 1_000_000
    assert page_csp_violations_after_loading(client_page, f"/client/{chunk}") == {
        "exports": True,
        "renderer": "webgl",
        "violations": [],
    }
    assert client_page.errors == []  # type: ignore[attr-defined]


def page_csp_violations_after_loading(page: Page, url: str) -> dict[str, Any]:
    return page.evaluate(
        """async (url) => {
        const violations = [];
        document.addEventListener("securitypolicyviolation", (e) => violations.push(e.violatedDirective));
        const m = await import(url);
        const parent = document.createElement("div");
        document.body.append(parent);
        const view = await m.createGameView({ parent, width: 64, height: 48, background: "#336699",
                                               assets: [], fps: 30, interpolate: true });
        view.reset([{ id: "r", object_type: "rect", x: 32, y: 24, width: 10, height: 10 }]);
        await new Promise((r) => setTimeout(r, 100));
        const renderer = view.rendererType;
        view.destroy();
        parent.remove();
        return { exports: typeof m.createGameView === "function", renderer, violations };
    }""",
        url,
    )
