"""A real ``igym run`` and a client that stops reading for 3 s: the frames dropped for it because its
socket was behind, and those it got, are in its ``connection_stats`` rows, period by period."""

from __future__ import annotations

from collections.abc import Callable

from igym_core.testing import read_records
from tests.conftest import LiveServer
from tests.test_game_server import STUDY, _stalled_player, run_async


def test_frames_dropped_while_a_client_stopped_reading_are_in_its_connection_rows(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(STUDY)
    result = run_async(_stalled_player, f"ws://127.0.0.1:{server.port}/ws", 3.0)
    assert result["next"] == "end"
    server.stop()  # every record on disk
    (episode,) = read_records(server.data_dir, "noise_game", "episodes")
    rows = read_records(server.data_dir, "noise_game", "connection_stats")
    ((pid, dropped),) = episode["frames_dropped"].items()
    assert dropped > 0
    # 150 steps at 30 fps: a row at the 5 s report (if the episode lasted that long) and one at the end.
    assert 1 <= len(rows) <= 3 and {r["participant_id"] for r in rows} == {pid}
    assert sum(r["frames_dropped"] for r in rows) == dropped
    assert sum(r["frames_sent"] for r in rows) == result["frames"]  # every frame sent was read
    assert sum(r["frames_sent"] for r in rows) + dropped >= 150
    assert sum(r["bytes_sent"] for r in rows) > 150_000 * result["frames"] // 2  # 320x240 pictures
    assert all(r["connected"] for r in rows)
