"""Loading a browser-run scene's Python in headless Chromium, as the runtime does (tests, bench).

:func:`load_scene_in_chromium` opens a page on a running igym server, reads the runtime's manifest,
loads Pyodide from igym, micropip, installs the scene's wheels by name from igym's package index,
imports the env factory and render function the manifest names, steps the env and renders it, and
reports how long each stage took and which files came from the network or from the HTTP cache. It
runs ``runs`` times in one persistent Chromium profile: the first load is cold, the others warm
(Playwright's incognito contexts, and any context with request routing, bypass the HTTP cache).

Only loopback is reachable: Chromium is told to use a proxy that does not exist for everything that
is not loopback (Chromium never proxies loopback), and every request's URL is returned so that a
test can check it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from igym_core.testing.support import CHROMIUM, CHROMIUM_ARGS
from igym_pyodide_p2p.netsim import FaultyLink, PeerPair

__all__ = ["LOAD_SCRIPT", "FaultyLink", "PeerPair", "igym_run", "load_scene_in_chromium"]

#: A proxy nobody listens on: every non-loopback request fails.
NO_NETWORK_ARGS = ("--proxy-server=http://127.0.0.1:9",)

#: Runs in the page (``page.evaluate``): the loader's stages, by hand.
LOAD_SCRIPT = """
async ({ sceneId, steps }) => {
  const now = () => performance.now();
  const manifest = await (await fetch("/plugins/pyodide_p2p/manifest.json")).json();
  const scene = manifest.scenes[sceneId];
  if (!scene) throw new Error(`no browser-run scene ${sceneId} in the manifest`);
  const t0 = now();
  const { loadPyodide } = await import(manifest.pyodide.module_url);
  const pyodide = await loadPyodide({ indexURL: manifest.pyodide.index_url });
  const t1 = now();
  await pyodide.loadPackage(manifest.micropip.url);
  const micropip = pyodide.pyimport("micropip");
  const t2 = now();
  const names = scene.wheels.map((wheel) => wheel.project);
  await micropip.install.callKwargs(names, {
    deps: false,
    index_urls: [location.origin + manifest.index_url],
  });
  const t3 = now();
  pyodide.globals.set("roles", pyodide.toPy(scene.imports));
  pyodide.globals.set("steps", steps);
  const result = pyodide.runPython(`
import importlib, json, sys, time

def load(spec):
    module, _, attribute = spec.partition(":")
    value = importlib.import_module(module)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value

started = time.perf_counter()
make_env = load(roles["env_factory"])
draw = load(roles["render_fn"])
env = make_env()
env.reset(seed=7)
agents = list(env.possible_agents)
rewards = {agent: 0.0 for agent in agents}
for step in range(steps):
    actions = {agent: (step // 10 + index) % 6 for index, agent in enumerate(agents)}
    _obs, reward, terminated, truncated, _infos = env.step(actions)
    for agent in agents:
        rewards[agent] += reward[agent]
    if any(terminated.values()) or any(truncated.values()):
        env.reset(seed=step)
from igym_core.rendering.delta import DeltaEncoder
objects = draw(env)
frame = DeltaEncoder().update_fields(objects)
env_ms = (time.perf_counter() - started) * 1000
import igym_core
json.dumps({
    "env_ms": env_ms,
    "objects": len(objects),
    "object_types": sorted({type(o).__name__ for o in objects}),
    "frame_keys": sorted(frame),
    "state_hash": env.state_hash() if hasattr(env, "state_hash") else None,
    "rewards": rewards,
    "igym_core_version": igym_core.__version__,
    "igym_core_file": igym_core.__file__,
    "env_module_file": sys.modules[make_env.__module__].__file__,
    "lives": getattr(env, "lives_per_episode", None),
    "server_stack_loaded": sorted(m for m in ("litestar", "msgpack", "structlog", "cattrs", "uvicorn")
                                  if m in sys.modules),
    "python": sys.version,
})
`);
  const t4 = now();
  const resources = performance.getEntriesByType("resource").map((entry) => ({
    url: entry.name,
    transferSize: entry.transferSize,
    encodedBodySize: entry.encodedBodySize,
  }));
  return {
    ...JSON.parse(result),
    runtime_ms: t1 - t0,
    micropip_ms: t2 - t1,
    packages_ms: t3 - t2,
    total_ms: t4 - t0,
    wheel_bytes: scene.bytes,
    pyodide_bytes: manifest.pyodide.bytes,
    resources,
  };
}
"""


def load_scene_in_chromium(
    base_url: str,
    scene_id: str,
    *,
    runs: int = 2,
    steps: int = 200,
    profile_dir: Path | None = None,
    timeout_s: float = 240.0,
) -> dict[str, Any]:
    """Load ``scene_id``'s browser runtime ``runs`` times in one Chromium profile (see the module).

    Returns ``{"runs": [result, ...], "requests": [url, ...], "console": [...], "errors": [...]}``.
    """
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing; `make test` installs it (apt-get install chromium).")
    outcome: dict[str, Any] = {}

    def run(profile: Path) -> None:
        from playwright.sync_api import sync_playwright

        requests: list[str] = []
        console: list[str] = []
        errors: list[str] = []
        results: list[dict[str, Any]] = []
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(profile),
                executable_path=CHROMIUM,
                args=[*CHROMIUM_ARGS, *NO_NETWORK_ARGS],
                headless=True,
            )
            try:
                context.on("request", lambda request: requests.append(request.url))
                for _ in range(runs):
                    page = context.new_page()
                    page.on("console", lambda message: console.append(message.text))
                    page.on("pageerror", lambda exc: errors.append(str(exc)))
                    page.goto(f"{base_url}/health")
                    page.set_default_timeout(timeout_s * 1000)
                    results.append(page.evaluate(LOAD_SCRIPT, {"sceneId": scene_id, "steps": steps}))
                    page.close()
            finally:
                context.close()
        outcome.update(runs=results, requests=requests, console=console, errors=errors)

    def guarded() -> None:
        try:
            if profile_dir is not None:
                run(profile_dir)
            else:
                with tempfile.TemporaryDirectory(prefix="igym-chromium-") as directory:
                    run(Path(directory))
        except BaseException as exc:
            outcome["error"] = exc

    # Playwright's sync API runs an event loop in the thread that starts it: a thread of its own.
    thread = threading.Thread(target=guarded, name="chromium-pyodide")
    thread.start()
    thread.join(timeout_s * (runs + 1))
    if thread.is_alive():
        raise TimeoutError(f"loading scene {scene_id!r} in Chromium took over {timeout_s * (runs + 1):.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome


@contextlib.contextmanager
def igym_run(
    target: str,
    data_dir: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
) -> Iterator[str]:
    """``igym run target`` in a child process on a free loopback port; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "igym_core.cli",
                "run",
                target,
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            cwd=cwd,
            env={**os.environ, "IGYM_LOG_FORMAT": "json", **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"igym run exited with {process.returncode}:\n{log_path.read_text()}")
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"igym run did not start:\n{log_path.read_text()}") from None
                    time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
