"""A real `igym run` server writing to the parquet sink, killed with SIGKILL in the middle of a game:
the data is readable, `igym export` works on it, and the restarted server resumes the participant."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pyarrow.parquet as pq
import pytest
from websockets.sync.client import connect

from igym_core.cli import main
from igym_core.testing import LiveServer
from igym_parquet.sink import read_records

STUDY = f"{Path(__file__).parent / 'studies' / 'parquet_study.py'}:experiment"
EXPERIMENT_ID = "parquet_e2e"


def start_server(data_dir: Path) -> LiveServer:
    """`igym run STUDY` in a child process on a free loopback port, with only the parquet plugin loaded."""
    return LiveServer(STUDY, data_dir, plugins=["igym_parquet.plugin"])


class Participant:
    """The participant protocol over a real socket."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.ws = connect(url.replace("http://", "ws://") + "/ws", max_size=None, close_timeout=1).__enter__()
        self.seq = 0
        self.send({"type": "hello", "protocol": 1, "token": token, "params": {"PROLIFIC_PID": "pq"}})
        self.welcome = self.receive("welcome")
        self.scene = self.receive("scene")

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(msgpack.packb(message))

    def receive(self, *types: str) -> dict[str, Any]:
        while True:
            message = msgpack.unpackb(self.ws.recv(timeout=15))
            if not types or message["type"] in types:
                return message

    def submit(self, answers: dict[str, Any]) -> None:
        self.seq += 1
        self.send({"type": "submit", "seq": self.seq, "position": self.scene["position"], "answers": answers})
        assert self.receive("ack", "rejected", "error")["type"] == "ack"
        self.scene = self.receive("scene")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        server.stop()


def test_a_server_killed_mid_game_leaves_readable_exportable_parquet_data(tmp_path, servers, monkeypatch):
    data_dir = tmp_path / "data"
    directory = data_dir / EXPERIMENT_ID
    server = start_server(data_dir)
    servers.append(server)
    alice = Participant(server.url)
    alice.submit({"agree": True})
    alice.submit({"nickname": "Al", "hand": "left"})
    assert alice.scene["scene"]["kind"] == "gym"
    status = alice.receive("game_status")
    alice.send({"type": "game_ready", "game_id": status["game_id"]})
    alice.send({"type": "input", "game_id": status["game_id"], "seq": 100, "keys": ["ArrowRight"]})
    alice.receive("frame")
    time.sleep(1.5)  # about 45 steps, and a few flushes
    server.process.send_signal(signal.SIGKILL)
    assert server.process.wait(10) == -signal.SIGKILL
    alice.ws.close()

    # Readable as it was left (open streams included), without changing a file.
    parquet = directory / "parquet"
    files_after_kill = sorted(p.name for p in parquet.rglob("*"))
    assert any(name.endswith(".arrows") for name in files_after_kill)
    responses = list(read_records(parquet / "responses"))
    assert [(r["question_id"], r["value"]) for r in responses] == [
        ("agree", True),
        ("nickname", "Al"),
        ("hand", "left"),
    ]
    steps = list(read_records(parquet / "steps"))
    assert len(steps) >= 10, len(steps)
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
    assert all(len(s["observation"]) == 2 for s in steps)
    assert any(s["keys_held"] == ["ArrowRight"] and s["action"] == 2 for s in steps)

    # `igym export` on the crashed data.
    out = tmp_path / "export"
    monkeypatch.setenv("IGYM_PLUGINS", "igym_parquet.plugin")
    monkeypatch.setenv("IGYM_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert main(["export", str(directory), "--out", str(out)]) == 0
    assert sorted(p.name for p in parquet.rglob("*")) == files_after_kill
    exported = pq.read_table(out / "steps.parquet")
    assert exported.num_rows == len(steps)
    assert str(exported.schema.field("observation").type) == "list<element: double>"
    assert pq.read_table(out / "responses.parquet").column("value_text").to_pylist() == [None, "Al", "left"]
    assert {"games", "sessions", "responses", "steps"} <= {p.stem for p in out.glob("*.parquet")}

    # The restarted server turns the crashed streams into Parquet files and resumes the participant.
    again = start_server(data_dir)
    servers.append(again)
    back = Participant(again.url, token=alice.welcome["token"])
    assert back.welcome["resumed"] is True
    assert back.welcome["participant_id"] == alice.welcome["participant_id"]
    assert back.scene["position"] == 2
    back.ws.close()
    again.stop()
    assert not list(parquet.rglob("*.arrows")) and not list(parquet.rglob("*.tmp"))
    for part in parquet.rglob("*.parquet"):
        pq.ParquetFile(part)  # every file is complete
    assert [(r["question_id"], r["value"]) for r in read_records(parquet / "responses")][:3] == [
        ("agree", True),
        ("nickname", "Al"),
        ("hand", "left"),
    ]
    assert list(read_records(parquet / "steps"))[: len(steps)] == steps
