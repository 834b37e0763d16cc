"""igym_core.testing.latency's reading of the page's samples (the browser side runs in
tests/e2e/test_latency_browser.py): which frame an update was first seen at, when the drawing first
changed, whether it snapped or glided, and the other objects' counts."""

from __future__ import annotations

from igym_core.testing.latency import analyse


def record(rows: list[tuple[float, dict[str, list[float]]]], keys: list[tuple[float, str]]) -> dict:
    return {"samples": [[t, row] for t, row in rows], "keys": [[t, k] for t, k in keys]}


def test_an_object_that_snaps_to_its_update_and_one_that_glides():
    # Frames every 16 ms; a key at t=10; the update reaches the page before the frame at 32.
    rows = [
        (0, {"me": [100, 50, 100, 50], "ball": [0, 0, 0, 0]}),
        (16, {"me": [100, 50, 100, 50], "ball": [0, 0, 0, 0]}),
        (32, {"me": [110, 50, 110, 50], "ball": [5, 0, 10, 0]}),  # me: at the update; ball: half way
        (48, {"me": [110, 50, 110, 50], "ball": [10, 0, 10, 0]}),
    ]
    report = analyse(record(rows, [(10, "ArrowRight")]), "me", ["ball"])
    (press,) = report.presses
    assert (press.key_to_update_ms, press.key_to_drawn_ms, press.key_to_arrived_ms) == (22, 22, 22)
    assert press.snapped is True
    assert (report.others_snapped, report.others_glided) == (0, 1)
    assert report.frame_interval_ms == 16


def test_a_glide_is_not_a_snap_and_arrives_later():
    rows = [
        (0, {"me": [100, 50, 100, 50]}),
        (16, {"me": [104, 50, 110, 50]}),
        (32, {"me": [110, 50, 110, 50]}),
        (48, {"me": [110, 50, 110, 50]}),
        (64, {"me": [110, 50, 110, 50]}),
    ]
    report = analyse(record(rows, [(5, "ArrowRight"), (40, "ArrowLeft")]), "me")
    first, second = report.presses
    assert (first.key_to_update_ms, first.key_to_drawn_ms, first.key_to_arrived_ms) == (11, 11, 27)
    assert first.snapped is False
    # The second press moved nothing: not measured.
    assert second.key_to_drawn_ms is None and report.measured == (first,)
    assert report.median("key_to_arrived_ms") == 27
    assert "1 of 2 presses moved it" in report.summary()
