"""Each player's connection during a server-run game (``connection_stats``): round trips, frames sent
and dropped and their bytes, every ``connection_report_s``, through the real app; and a page that
stops answering the round-trip probes is judged slow from the probes' age alone."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from igym_core import GymScene
from igym_core.builtin.scene_gym import WaitingRoom
from igym_core.builtin.slow_connection import SlowConnection
from igym_core.envs import resolve_callable
from igym_core.runtime.connection import Link
from igym_core.testing import ScriptedParticipant, make_test_app, read_records

HERE = Path(__file__).resolve().parent
corridor_scene = resolve_callable(f"{HERE / 'game_envs.py'}:corridor_scene", what="test scene")
game_study = resolve_callable(f"{HERE / 'game_envs.py'}:game_study", what="test study")
Duel = resolve_callable(f"{HERE / 'game_envs.py'}:Duel", what="test env")


def _read_for(p: ScriptedParticipant, seconds: float) -> list[dict[str, Any]]:
    """What ``p`` reads (answering its probes) for ``seconds``, or until it leaves the game."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(p.receive())
        if seen[-1]["type"] == "scene":
            break
    return seen


def test_each_players_connection_is_recorded_every_period_next_to_the_steps(tmp_path: Path) -> None:
    game = corridor_scene(num_episodes=1, max_steps=75, fps=30, rtt_interval_s=0.1, connection_report_s=0.5)
    app = make_test_app(game_study(game, experiment_id="links"), tmp_path / "data")
    frames = frame_bytes = 0
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        status, _ = p.receive_until(lambda m: m["type"] == "game_status")
        p.game_ready(status["game_id"])
        deadline = time.monotonic() + 30
        while p.kind == "gym" and time.monotonic() < deadline:
            message = p.receive()
            if message["type"] == "frame":
                frames += 1
                frame_bytes += len(msgpack.packb(message))
            elif message["type"] == "scene":
                p.scene = message
        assert p.kind != "gym", "the game did not end"
        pid = p.participant_id
        answered = p.rtt_probes_answered
    rows = read_records(tmp_path / "data", "links", "connection_stats")
    (episode,) = read_records(tmp_path / "data", "links", "episodes")
    steps = read_records(tmp_path / "data", "links", "steps")
    # 75 steps at 30 fps: 2.5 s, a row every 0.5 s (at a probe) and one more at the game's end.
    assert 4 <= len(rows) <= 8, rows
    assert {r["participant_id"] for r in rows} == {pid} and {r["seat"] for r in rows} == {"agent_0"}
    assert all(r["game_id"] == episode["game_id"] and r["connected"] for r in rows)
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    assert rows[-1]["step"] == episode["steps"] == len(steps)
    assert all(r["steps_received"] is None for r in rows)  # the server draws: frames count
    # Every frame the page got is counted once, and nothing was dropped on this fast socket.
    assert sum(r["frames_sent"] for r in rows) == frames
    assert sum(r["frames_dropped"] for r in rows) == sum(episode["frames_dropped"].values()) == 0
    assert sum(r["bytes_sent"] for r in rows) == frame_bytes
    # The round trips: each answered probe once, in the row of its period.
    assert sum(r["probes_answered"] for r in rows) == sum(len(r["rtt_ms"]) for r in rows)
    assert answered - 2 <= sum(r["probes_answered"] for r in rows) <= answered
    assert sum(r["probes_sent"] for r in rows) >= sum(r["probes_answered"] for r in rows) >= 10
    assert all(0 <= v < 1000 for r in rows for v in r["rtt_ms"])
    assert episode["rtt_ms"][pid]["n"] == sum(len(r["rtt_ms"]) for r in rows)
    assert 350 <= sum(r["period_ms"] for r in rows[:-1]) / max(1, len(rows) - 1) <= 1500


def test_no_rows_when_the_scene_turns_them_off(tmp_path: Path) -> None:
    game = corridor_scene(num_episodes=1, max_steps=20, fps=30, rtt_interval_s=0.1, connection_report_s=None)
    app = make_test_app(game_study(game, experiment_id="nolinks"), tmp_path / "data")
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        status, _ = p.receive_until(lambda m: m["type"] == "game_status")
        p.game_ready(status["game_id"])
        p.receive_until(lambda m: m["type"] == "scene")
    assert read_records(tmp_path / "data", "nolinks", "episodes")
    assert read_records(tmp_path / "data", "nolinks", "connection_stats") == []


def test_a_page_that_stops_answering_is_judged_slow_from_its_probes_age(tmp_path: Path) -> None:
    """No echo comes back at all: the probes still out count as slow (the server judges from what
    it measures), so the rule warns and then ends the game."""
    rule = SlowConnection(max_rtt_ms=150, warn_after_s=0.3, end_after_s=0.3)
    game = corridor_scene(num_episodes=1, max_steps=600, fps=30, rtt_interval_s=0.1, slow_connection=rule)
    app = make_test_app(game_study(game, experiment_id="mute"), tmp_path / "data")
    notices = []
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        p.answer_rtt_probes = False
        status, _ = p.receive_until(lambda m: m["type"] == "game_status")
        p.game_ready(status["game_id"])
        deadline = time.monotonic() + 15
        while p.kind == "gym" and time.monotonic() < deadline:
            message = p.receive()
            if message["type"] == "game_status" and message.get("notice"):
                notices.append(message["notice"])
            elif message["type"] == "scene":
                p.scene = message
    games = read_records(tmp_path / "data", "mute", "games")
    assert [r["event"] for r in games if r["event"].startswith("slow_connection")] == [
        "slow_connection_warned",
        "slow_connection_ended",
    ]
    assert notices[:1] == [rule.warning]
    (episode,) = read_records(tmp_path / "data", "mute", "episodes")
    assert episode["end_reason"] == "slow_connection" and episode["steps"] < 600
    assert episode["rtt_ms"][p.participant_id]["n"] == 0  # not one echo: judged from the probes' age


def test_a_link_judges_round_trips_and_forgets_old_probes() -> None:
    rule = SlowConnection(max_rtt_ms=100, warn_after_s=1, end_after_s=1)
    link = Link()
    for n in range(1, 12):
        link.probe_sent(n, float(n))
    assert len(link.probes) == 8 and min(link.probes) == 4
    assert link.echoed(1, None, 20.0) is None  # forgotten: no round trip
    assert link.echoed(4, 500.0, 4.2) == 0.0  # the page's own wait is taken out, never below 0
    assert link.echoed(5, 50.0, 5.3) == pytest.approx(250.0)
    assert link.overdue_ms(7.0) == pytest.approx(1000.0)  # probe 6, sent at 6.0
    events = [
        link.judge(rule, rtt, t) for rtt, t in [(250, 0), (250, 0.5), (250, 1.0), (250, 1.9), (250, 2.0)]
    ]
    assert events == [None, None, "slow_connection_warned", None, "slow_connection_ended"]
    assert link.judge(rule, 50, 2.1) == "slow_connection_recovered" and link.slow_since is None
    report = link.report()
    assert report["rtt_ms"] == [0.0, 250.0] and report["page_delay_ms"] == [200.0, 50.0]
    assert (report["probes_sent"], report["probes_answered"]) == (11, 2)
    assert link.report()["rtt_ms"] == [] and link.report()["probes_sent"] == 0


def test_a_player_away_for_a_reload_is_not_judged_slow_by_the_probes_left_unanswered(tmp_path: Path) -> None:
    """Probes in flight when a socket closes never come back: while the player is away (within the
    reconnect grace) and once they are back on a new socket, they do not count as slow."""
    game = GymScene(
        scene_id="duel",
        env_factory=Duel,
        human_seats=("human", "bot"),
        default_action=0,
        fps=30,
        max_steps=100_000,
        countdown_s=0,
        waiting_room=WaitingRoom(timeout_s=5),
        reconnect_grace_s=10,
        on_partner_left="end",
        rtt_interval_s=0.1,
        slow_connection=SlowConnection(max_rtt_ms=150, warn_after_s=0.3, end_after_s=0.3),
    )
    app = make_test_app(game_study(game, experiment_id="away"), tmp_path / "data")
    with TestClient(app) as client, ScriptedParticipant(client) as a:
        b = ScriptedParticipant(client).connect()
        for p in (b, a):
            status, _ = p.receive_until(
                lambda m: m["type"] == "game_status" and m.get("game_id") and m["phase"] != "matching"
            )
            p.game_ready(status["game_id"])
        reader = threading.Thread(target=_read_for, args=(a, 3.5))
        reader.start()
        _read_for(b, 0.5)
        b.answer_rtt_probes = False  # the page goes (a reload): its last probes stay unanswered
        _read_for(b, 0.15)
        b.close()
        time.sleep(1.5)  # away: well past the rule's 0.6 s
        with ScriptedParticipant(client, token=b.token) as back:
            scene_id = back.scene["scene"]["scene_id"]
            if scene_id == "duel":
                back.receive_until(lambda m: m["type"] == "game_status" and m.get("game_id"))
                back.game_ready(status["game_id"])
                _read_for(back, 1.0)  # back on a new socket, answering on time
            reader.join(10)
    assert scene_id == "duel", "the game went on without them"
    games = read_records(tmp_path / "data", "away", "games")
    assert [g["event"] for g in games if g["event"].startswith("slow_connection")] == []
    assert [g for g in games if g["event"] == "partner_left"] == []
    assert [g["reason"] for g in games if g["event"] == "ended"] in ([], ["server_stopped"])  # at exit


@given(
    st.lists(
        st.tuples(st.floats(0, 1000, allow_nan=False), st.floats(0, 0.5, allow_nan=False)),
        max_size=60,
    ),
    st.floats(0.05, 2),
    st.floats(0.05, 2),
)
def test_the_rule_warns_then_ends_only_after_staying_slow_that_long(
    trips: list[tuple[float, float]], warn_after_s: float, end_after_s: float
) -> None:
    """Any sequence of round trips (ms, and the seconds since the previous one): a warning only
    after every round trip was over the limit for ``warn_after_s``, an end only after a warning
    and ``end_after_s`` more, a recovery only after a warning, and no event for fast ones."""
    rule = SlowConnection(max_rtt_ms=300, warn_after_s=warn_after_s, end_after_s=end_after_s)
    link = Link()
    now = 0.0
    slow_from: float | None = None  # when the current run of slow round trips began
    warned = False
    for rtt, dt in trips:
        now += dt
        event = link.judge(rule, rtt, now)
        if rtt <= 300:
            assert event == ("slow_connection_recovered" if warned else None)
            slow_from, warned = None, False
            continue
        if slow_from is None:
            slow_from = now
        slow_for = now - slow_from
        if event == "slow_connection_warned":
            assert not warned and slow_for >= warn_after_s
            warned = True
        elif event == "slow_connection_ended":
            assert warned and slow_for >= warn_after_s + end_after_s
        else:
            assert event is None
            assert warned or slow_for < warn_after_s
            assert not warned or slow_for < warn_after_s + end_after_s
