"""The rollback engine runs unchanged in Pyodide (headless Chromium) and confirms exactly the frames it
confirms under CPython.

The same script plays two real ``P2PBrowserGame`` peers of Slime Volleyball over the seeded simulated
link (60 ms one way, jitter, loss, duplication, reordering: many rollbacks) once in Pyodide, from a
bundle laid out as the browser build (the lean igym_core modules, ``igym_pyodide_p2p.browser``, the
slime env, attrs, plus ``netsim`` and the test envs), and once here. Both must give the same confirmed
steps, state hashes, rollback counts and final state. Only loopback URLs exist for the page: every
request is answered by a Playwright route.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import igym_pyodide_p2p.netsim
from igym_core.testing.support import in_chromium

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from browser_support import PYODIDE, browser_bundle  # noqa: E402

ORIGIN = "http://127.0.0.1:9"
SITE = "/lib/python3.14/site-packages"

SCRIPT = """
import json
from p2p_support import Match, canonical, peers
from igym_pyodide_p2p.netsim import FaultyLink

a, b = peers("slime", max_steps=150, input_delay=1, window=8, hash_every=10)
faults = dict(delay_ms=60, jitter_ms=25, loss=0.05, duplicate=0.05)
links = [FaultyLink(seed=s, **faults) for s in (7, 8)]
match = Match(a, b, link_a=links[0], link_b=links[1], keys_seed=3, key_period_ms=90, b_start_ms=40)
match.start(1, 2024)
match.play_episode(limit_ms=60_000)
for name, game in match.games.items():
    batch = game.take_batch()
    if batch is not None:
        match.batches[name].append(batch)
result = json.dumps({
    "steps": {n: [canonical(s) for s in match.steps(n)] for n in ("a", "b")},
    "p2p": {n: [s["p2p"] for s in match.steps(n)] for n in ("a", "b")},
    "hashes": {n: match.hashes(n) for n in ("a", "b")},
    "stats": {n: dict(g.stats, depth_histogram=None) for n, g in match.games.items()},
    "final": a.env.state_hash(),
    "done": [a.engine.done, b.engine.done],
}, sort_keys=True)
"""

LOAD = """
async ({ origin, site, script }) => {
  const { loadPyodide } = await import(`${origin}/pyodide/pyodide.mjs`);
  const pyodide = await loadPyodide({ indexURL: `${origin}/pyodide/` });
  const bundle = await (await fetch(`${origin}/bundle.zip`)).arrayBuffer();
  pyodide.unpackArchive(bundle, "zip", { extractDir: site });
  pyodide.runPython(script);
  return pyodide.globals.get("result");
}
"""


def _in_pyodide(bundle: bytes) -> dict[str, Any]:
    files = {f"/pyodide/{p.name}": p for p in PYODIDE.iterdir() if p.is_file()}
    types = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm"}

    def route(route: Any) -> None:
        path = route.request.url.removeprefix(ORIGIN).split("?")[0]
        if path == "/index.html":
            route.fulfill(status=200, body="<!doctype html><title>p2p</title>", content_type="text/html")
        elif path == "/bundle.zip":
            route.fulfill(status=200, body=bundle, content_type="application/zip")
        elif path in files:
            suffix = files[path].suffix
            route.fulfill(
                status=200,
                body=files[path].read_bytes(),
                content_type=types.get(suffix, "application/octet-stream"),
            )
        else:
            route.abort()

    def work(browser: Any) -> str:
        context = browser.new_context()
        page = context.new_page()
        page.route("**/*", route)
        page.goto(f"{ORIGIN}/index.html")
        return page.evaluate(LOAD, {"origin": ORIGIN, "site": SITE, "script": SCRIPT})

    return json.loads(in_chromium(work, timeout_s=240))


def test_two_peers_in_pyodide_confirm_what_they_confirm_under_cpython() -> None:
    bundle = browser_bundle(
        {
            "igym_pyodide_p2p/netsim.py": Path(igym_pyodide_p2p.netsim.__file__),
            "p2p_support.py": HERE / "p2p_support.py",
        }
    )
    namespace: dict[str, Any] = {}
    exec(SCRIPT, namespace)  # the same script under CPython
    here = json.loads(namespace["result"])
    there = _in_pyodide(bundle)
    assert here["done"] == [True, True]
    assert here["stats"]["a"]["rollbacks"] > 10  # the schedule makes the peers roll back often
    assert there == here
