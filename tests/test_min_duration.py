"""A scene's minimum time on the page holds on the server, not only in the browser."""

from __future__ import annotations

import time

from igym_core.testing import read_records
from tests.test_restart import Browserless


def test_a_script_cannot_rush_through_the_survey_study(live_server) -> None:
    server = live_server("igym_core.examples.survey_study:experiment")
    script = Browserless(server.url)
    script.submit({"agree": True})
    assert script.scene["scene"]["scene_id"] == "instructions"  # min_duration_ms=1500

    script.seq += 1
    script.send({"type": "submit", "seq": script.seq, "position": script.scene["position"], "answers": {}})
    refused = script.recv()
    assert refused["type"] == "error" and refused["code"] == "too_early" and refused["seq"] == script.seq
    assert 1000 < refused["retry_after_ms"] <= 1500
    rejected = [
        e
        for e in read_records_later(server, "sessions")
        if e["event"] == "submission_rejected" and e["scene_id"] == "instructions"
    ]
    assert [e["detail"]["reason"] for e in rejected] == ["too_early"]
    assert rejected[0]["detail"]["min_duration_ms"] == 1500

    # Waiting out the rest of the page's time (less the 250 ms tolerance) is enough.
    time.sleep((refused["retry_after_ms"] - 200) / 1000)
    script.seq += 1
    script.send({"type": "submit", "seq": script.seq, "position": script.scene["position"], "answers": {}})
    assert script.recv()["type"] == "ack"
    assert script.recv()["scene"]["scene_id"] == "about_you"
    script.ws.close()


def read_records_later(server, kind: str) -> list[dict]:
    """The records once the server's periodic flush (500 ms) has written them."""
    deadline = time.monotonic() + 5
    rows: list[dict] = []
    while time.monotonic() < deadline:
        rows = read_records(server.data_dir, "demo_survey", kind)
        if any(r["event"] == "submission_rejected" for r in rows):
            break
        time.sleep(0.1)
    return rows
