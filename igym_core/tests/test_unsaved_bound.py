"""Bounded memory while data cannot be saved, and sinks whose ``write`` fails.

A full disk is a real one (a small tmpfs, igym_core.testing.full_disk); the server is the real app
through Litestar's test client; the sinks are the real JSONL sink (or a JSONL sink whose ``write``
raises while the test says so).
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient
from structlog.testing import capture_logs

from igym_core import EndScene, Experiment, StartScene, SurveyScene, TextQuestion
from igym_core.builtin.sink_jsonl import JsonlSink, JsonlSinkConfig
from igym_core.data.interface import DataSink, SinkConfig
from igym_core.data.recorder import Recorder
from igym_core.envs import resolve_callable
from igym_core.errors import DataNotSavedError
from igym_core.plugins.markers import hookimpl
from igym_core.session.saving import SAVING_MESSAGE
from igym_core.testing import ScriptedParticipant, make_test_app, read_records
from igym_core.testing.full_disk import mount_full_disk

HERE = Path(__file__).resolve().parent
_envs = f"{HERE / 'game_envs.py'}"
corridor_scene = resolve_callable(f"{_envs}:corridor_scene", what="test scene")
game_study = resolve_callable(f"{_envs}:game_study", what="test study")

MAX_STEPS = 240
CAP = 16 * 1024


def _walk(experiment_id: str) -> Experiment:
    # The default action stays put: the episode lasts max_steps.
    scene = corridor_scene(num_episodes=1, max_steps=MAX_STEPS, countdown_s=0.2)
    return game_study(scene, experiment_id=experiment_id, seed=4)


def _buffered(sink: JsonlSink) -> int:
    """What the JSONL sink really holds in its buffers (not its own count)."""
    return sum(len(line) for lines in sink._buffers.values() for line in lines)


def test_games_pause_when_unsaved_records_reach_the_cap_and_resume_with_every_record_stored_once(
    tmp_path: Path,
) -> None:
    with mount_full_disk(tmp_path / "disk", size_kib=1024) as disk:
        app = make_test_app(_walk("bound"), disk.path / "data", flush_interval_ms=100, max_unsaved_bytes=CAP)
        with TestClient(app) as client, ScriptedParticipant(client) as p:
            recorder = app.state.study.recorder
            (sink,) = recorder.sinks
            status = p.receive_until(lambda m: m["type"] == "game_status")[0]
            game_id = status["game_id"]
            p.game_ready(game_id)
            p.receive_until(lambda m: m["type"] == "game_status" and m["phase"] == "playing")
            p.receive_until(lambda m: m["type"] == "frame" and m["step"] >= 10)
            disk.fill()

            paused, _seen = p.receive_until(lambda m: m["type"] == "game_status" and m["phase"] == "paused")
            assert paused["pause_reason"] == "saving" and paused["message"] == SAVING_MESSAGE
            assert not recorder.saving and recorder.holding
            buffered, unsaved = _buffered(sink), recorder.unsaved_bytes()
            # Over the cap by at most what one flush interval (100 ms, 6 steps) adds.
            assert CAP <= unsaved <= CAP + 6 * 1024
            step_at_pause = app.state.study.games.games[game_id].step
            assert step_at_pause < MAX_STEPS

            # The bound holds: while the disk stays full nothing more is recorded (the retries may
            # still fit a line or two in the files' last pages, so it can only shrink).
            for _ in range(6):
                time.sleep(0.1)
                assert _buffered(sink) <= buffered and recorder.unsaved_bytes() <= unsaved
            assert app.state.study.games.games[game_id].step == step_at_pause
            assert recorder.holding

            # A reload during the pause shows the same paused game, and does not resume it.
            p.close()
            with ScriptedParticipant(client, token=p.token) as p:
                again = p.receive_until(lambda m: m["type"] == "game_status")[0]
                assert again["phase"] == "paused" and again["pause_reason"] == "saving"
                p.game_ready(game_id)
                time.sleep(0.3)
                assert app.state.study.games.games[game_id].step == step_at_pause

                disk.free()
                seen = p.receive_until(lambda m: m["type"] == "game_status" and m["phase"] == "playing")[1]
                assert [m["phase"] for m in seen if m["type"] == "game_status"] == ["countdown"]
                scene, _seen = p.receive_until(lambda m: m["type"] == "scene")
                assert scene["scene"]["scene_id"] == "after"
            assert not recorder.holding and recorder.unsaved_bytes() < CAP

        data = disk.path / "data"
        steps = read_records(data, "bound", "steps")
        assert [s["step"] for s in steps] == list(range(1, MAX_STEPS + 1))  # each once, in order
        games = [(g["event"], g.get("reason")) for g in read_records(data, "bound", "games")]
        assert games == [
            ("started", None),
            ("paused", "saving"),
            ("resumed", "saving"),
            ("ended", "completed"),
        ]
        (episode,) = read_records(data, "bound", "episodes")
        assert episode["steps"] == MAX_STEPS and episode["pauses"] == 1 and episode["paused_ms"] >= 500
        assert episode["pause_reasons"] == {"saving": 1}


# --- a sink whose write raises ----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FlakyConfig(SinkConfig):
    kind: ClassVar[str] = "flaky_jsonl"


class FlakySink(JsonlSink):
    """The JSONL sink, but ``write`` raises ``ENOSPC`` while ``broken``."""

    kind: ClassVar[str] = "flaky_jsonl"
    config_type: ClassVar[type[SinkConfig]] = FlakyConfig

    def __init__(self, config: SinkConfig, directory: Path) -> None:
        super().__init__(config, directory)
        self.broken = False
        self.refused = 0

    def write(self, record_type: str, row: Mapping[str, Any]) -> None:
        if self.broken:
            self.refused += 1
            raise OSError(errno.ENOSPC, "No space left on device (test)")
        super().write(record_type, row)


class FlakyPlugin:
    @hookimpl
    def igym_register_data_sinks(self) -> list[type[DataSink]]:
        return [FlakySink]


SURVEY = Experiment(
    experiment_id="flaky",
    seed=5,
    sinks=(FlakyConfig(),),
    scenes=(
        StartScene(scene_id="consent", body="Take part?"),
        SurveyScene(scene_id="about", questions=(TextQuestion(id="name", prompt="Your name?"),)),
        EndScene(scene_id="end", completion_code="auto"),
    ),
)


def test_a_required_sink_whose_write_fails_holds_the_participant_back_until_it_takes_the_records(
    tmp_path: Path,
) -> None:
    app = make_test_app(SURVEY, tmp_path, extra_plugins=[FlakyPlugin()], flush_interval_ms=100)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        recorder = app.state.study.recorder
        (sink,) = recorder.sinks
        p.submit({"agree": True})
        with capture_logs() as logs:
            sink.broken = True
            reply = p.submit({"name": "Ada"})
            assert reply == {"type": "saving", "position": 2, "message": SAVING_MESSAGE}
            assert not recorder.saving
            newcomer = client.websocket_connect("/ws").__enter__()
            newcomer.send_bytes(msgpack.packb({"type": "hello", "protocol": 1, "token": None, "params": {}}))
            refused = msgpack.unpackb(newcomer.receive_bytes(timeout=5), raw=False)
            assert refused["type"] == "error" and refused["code"] == "unavailable"
            with pytest.raises(WebSocketDisconnect):
                newcomer.receive_bytes(timeout=5)
            time.sleep(0.5)  # several retries of write, all refused
            assert sink.refused >= 3
            sink.broken = False
            scene = p.receive_type("scene")
            assert scene["scene"]["scene_id"] == "end" and scene["context"]["completion_code"]
        events = [e["event"] for e in logs]
        # Said once (not per record), and once when it works again.
        assert events.count("sink_failed") == 1 and events.count("sink_recovered") == 1
        assert "sink_write_failed" not in events
        failed = next(e for e in logs if e["event"] == "sink_failed")
        assert failed["failed_in"] == "write" and failed["errno"] == "ENOSPC"
    responses = read_records(tmp_path, "flaky", "responses")
    assert [(r["question_id"], r["value"]) for r in responses] == [("agree", True), ("name", "Ada")]
    sessions = read_records(tmp_path, "flaky", "sessions")
    assert sum(1 for r in sessions if r["event"] == "finished") == 1
    assert [r["event"] for r in sessions].count("scene_entered") == 3


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["write", "write", "write", "break", "mend", "flush"]), max_size=40))
def test_records_a_write_refused_are_stored_once_in_order_whatever_the_sink_does(tmp_path_factory, ops):
    directory = tmp_path_factory.mktemp("flaky")

    async def run() -> tuple[list[int], list[tuple[bool, bool]]]:
        sink = FlakySink(FlakyConfig(), directory)
        recorder = Recorder([sink], base={}, flush_interval_ms=60_000, max_unsaved_bytes=10**9)
        written = 0
        states = []
        for op in ops:
            if op == "write":
                recorder.write("events", {"n": written})
                written += 1
            elif op == "break":
                sink.broken = True
            elif op == "mend":
                sink.broken = False
            else:
                try:
                    await recorder.flush()
                    states.append((True, recorder.saving))
                except DataNotSavedError:
                    states.append((False, recorder.saving))
        sink.broken = False
        await recorder.flush()
        assert recorder.unsaved_bytes() == 0 and recorder.saving
        await sink.close()
        return list(range(written)), states

    expected, states = asyncio.run(run())
    assert all(ok == saving for ok, saving in states)  # "saving" is what the last flush said
    assert [r["n"] for r in read_records(directory.parent, directory.name, "events")] == expected


class CountlessSink(DataSink):
    """A sink that keeps rows (not bytes) and cannot say how many bytes it holds; its flush fails
    while ``broken`` (keeping the rows)."""

    kind: ClassVar[str] = "countless"
    config_type: ClassVar[type[SinkConfig]] = FlakyConfig

    def __init__(self, config: SinkConfig, directory: Path) -> None:
        super().__init__(config, directory)
        self.rows: list[Any] = []
        self.stored: list[Any] = []
        self.broken = False

    def write(self, record_type: str, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))

    async def flush(self, *, durable: bool = False) -> None:
        if self.broken:
            raise OSError(errno.EIO, "Input/output error (test)")
        self.stored += self.rows
        self.rows = []

    async def close(self) -> None:
        pass


def test_the_recorder_measures_what_a_sink_that_cannot_count_holds_and_pauses_at_the_cap(tmp_path: Path):
    async def run() -> None:
        sink = CountlessSink(FlakyConfig(), tmp_path)
        recorder = Recorder([sink], base={}, flush_interval_ms=60_000, max_unsaved_bytes=4000)
        told: list[bool] = []
        recorder.hold_listeners.append(told.append)
        sink.broken = True
        for n in range(20):  # about 136 bytes each, with the timestamp
            recorder.write("steps", {"n": n, "pad": "x" * 80})
        assert 2500 < recorder.unsaved_bytes() < 4000
        with pytest.raises(DataNotSavedError):
            await recorder.flush()
        assert told == []  # failing, but under the cap: games play on
        for n in range(20, 35):
            recorder.write("steps", {"n": n, "pad": "x" * 80})
        with pytest.raises(DataNotSavedError):
            await recorder.flush()
        assert told == [True] and recorder.holding and recorder.unsaved_bytes() >= 4000
        sink.broken = False
        await recorder.flush()
        assert told == [True, False] and recorder.unsaved_bytes() == 0
        assert [r["n"] for r in sink.stored] == list(range(35))

    asyncio.run(run())


def test_a_best_effort_sink_whose_write_fails_drops_its_copies_counted_and_holds_nobody(tmp_path: Path):
    async def run() -> tuple[Recorder, FlakySink]:
        mirror = FlakySink(FlakyConfig(required=False), tmp_path / "mirror")
        main = JsonlSink(JsonlSinkConfig(), tmp_path / "main")
        recorder = Recorder([mirror, main], base={}, flush_interval_ms=60_000, max_unsaved_bytes=0)
        mirror.broken = True
        for n in range(5):
            recorder.write("events", {"n": n})
        await recorder.flush()  # the required sink stores: no error, nobody held
        assert recorder.saving and not recorder.holding and recorder.unsaved_bytes() == 0
        mirror.broken = False
        recorder.write("events", {"n": 5})
        await recorder.flush()
        await mirror.close()
        await main.close()
        return recorder, mirror

    with capture_logs() as logs:
        asyncio.run(run())
    assert [r["n"] for r in read_records(tmp_path, "main", "events")] == list(range(6))
    assert [r["n"] for r in read_records(tmp_path, "mirror", "events")] == [5]
    failed = [e for e in logs if e["event"] == "sink_failed"]
    assert len(failed) == 1 and failed[0]["required"] is False
    (recovered,) = [e for e in logs if e["event"] == "sink_recovered"]
    assert recovered["records_dropped"] == 5


def test_the_cap_is_read_from_the_environment_and_must_not_be_negative() -> None:
    from igym_core.errors import ConfigError
    from igym_core.settings import Settings

    assert Settings().max_unsaved_bytes == 256 * 1024 * 1024
    assert Settings.from_env({"IGYM_MAX_UNSAVED_BYTES": "1048576"}).max_unsaved_bytes == 1048576
    with pytest.raises(ConfigError, match="max_unsaved_bytes must be 0 or more"):
        Settings.from_env({"IGYM_MAX_UNSAVED_BYTES": "-1"})
