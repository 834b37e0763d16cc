"""The pyodide runtime's stepping code in headless Chromium (Pyodide) against CPython.

    uv run --frozen python bench/pyodide_step.py --steps 3000

Slime Volleyball, the participant's seat with changing held keys and a random bot: the whole
browser step (``BrowserGame.step``: keys to actions, the bot, ``env.step``, the step record, the
render objects and their delta) and ``env.step`` alone, per step, after a warm-up of ``--warmup``
steps (V8 optimises Pyodide's interpreter loop during the first seconds), in a Web Worker as the
runtime runs it and under this CPython. Also the load times the worker reports (runtime, packages,
env) on a cold browser profile and again from its HTTP cache (warm).

Pyodide comes from ``plugins/igym_pyodide_p2p/frontend/node_modules/pyodide`` (npm), the browser's
Python from the stand-in bundle of the plugin's tests; a small loopback HTTP server serves them
with long-lived cache headers. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugins" / "igym_pyodide_p2p"
sys.path.insert(0, str(PLUGIN / "tests"))

from browser_support import PYODIDE, browser_bundle  # noqa: E402

from igym_core.testing.support import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

SPEC: dict[str, Any] = {
    "scene_id": "bench",
    "env_factory": "igym_slime.env:make_env",
    "env_kwargs": {"lives": 5, "max_steps": 3000},
    "render_fn": "igym_slime.render:draw",
    "hud": None,
    "agents": ["left", "right"],
    "human_seat": "left",
    "action_mapping": {"ArrowLeft": 1, "ArrowRight": 2, "ArrowUp": 3, "ArrowUp+ArrowLeft": 4},
    "default_action": 0,
    "input_mode": "held",
    "fps": 30,
    "num_episodes": 1,
    "max_steps": None,
    "bots": {"right": {"kind": "random", "n": 6, "start": 0}},
    "action_spaces": {"left": [6, 0], "right": [6, 0]},
}
KEYS = [["ArrowLeft"], [], ["ArrowRight"], ["ArrowUp", "ArrowLeft"], ["ArrowUp"]]

#: Runs in the worker: both measurements, in Python (the clock is time.perf_counter in both).
MEASURE = """
import json, time
from igym_pyodide_p2p.browser.spec import GameSpec
from igym_pyodide_p2p.browser.stepper import BrowserGame

def play(game, steps, keys):
    # Steps with changing keys; a batch every 15 steps; a new episode when one ends.
    for i in range(steps):
        game.set_held(keys[(i // 30) % len(keys)])
        if game.step(0.0)["done"]:
            game.take_batch()
            game.start_episode(game.episode + 1, game.episode + 7)
        elif i % 15 == 0:
            game.take_batch()


def measure(spec_json, steps, warmup, keys_json):
    keys = json.loads(keys_json)
    game = BrowserGame(GameSpec.from_json(json.loads(spec_json)), game_id="bench")
    game.start_episode(1, 7)
    play(game, warmup, keys)
    started = time.perf_counter()
    play(game, steps, keys)
    full = (time.perf_counter() - started) / steps
    env = game.env
    actions = {"left": 1, "right": 2}
    bare = 0.0
    done = steps
    while done > 0:
        env.reset(seed=done)
        n = min(done, 500)
        started = time.perf_counter()
        for _ in range(n):
            env.step(actions)
        bare += time.perf_counter() - started
        done -= n
    bare /= steps
    return json.dumps({"step_us": full * 1e6, "env_step_us": bare * 1e6})
"""

WORKER = """
self.onmessage = async (event) => {
  const { indexUrl, bundleUrl, code, spec, steps, warmup, keys } = event.data;
  const t0 = performance.now();
  const { loadPyodide } = await import(indexUrl + "pyodide.mjs");
  const pyodide = await loadPyodide({ indexURL: indexUrl });
  const t1 = performance.now();
  const bytes = new Uint8Array(await (await fetch(bundleUrl)).arrayBuffer());
  pyodide.unpackArchive(bytes, "zip", { extractDir: "/lib/python3.14/site-packages" });
  const t2 = performance.now();
  pyodide.runPython(code);
  const measure = pyodide.globals.get("measure");
  const t3 = performance.now();
  const result = JSON.parse(measure(spec, steps, warmup, keys));
  self.postMessage({ ...result, runtime_ms: t1 - t0, packages_ms: t2 - t1, env_ms: t3 - t2 });
};
"""

PAGE = """<!doctype html><meta charset="utf-8"><title>bench</title>
<script type="module">
window.run = (args) => new Promise((resolve, reject) => {
  const worker = new Worker("/worker.js", { type: "module" });
  worker.onmessage = (e) => resolve(e.data);
  worker.onerror = (e) => reject(new Error(e.message));
  worker.postMessage(args);
});
</script>"""


def cpython(steps: int, warmup: int) -> dict[str, float]:
    namespace: dict[str, Any] = {}
    exec(MEASURE, namespace)
    return json.loads(namespace["measure"](json.dumps(SPEC), steps, warmup, json.dumps(KEYS)))


def serve(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    class Handler(SimpleHTTPRequestHandler):
        extensions_map = {
            **SimpleHTTPRequestHandler.extensions_map,
            ".mjs": "text/javascript",
            ".wasm": "application/wasm",
        }

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def end_headers(self) -> None:
            self.send_header("Cache-Control", "public, max-age=31536000, immutable")
            super().end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def browser(url: str, steps: int, warmup: int, profile: Path) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    args = {
        "indexUrl": f"{url}/pyodide/",
        "bundleUrl": f"{url}/bundle.zip",
        "code": MEASURE,
        "spec": json.dumps(SPEC),
        "steps": steps,
        "warmup": warmup,
        "keys": json.dumps(KEYS),
    }
    runs = []
    with sync_playwright() as playwright:
        # A persistent profile: the second run loads from the HTTP cache (incognito contexts do not
        # keep Pyodide's 9.6 MB wasm).
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            for _ in range(2):
                page = context.new_page()
                page.goto(f"{url}/index.html")
                runs.append(page.evaluate("(args) => window.run(args)", args))
                page.close()
        finally:
            context.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=3000)
    options = parser.parse_args()
    if not (PYODIDE / "pyodide.asm.wasm").is_file():
        sys.exit(f"Pyodide is not installed at {PYODIDE}: run `npm install` in {PYODIDE.parents[1]}.")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "site"
        shutil.copytree(PYODIDE, folder / "pyodide")
        (folder / "bundle.zip").write_bytes(browser_bundle())
        (folder / "worker.js").write_text(WORKER)
        (folder / "index.html").write_text(PAGE)
        server, url = serve(folder)
        try:
            cold, warm = browser(url, options.steps, options.warmup, Path(tmp) / "profile")
        finally:
            server.shutdown()
    here = [cpython(options.steps, options.warmup) for _ in range(3)]
    native = {k: statistics.median(r[k] for r in here) for k in ("step_us", "env_step_us")}
    pyodide = {k: min(cold[k], warm[k]) for k in ("step_us", "env_step_us")}
    print(f"{'':24}{'Pyodide':>10}{'CPython':>10}{'ratio':>8}")
    for key, label in (("step_us", "browser step (us)"), ("env_step_us", "env.step alone (us)")):
        print(f"{label:24}{pyodide[key]:>10.1f}{native[key]:>10.1f}{pyodide[key] / native[key]:>8.2f}")
    for name, run in (("cold", cold), ("warm", warm)):
        print(
            f"load {name}: runtime {run['runtime_ms']:.0f} ms, packages {run['packages_ms']:.0f} ms, "
            f"env {run['env_ms']:.0f} ms"
        )
    print(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "steps": options.steps,
                "pyodide": pyodide,
                "cpython": native,
                "ratio_step": round(pyodide["step_us"] / native["step_us"], 2),
                "ratio_env_step": round(pyodide["env_step_us"] / native["env_step_us"], 2),
                "load_cold_ms": {k: round(cold[k]) for k in ("runtime_ms", "packages_ms", "env_ms")},
                "load_warm_ms": {k: round(warm[k]) for k in ("runtime_ms", "packages_ms", "env_ms")},
            }
        )
    )


if __name__ == "__main__":
    main()
