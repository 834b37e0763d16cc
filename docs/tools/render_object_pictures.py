"""Draw each render object type's example in the real browser client and save the pictures.

    uv run python docs/tools/render_object_pictures.py [--out docs/images/render-objects]

``make docs`` runs it. It serves a one-game study (``pictures_study.py`` next to this file) with a
real ``igym run`` process on a free loopback port, opens it in headless Debian Chromium
(``/usr/bin/chromium``, every non-loopback request refused), waits until the page has drawn every
example object of ``igym_core.docs.render_objects.EXAMPLES`` (one cell of the canvas per type), and
saves each cell as ``<object_type>.png``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from igym_core.testing.support import CHROMIUM, CHROMIUM_ARGS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _only_loopback(route: Any) -> None:
    if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
        route.continue_()
    else:
        route.abort()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"igym run exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"igym run did not become healthy in {timeout_s:.0f} s:\n{log.read_text()}")


def make_pictures(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(HERE))
    from pictures_study import GRID, ids_drawn

    from igym_core.docs.render_objects import CELL_HEIGHT, CELL_WIDTH

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="igym-pictures-") as tmp:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = Path(tmp) / "server.log"
        with log.open("w") as log_file:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "igym_core.cli",
                    "run",
                    f"{HERE / 'pictures_study.py'}:experiment",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(Path(tmp) / "data"),
                ],
                cwd=ROOT,
                env={**os.environ, "IGYM_LOG_FORMAT": "json"},
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_healthy(url, process, log)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                # The page scales the canvas to the window; a device scale factor of 1/scale makes
                # one canvas pixel one pixel of the picture, whatever the window.
                device_scale = 1.0
                for _attempt in range(2):
                    context = browser.new_context(
                        viewport={"width": 1000, "height": 800}, device_scale_factor=device_scale
                    )
                    context.route("**/*", _only_loopback)
                    page = context.new_page()
                    errors: list[str] = []
                    page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                    page.goto(url + "/?PROLIFIC_PID=pictures")
                    page.wait_for_function(
                        "(ids) => { const g = window.igym && window.igym.gameObjects"
                        " && window.igym.gameObjects(); return g && ids.every((id) => id in g); }",
                        arg=sorted(ids_drawn()),
                        timeout=60_000,
                    )
                    page.wait_for_timeout(500)  # let the first frame's tweens and textures settle
                    box = page.locator("canvas").first.bounding_box()
                    if box is None:
                        raise SystemExit("the game canvas is not on the page")
                    columns = max(col for col, _row in GRID.values()) + 1
                    scale = box["width"] / (columns * CELL_WIDTH)
                    if abs(scale * device_scale - 1) < 0.005:
                        break
                    context.close()
                    device_scale = 1 / scale
                # Per axis (the page rounds the canvas's size down), and two pixels inside each cell's
                # edges: the canvas's outermost pixels blend with the page (and its rounded corners).
                rows = max(row for _col, row in GRID.values()) + 1
                sx, sy = box["width"] / (columns * CELL_WIDTH), box["height"] / (rows * CELL_HEIGHT)
                for object_type, (col, row) in GRID.items():
                    path = out / f"{object_type}.png"
                    page.screenshot(
                        path=str(path),
                        clip={
                            "x": box["x"] + col * CELL_WIDTH * sx + 2,
                            "y": box["y"] + row * CELL_HEIGHT * sy + 2,
                            "width": CELL_WIDTH * sx - 4,
                            "height": CELL_HEIGHT * sy - 4,
                        },
                        animations="disabled",
                    )
                    written.append(path)
                browser.close()
                if errors:
                    raise SystemExit(f"the page reported errors: {errors}")
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "render-objects")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium.")
    for path in make_pictures(args.out):
        sys.stdout.write(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
