"""Key press → first drawn change, measured in a real browser page (Playwright), for any runtime.

The page samples, once per animation frame, where the game view draws some objects
(``window.igym.gameDrawnPose(id)``) and where their latest frame puts them
(``window.igym.gameObjects()[id]``), and notes every key press (``keydown``'s ``timeStamp``, the
same clock as the animation frames'). :func:`measure_key_to_draw` then presses keys one at a time,
each once the participant's object stands still, and reads for each press:

- ``key_to_update_ms``: from the key press to the first animation frame at which the object's
  frame position (the update from the runtime) had changed;
- ``key_to_drawn_ms``: from the key press to the first animation frame at which the drawn position
  had changed (what the participant sees);
- ``key_to_arrived_ms``: from the key press to the first animation frame at which the object was
  drawn where that first update put it (later than ``key_to_drawn_ms`` when it glides there);
- ``snapped``: whether that first drawn change put the object where its update says, at the frame
  the update was first seen (no interpolation), or the object was still on its way there.

The page argument is a Playwright ``Page`` (sync API), duck-typed: this module imports no browser
library. Figures are for printing (and benches); tests assert behaviour, such as ``snapped``.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from typing import Any

import attrs

#: Installs the sampler: one entry per animation frame `[t, {id: [drawn x, drawn y, frame x, frame y]}]`.
_SAMPLER_JS = """
(ids) => {
  const rec = { samples: [], keys: [], stopped: false };
  window.__igymLatency = rec;
  window.addEventListener("keydown", (e) => { if (!e.repeat) rec.keys.push([e.timeStamp, e.key]); }, true);
  const step = (t) => {
    if (rec.stopped) return;
    const objects = window.igym.gameObjects();
    const row = {};
    for (const id of ids) {
      const d = window.igym.gameDrawnPose(id);
      const o = objects[id];
      row[id] = [d ? d.x : null, d ? d.y : null, o ? (o.x ?? 0) : null, o ? (o.y ?? 0) : null];
    }
    rec.samples.push([t, row]);
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}
"""

_STILL_JS = """
([id, quietMs]) => {
  const rec = window.__igymLatency;
  const s = rec.samples;
  if (s.length < 2) return false;
  const last = s[s.length - 1];
  const p = last[1][id];
  if (!p || p[0] === null || p[2] === null) return false;
  if (Math.abs(p[0] - p[2]) > 0.01 || Math.abs(p[1] - p[3]) > 0.01) return false;
  for (let i = s.length - 1; i >= 0 && last[0] - s[i][0] <= quietMs; i--) {
    const q = s[i][1][id];
    if (!q || q[2] !== p[2] || q[3] !== p[3]) return false;
  }
  return last[0] - s[0][0] >= quietMs;
}
"""

#: Positions closer than this (canvas px) are the same.
_EPSILON = 0.01


@attrs.frozen
class Press:
    """One key press and what the page drew after it (times in ms; None: nothing changed)."""

    key: str
    key_to_update_ms: float | None
    key_to_drawn_ms: float | None
    snapped: bool | None
    key_to_arrived_ms: float | None = None


@attrs.frozen
class LatencyReport:
    object_id: str
    presses: tuple[Press, ...]
    #: The other sampled objects: of their moves (first drawn change after an update), how many
    #: snapped straight to the update's position and how many glided.
    others_snapped: int
    others_glided: int
    #: The median time between the page's animation frames (ms; the drawing rate's period).
    frame_interval_ms: float | None = None

    @property
    def measured(self) -> tuple[Press, ...]:
        return tuple(
            p for p in self.presses if p.key_to_drawn_ms is not None and p.key_to_update_ms is not None
        )

    def median(self, field: str) -> float | None:
        values = [v for p in self.measured if (v := getattr(p, field)) is not None]
        return statistics.median(values) if values else None

    def summary(self) -> str:
        def ms(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.1f} ms"

        snapped = sum(1 for p in self.measured if p.snapped)
        return (
            f"{self.object_id}: animation frames every {ms(self.frame_interval_ms)} (median); "
            f"{len(self.measured)} of {len(self.presses)} presses moved it; median key → "
            f"update {ms(self.median('key_to_update_ms'))}, key → first drawn change "
            f"{ms(self.median('key_to_drawn_ms'))}, key → drawn where the first update put it "
            f"{ms(self.median('key_to_arrived_ms'))}; first drawn change at the update's position: "
            f"{snapped} of {len(self.measured)}; other objects' moves snapped {self.others_snapped}, "
            f"glided {self.others_glided}"
        )


def install_sampler(page: Any, object_ids: Sequence[str]) -> None:
    """Start sampling ``object_ids`` in ``page`` every animation frame (the game must be mounted)."""
    page.evaluate(_SAMPLER_JS, list(object_ids))


def measure_key_to_draw(
    page: Any,
    object_id: str,
    *,
    keys: Sequence[str] = ("ArrowLeft", "ArrowRight"),
    presses: int = 20,
    hold_ms: int = 150,
    quiet_ms: int = 150,
    others: Sequence[str] = (),
    still_timeout_s: float = 10.0,
) -> LatencyReport:
    """Press ``keys`` in turn ``presses`` times, each held ``hold_ms``, once ``object_id`` has stood
    still (drawn where its frame says, unchanged) for ``quiet_ms``; sample ``others`` too. The game
    must be playing; a press after which the object did not move (a wall, an episode end) counts
    as not measured."""
    install_sampler(page, [object_id, *others])
    for i in range(presses):
        page.wait_for_function(_STILL_JS, arg=[object_id, quiet_ms], timeout=still_timeout_s * 1000)
        key = keys[i % len(keys)]
        page.keyboard.down(key)
        page.wait_for_timeout(hold_ms)
        page.keyboard.up(key)
    page.wait_for_timeout(quiet_ms + 200)
    data = page.evaluate("() => { const r = window.__igymLatency; r.stopped = true; return r; }")
    return analyse(data, object_id, others)


def analyse(data: dict[str, Any], object_id: str, others: Sequence[str] = ()) -> LatencyReport:
    """Read the sampler's record (``window.__igymLatency``) into a report."""
    samples: list[tuple[float, dict[str, list[float | None]]]] = [(s[0], s[1]) for s in data["samples"]]
    key_times = [(k[0], k[1]) for k in data["keys"]]
    result = []
    for n, (t_key, key) in enumerate(key_times):
        t_next = key_times[n + 1][0] if n + 1 < len(key_times) else float("inf")
        before = [s for s in samples if s[0] <= t_key]
        after = [s for s in samples if t_key < s[0] < t_next]
        base = before[-1][1].get(object_id) if before else None
        if base is None or base[0] is None or base[2] is None:
            result.append(Press(key, None, None, None))
            continue
        update_at = next((s for s in after if _moved(s[1].get(object_id), base, frame=True)), None)
        drawn_at = next((s for s in after if _moved(s[1].get(object_id), base, frame=False)), None)
        snapped = None
        arrived_at = None
        if update_at is not None and drawn_at is not None:
            pose = drawn_at[1][object_id]
            snapped = drawn_at[0] == update_at[0] and _same(pose[0], pose[2]) and _same(pose[1], pose[3])
            target = update_at[1][object_id]
            arrived_at = next(
                (
                    s
                    for s in after
                    if s[0] >= update_at[0]
                    and (p := s[1].get(object_id))
                    and _same(p[0], target[2])
                    and _same(p[1], target[3])
                ),
                None,
            )
        result.append(
            Press(
                key,
                None if update_at is None else update_at[0] - t_key,
                None if drawn_at is None else drawn_at[0] - t_key,
                snapped,
                None if arrived_at is None else arrived_at[0] - t_key,
            )
        )
    snapped_others = glided_others = 0
    for other in others:
        for previous, current in itertools.pairwise(samples):
            a, b = previous[1].get(other), current[1].get(other)
            if not a or not b or None in a or None in b:
                continue
            if _same(a[2], b[2]) and _same(a[3], b[3]):
                continue  # no new update at this frame
            if _same(b[0], b[2]) and _same(b[1], b[3]):
                snapped_others += 1
            else:
                glided_others += 1
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(samples)]
    interval = statistics.median(gaps) if gaps else None
    return LatencyReport(object_id, tuple(result), snapped_others, glided_others, interval)


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= _EPSILON


def _moved(pose: list[float | None] | None, base: list[float | None], *, frame: bool) -> bool:
    if not pose:
        return False
    i = 2 if frame else 0
    return not (_same(pose[i], base[i]) and _same(pose[i + 1], base[i + 1]))
