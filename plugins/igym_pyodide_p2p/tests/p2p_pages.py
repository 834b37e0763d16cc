"""Two Chromium pages playing P2P Slime Volleyball (``runtime="pyodide_p2p"``) against a real
``igym run``: what the P2P browser tests and ``bench/p2p_browser.py`` share.

:func:`play_pair` opens two participants' pages (separate browser contexts) on the study of
``studies/slime_p2p.py``, lets the waiting room match them (the first page plays the left seat),
holds keys on each page and checks that the other page's picture follows them, samples both pages'
P2P state while the episode plays (route, fps, rollbacks, events), takes screenshots, and waits for
the next scene. With ``close_after_s`` the second page closes mid-game.

Run as a script (``python p2p_pages.py STUDY DATA_DIR OUT_JSON [--media] [--bench] [--faults JSON]``)
it does the same with its own server and Chromium, for a test or bench that runs it inside a network
namespace (``unshare -n``), where WebRTC between two pages has candidates.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from browser_support import Standin  # noqa: E402

from igym_core.testing import LiveServer, poll  # noqa: E402

SCENE = "slime_p2p"
#: Chromium may make WebRTC candidates on loopback (with camera and microphone permission): what a
#: network namespace with only ``lo`` needs.
LOOPBACK_WEBRTC_ARGS = ("--allow-loopback-in-peer-connection",)


def study(name: str) -> str:
    return f"{HERE / 'studies' / 'slime_p2p_pages.py'}:{name}"


def _state(page: Any) -> dict[str, Any]:
    return page.evaluate("() => (window.igym && window.igym.state) || {}")


def _game(page: Any) -> dict[str, Any]:
    return _state(page).get("game") or {}


def _p2p(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => { const g = window.igym && window.igym.state && window.igym.state.game;
                   const p = g && g.pyodide;
                   return g && g.p2p ? {...g.p2p, frames: p ? p.frames : 0, phase: g.phase,
                                        episode: p ? p.episode : 0, notice: g.notice,
                                        unacked: p ? p.unacked : 0} : null; }"""
    )


def _wait(pages: list[Any], check: Callable[[], Any], what: str, timeout_s: float) -> Any:
    def states() -> str:
        return f"game states: {[_game(p) for p in pages if not p.is_closed()]}"

    return poll(check, pages[0], what, timeout_s, interval_ms=100, detail=states)


def _object_x(page: Any, object_id: str) -> float | None:
    x = page.evaluate(
        "(id) => { const o = window.igym.gameObjects()[id]; return o ? o.x : null; }", object_id
    )
    return None if x is None else float(x)


def _follows(pages: list[Any], presser: Any, watcher: Any, key: str, object_id: str, sign: int) -> bool:
    """Hold ``key`` on ``presser``'s page until ``watcher``'s page shows ``object_id`` moving
    (``sign``: +1 right, -1 left) by 20 px; whether it did within 5 s."""
    start = _object_x(watcher, object_id)
    if start is None:
        return False
    presser.locator(".igym-game-stage").first.click()
    presser.keyboard.down(key)
    try:
        _wait(
            pages,
            lambda: ((_object_x(watcher, object_id) or start) - start) * sign > 20,
            f"{object_id} moving on the partner's page",
            5,
        )
        return True
    except AssertionError:
        return False
    finally:
        presser.keyboard.up(key)


def play_pair(
    browser: Any,
    url: str,
    standin: Standin,
    *,
    faults: tuple[dict[str, Any] | None, dict[str, Any] | None] = (None, None),
    close_after_s: float | None = None,
    screenshots: Path | None = None,
    media: bool = False,
    load_timeout_s: float = 180,
    bench: bool = False,
    reload_after_s: float | None = None,
    page_relay: bool = False,
) -> dict[str, Any]:
    """Two participants play the study's P2P game (see the module docstring); what the pages showed.
    ``faults``: each page's ``window.__igymP2PFaults``; ``media``: grant camera and microphone (WebRTC
    on loopback); ``bench``: the workers time their rollbacks; ``reload_after_s``: the second page
    reloads then. Returns
    ``{"pages": [{p2p samples' last, errors, console, moved}], "screenshots": [...], ...}``."""
    contexts, pages, errors, consoles = [], [], [[], []], [[], []]
    for index in range(2):
        context = browser.new_context(viewport={"width": 860, "height": 660})
        if media:
            context.grant_permissions(["camera", "microphone"])
        context.route("**/*", standin.route)
        if faults[index]:
            context.add_init_script(f"window.__igymP2PFaults = {json.dumps(faults[index])};")
        if bench:
            context.add_init_script("window.__igymP2PBench = true;")
        if page_relay:  # benches only: relay through the page's socket, as before the worker's own
            context.add_init_script("window.__igymP2PPageRelay = true;")
        page = context.new_page()
        page.on("pageerror", lambda exc, i=index: errors[i].append(str(exc)))
        page.on("console", lambda m, i=index: consoles[i].append(f"{m.type}: {m.text}"))
        contexts.append(context)
        pages.append(page)
    first, second = pages
    first.goto(f"{url}/?PROLIFIC_PID=p2p_left")
    _wait(
        pages,
        lambda: _state(first).get("scene_id") == SCENE and _game(first).get("phase"),
        "page 1 waiting",
        60,
    )
    second.goto(f"{url}/?PROLIFIC_PID=p2p_right")
    _wait(
        pages,
        lambda: all(_game(p).get("phase") == "playing" for p in pages),
        "both pages playing",
        load_timeout_s,
    )
    started = time.monotonic()
    # Each participant's keys move their slime on the partner's screen.
    moved = {
        "left_on_right_page": _follows(pages, first, second, "ArrowRight", "left_slime", +1),
        "right_on_left_page": _follows(pages, second, first, "ArrowLeft", "right_slime", -1),
    }
    shots: list[str] = []
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
        for index, page in enumerate(pages):
            path = screenshots / f"page-{index + 1}-playing.png"
            page.screenshot(path=str(path))
            shots.append(str(path))
    samples: list[list[dict[str, Any]]] = [[], []]
    closed_at = None
    reloaded_at = None
    # Both play on (a few key presses) until the game scene is over.
    # Each participant changes the keys they hold about four times a second (a seeded pattern of
    # moves and jumps), as people do: the partner's engine mispredicts and rolls back.
    pattern = random.Random(7)
    choices = ((), ("ArrowLeft",), ("ArrowRight",), ("ArrowUp",), ("ArrowUp", "ArrowLeft"))
    held: list[tuple[str, ...]] = [(), ()]
    while True:
        live = [p for p in pages if not p.is_closed()]
        if all(_state(p).get("scene_id") != SCENE for p in live):
            break
        if time.monotonic() - started > 120:
            raise AssertionError(f"the game did not end within 120 s; {[_game(p) for p in live]}")
        for index, page in enumerate(pages):
            if page.is_closed():
                continue
            sample = _p2p(page)
            if sample is not None and _state(page).get("scene_id") == SCENE:
                sample["t"] = time.monotonic() - started
                samples[index].append(sample)
                keys = choices[pattern.randrange(len(choices))]
                for key in held[index]:
                    page.keyboard.up(key)
                for key in keys:
                    page.keyboard.down(key)
                held[index] = keys
        if close_after_s is not None and closed_at is None and time.monotonic() - started > close_after_s:
            closed_at = time.monotonic() - started
            contexts[1].close()
        if reload_after_s is not None and reloaded_at is None and time.monotonic() - started > reload_after_s:
            reloaded_at = time.monotonic() - started
            for key in held[1]:
                second.keyboard.up(key)
            held[1] = ()
            second.reload()
        first.wait_for_timeout(250)
    if screenshots is not None and not first.is_closed():
        path = screenshots / "page-1-after.png"
        first.screenshot(path=str(path))
        shots.append(str(path))
    result = {
        "pages": [
            {
                "last": samples[i][-1] if samples[i] else None,
                "samples": samples[i],
                "errors": errors[i],
                "console": consoles[i][-40:],
                "scene": None if pages[i].is_closed() else _state(pages[i]).get("scene_id"),
            }
            for i in range(2)
        ],
        "moved": moved,
        "screenshots": shots,
        "closed_at": closed_at,
        "reloaded_at": reloaded_at,
        "played_s": time.monotonic() - started,
        "blocked": list(standin.blocked),
    }
    for context in contexts:
        with contextlib.suppress(Exception):  # closed already
            context.close()
    return result


def launch(work: Callable[[Any], Any], extra_args: tuple[str, ...] = ()) -> Any:
    """``work(browser)`` with headless Debian Chromium and ``extra_args``, on a thread of its own."""
    from igym_core.testing.support import in_chromium

    return in_chromium(work, timeout_s=600, extra_args=extra_args)


def main(argv: list[str]) -> int:
    """``STUDY DATA_DIR OUT_JSON [--media] [--bench] [--faults JSON] [--close-after S] [--reload-after S]
    [--page-relay]`` (see the
    module docstring; ``--faults``: a JSON list of the two pages' fault settings); the result as JSON."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("study")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--media", action="store_true")
    parser.add_argument("--bench", action="store_true")
    parser.add_argument("--faults", default="[null, null]")
    parser.add_argument("--close-after", type=float, default=None)
    parser.add_argument("--page-relay", action="store_true")
    parser.add_argument("--reload-after", type=float, default=None)
    args = parser.parse_args(argv)
    faults = tuple(json.loads(args.faults))
    args.data_dir.mkdir(parents=True, exist_ok=True)
    with LiveServer(study(args.study), args.data_dir, plugins=["igym_pyodide_p2p.plugin"]) as server:
        url = server.url
        standin = Standin(url, (SCENE,))
        result = launch(
            lambda browser: play_pair(
                browser,
                url,
                standin,
                media=args.media,
                bench=args.bench,
                page_relay=args.page_relay,
                faults=(faults[0], faults[1]),
                close_after_s=args.close_after,
                reload_after_s=args.reload_after,
                screenshots=args.out.parent / "shots",
            ),
            LOOPBACK_WEBRTC_ARGS if args.media else (),
        )
    args.out.write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
