"""What the ``rgb_array`` fallback costs per frame, next to render objects sent as deltas.

Run: ``uv run --frozen python bench/rgb_array.py``. Prints a table, then one JSON line with the figures.

Frames are 600x400 RGB: a MountainCar-like picture (white background, the hill curve, the car, its
wheels and the flag; drawn with numpy, no pygame) and random noise (the worst case for PNG). The
baseline builds the same picture as five render objects and runs ``DeltaEncoder.update`` on them, as
the ``objects`` renderer does every tick. Times are medians of several runs; nothing here passes or
fails.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import time
from collections.abc import Callable

import msgpack
import numpy as np

from igym_core.rendering.delta import DeltaEncoder
from igym_core.rendering.objects import Circle, Line, Polygon, Rect, RenderObject
from igym_core.rendering.png import encode_png

WIDTH, HEIGHT = 600, 400
MIN_POS, MAX_POS = -1.2, 0.6
SCALE = WIDTH / (MAX_POS - MIN_POS)
GOAL = 0.5
RUNS = 25


def hill(pos: np.ndarray | float) -> np.ndarray | float:
    return np.sin(3 * pos) * 0.45 + 0.55


def to_screen(pos: float, height: float) -> tuple[float, float]:
    return (pos - MIN_POS) * SCALE, HEIGHT - height * SCALE


# --- the picture as pixels -----------------------------------------------------------------------


def draw_pixels(pos: float) -> np.ndarray:
    img = np.full((HEIGHT, WIDTH, 3), 255, dtype=np.uint8)
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]

    # The hill: a 3-pixel black curve, one sample per column.
    curve_y = np.round(HEIGHT - hill(MIN_POS + np.arange(WIDTH) / SCALE) * SCALE).astype(int)
    for dy in (-1, 0, 1):
        ys = np.clip(curve_y + dy, 0, HEIGHT - 1)
        img[ys, np.arange(WIDTH)] = 0

    # The car: a 40x20 rectangle tilted with the slope, resting on the curve, and two wheels.
    cx, cy = to_screen(pos, float(hill(pos)))
    tilt = math.atan(math.cos(3 * pos) * 0.45 * 3)  # slope of the hill, in world units
    cos_t, sin_t = math.cos(tilt), math.sin(tilt)
    centre_x, centre_y = cx - 20 * sin_t, cy - 20 * cos_t
    local_x = (cols - centre_x) * cos_t - (rows - centre_y) * sin_t
    local_y = (cols - centre_x) * sin_t + (rows - centre_y) * cos_t
    img[(np.abs(local_x) <= 20) & (np.abs(local_y) <= 10)] = 0
    for offset in (-12, 12):
        wx = centre_x + offset * cos_t + 10 * sin_t
        wy = centre_y - offset * sin_t + 10 * cos_t
        img[(cols - wx) ** 2 + (rows - wy) ** 2 <= 25] = (128, 128, 128)

    # The flag: a pole and a yellow triangle at the goal.
    fx, fy = to_screen(GOAL, float(hill(GOAL)))
    fx, fy = int(fx), int(fy)
    img[fy - 50 : fy, fx] = 0
    triangle = (cols >= fx) & (cols <= fx + 25) & (rows >= fy - 50) & (rows <= fy - 40)
    triangle &= (rows - (fy - 50)) <= (10 - (cols - fx) * 10 / 25) + 5
    img[triangle] = (204, 204, 0)
    return img


# --- the same picture as render objects ----------------------------------------------------------

CURVE = [to_screen(p, float(hill(p))) for p in np.linspace(MIN_POS, MAX_POS, 100)]


def build_objects(pos: float) -> list[RenderObject]:
    cx, cy = to_screen(pos, float(hill(pos)))
    angle = -math.degrees(math.atan(math.cos(3 * pos) * 0.45 * 3))
    fx, fy = to_screen(GOAL, float(hill(GOAL)))
    return [
        Line(id="hill", points=CURVE, color="#000000", line_width=3, permanent=True),
        Rect(id="car", x=cx, y=cy - 20, width=40, height=20, angle=angle, fill="#000000", depth=1),
        Circle(id="wheel_l", x=cx - 12, y=cy - 10, radius=5, fill="#808080", depth=2),
        Circle(id="wheel_r", x=cx + 12, y=cy - 10, radius=5, fill="#808080", depth=2),
        Polygon(
            id="flag", x=fx, y=fy - 50, points=[(0, 0), (25, 5), (0, 10)], fill="#cccc00", permanent=True
        ),
    ]


# --- measuring -----------------------------------------------------------------------------------


def median_ms(fn: Callable[[], object], runs: int = RUNS, batch: int = 1) -> float:
    fn()  # warm up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - start) * 1000 / batch)
    return statistics.median(samples)


def main() -> None:
    game = draw_pixels(-0.5)
    noise = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    figures: dict[str, object] = {
        "frame": f"{WIDTH}x{HEIGHT} RGB",
        "raw_bytes": game.nbytes,
        "runs": RUNS,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    rows = []
    for name, image in (("game", game), ("noise", noise)):
        for level in (1, 6):
            ms = median_ms(lambda image=image, level=level: encode_png(image, compression=level))
            size = len(encode_png(image, compression=level))
            figures[f"png_{name}_c{level}_ms"] = round(ms, 3)
            figures[f"png_{name}_c{level}_bytes"] = size
            rows.append((f"rgb_array PNG, {name} frame, zlib level {level}", ms, size))

    # Objects: the car moves every frame, so each frame carries an update of the moving objects.
    encoder = DeltaEncoder()
    keyframe_delta = encoder.update(build_objects(-0.5))
    keyframe_bytes = len(msgpack.packb({"key": True, "add": keyframe_delta.add}))
    positions = iter(np.tile(np.linspace(-1.0, 0.4, 500), 10_000))
    delta_sizes: list[int] = []

    def object_frame() -> None:
        delta = encoder.update(build_objects(float(next(positions))))
        delta_sizes.append(len(msgpack.packb(delta.as_message_fields())))

    # msgpack.packb of the delta is part of sending any frame, so it is timed too.
    objects_ms = median_ms(object_frame, runs=15, batch=200)
    delta_bytes = int(statistics.median(delta_sizes))
    figures["objects_frame_ms"] = round(objects_ms, 4)
    figures["objects_delta_bytes"] = delta_bytes
    figures["objects_keyframe_bytes"] = keyframe_bytes
    rows.append(("objects: build 5 objects + DeltaEncoder.update + msgpack", objects_ms, delta_bytes))

    print(f"{'per frame':60} {'median ms':>10} {'bytes':>9}")
    for label, ms, size in rows:
        print(f"{label:60} {ms:10.3f} {size:9d}")
    print(f"{'objects: keyframe (all 5 objects)':60} {'':>10} {keyframe_bytes:9d}")
    print(f"{'raw frame (600x400x3)':60} {'':>10} {game.nbytes:9d}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
