"""The render-object pictures of docs/render-objects.md come from the real client: `make docs`'s
tool serves its one-game study with `igym run`, and headless Chromium draws every example.

Each picture must show its example in the example's colours (the tool fails, rather than writing
blank pictures, if the page never draws an object), and the committed pictures are PNGs of the
size the tool writes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from igym_core.testing.pixels import colour_mask, png_pixels

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "docs" / "tools" / "render_object_pictures.py"

# object_type → colours its example draws (fill, outline, text, image pixels), with the share of the
# picture each must cover at least.
EXPECTED = {
    "rect": {"#38bdf8": 0.15, "#f8fafc": 0.01},
    "circle": {"#f97316": 0.05, "#85bd33": 0.01},  # the ring: #a3e635 at alpha 0.8 on the background
    "line": {"#facc15": 0.01},
    "polygon": {"#22c55e": 0.15, "#166534": 0.005},
    "text": {"#fde047": 0.005},
    "sprite": {"#e2e8f0": 0.02, "#3b82f6": 0.005, "#facc15": 0.002},
}


def test_the_picture_tool_draws_every_example_in_the_browser(tmp_path: Path) -> None:
    # As `make docs` runs it: a process of its own (its Playwright must not share this session's).
    result = subprocess.run(
        [sys.executable, str(TOOL), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(f"{t}.png" for t in EXPECTED)
    for object_type, colours in EXPECTED.items():
        pixels = png_pixels((tmp_path / f"{object_type}.png").read_bytes())
        background = colour_mask(pixels, "#0f172a", tolerance=12).mean()
        assert 0.3 < background < 0.99, (object_type, background)
        for colour, share in colours.items():
            covered = colour_mask(pixels, colour, tolerance=30).mean()
            assert covered >= share, f"{object_type}: {colour} covers {covered:.4f} of the picture"
        committed = png_pixels((ROOT / "docs/images/render-objects" / f"{object_type}.png").read_bytes())
        assert committed.shape == pixels.shape, "the committed pictures are out of date: run `make docs`"
