"""A real `igym run` process with one sink on a full disk (a real ENOSPC from a filled tmpfs),
listed before the JSONL sink, as in the QA run where no `.jsonl` file ever appeared."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import msgpack
from websockets.sync.client import connect

from igym_core.testing import read_records
from igym_core.testing.full_disk import mount_full_disk

STORY = "Once upon a time there was a very full disk. " * 120


class Page:
    """A participant over a real socket (the protocol, without a browser)."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.ws = connect(url.replace("http://", "ws://") + "/ws").__enter__()
        self.seq = 0
        self.send({"type": "hello", "protocol": 1, "token": token, "params": {"PROLIFIC_PID": "x"}})
        self.welcome = self.recv()
        self.shown = self.recv()

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(msgpack.packb(message))

    def recv(self) -> dict[str, Any]:
        return msgpack.unpackb(self.ws.recv(timeout=10))

    def submit(self, answers: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        self.send({"type": "submit", "seq": self.seq, "position": self.shown["position"], "answers": answers})
        assert self.recv()["type"] == "ack"
        self.shown = self.recv()
        return self.shown


def _events(log: str, event: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [row for row in rows if row.get("event") == event]


def test_a_best_effort_sink_on_a_full_disk_stops_nothing_and_jsonl_keeps_everything(
    tmp_path: Path, live_server: Any
) -> None:
    with mount_full_disk(tmp_path / "disk", size_kib=256) as disk:
        disk.fill()
        server = live_server(
            "tests.studies.mirror_study:experiment",
            args=["--plugin", "tests.studies.mirror_sink"],
            env={"IGYM_TEST_MIRROR_DIR": str(disk.path / "mirror")},
        )
        page = Page(server.url)
        page.submit({"agree": True})
        end = page.submit({"story": STORY})
        assert end["scene"]["scene_id"] == "end" and end["context"]["completion_code"]
        page.ws.close()
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        log = server.log()
    responses = read_records(server.data_dir, "mirror", "responses")
    assert [r["question_id"] for r in responses] == ["agree", "story"]
    finished = [r for r in read_records(server.data_dir, "mirror", "sessions") if r["event"] == "finished"]
    assert [f["detail"]["values"]["completion_code"] for f in finished] == [end["context"]["completion_code"]]
    failed = _events(log, "sink_failed")
    assert len(failed) == 1 and failed[0]["sink"] == "mirror_test_sink" and failed[0]["required"] is False
    assert failed[0]["errno"] == "ENOSPC"


def test_a_required_sink_on_a_full_disk_holds_the_code_back_while_jsonl_keeps_every_record(
    tmp_path: Path, live_server: Any
) -> None:
    with mount_full_disk(tmp_path / "disk", size_kib=256) as disk:
        server = live_server(
            "tests.studies.mirror_study:mirror_required",
            args=["--plugin", "tests.studies.mirror_sink"],
            env={"IGYM_TEST_MIRROR_DIR": str(disk.path / "mirror")},
        )
        page = Page(server.url)
        page.submit({"agree": True})
        disk.fill()
        shown = page.submit({"story": STORY})
        assert shown["type"] == "saving"
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    # The JSONL sink (listed after the failing one) has every record the study had written.
    responses = read_records(server.data_dir, "mirror", "responses")
    assert [(r["question_id"], r["value"]) for r in responses] == [("agree", True), ("story", STORY)]
    events = [r["event"] for r in read_records(server.data_dir, "mirror", "sessions")]
    assert events.count("finished") == 1
