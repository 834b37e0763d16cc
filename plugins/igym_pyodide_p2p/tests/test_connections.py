"""Each player's connection during a ``pyodide`` game, measured by the server (a real ``igym run``, a
page over a real socket): the round-trip probes and the page's echoes, the ``connection_stats`` rows
with the steps the page sent, the admin dashboard's RTT and step rate, and the scene's
slow-connection rule (warned, then the game ends with the outcome ``slow_connection``)."""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from websockets.sync.client import connect

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from honest_page import batches, play_episode  # noqa: E402
from live_records import records_when  # noqa: E402
from p2p_peer import Peer  # noqa: E402
from page_client import Page  # noqa: E402
from test_p2p_rules import started  # noqa: E402
from test_p2p_runtime import serve  # noqa: E402

from igym_core.testing import read_records  # noqa: E402
from tests.conftest import LiveServer  # noqa: E402

STUDY = f"{HERE / 'studies' / 'slime_pyodide.py'}"
EXPERIMENT = "slime_pyodide"
TOKEN = "admin-token-for-the-monitoring-test-0"


def _admin_cookie(server: LiveServer) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(
        "POST",
        "/admin/login",
        body=urlencode({"token": TOKEN}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = connection.getresponse()
    assert response.status == 303
    cookie = response.headers["Set-Cookie"].split(";")[0]
    connection.close()
    return cookie


def _answer_probes(page: Page, late_s: float, until_s: float, stop: str | None = None) -> list[dict]:
    """Answer every round-trip probe ``late_s`` late for ``until_s`` (or until a ``game_status`` of
    phase ``stop``); the other messages read meanwhile."""
    others = []
    deadline = time.monotonic() + until_s
    while time.monotonic() < deadline:
        try:
            message = page.recv(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        if message.get("type") == "rtt_probe":
            time.sleep(late_s)
            page.send({"type": "rtt_echo", "game_id": message["game_id"], "n": message["n"]})
            continue
        others.append(message)
        if stop and message.get("type") == "game_status" and message.get("phase") == stop:
            break
    return others


def test_a_browser_run_games_round_trips_and_steps_are_recorded_and_shown(tmp_path: Path) -> None:
    with LiveServer(f"{STUDY}:monitored", tmp_path / "data", env={"IGYM_ADMIN_TOKEN": TOKEN}) as server:
        page = Page(server.url)
        game_id = page.to_game()
        page.loaded(game_id)
        issued = page.next("pyodide_episode")
        steps, hashes = play_episode(issued["seed"], max_steps=issued["max_steps"])
        sent = batches(game_id, 1, steps, hashes, first_batch=1)
        # The page answers its probes on time while it plays the first half of the episode.
        for batch in sent[: len(sent) // 2]:
            page.send(batch)
            _answer_probes(page, 0.0, 0.35)
        with connect(
            f"ws://127.0.0.1:{server.port}/admin/ws", additional_headers={"Cookie": _admin_cookie(server)}
        ) as admin:
            shown = []
            while len(shown) < 3:  # one snapshot a second: the rate needs two
                page.send(sent[len(sent) // 2 + len(shown)])
                _answer_probes(page, 0.0, 0.1)
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:  # the page keeps answering meanwhile
                    try:
                        snapshot = json.loads(admin.recv(timeout=0.05))
                    except TimeoutError:
                        _answer_probes(page, 0.0, 0.05)
                        continue
                    (game,) = snapshot["games"]
                    shown.append(game)
                    break
        assert all(g["game_id"] == game_id and g["phase"] == "playing" for g in shown)
        rtt = shown[-1]["rtt_ms"][page.welcome["participant_id"]]
        assert rtt is not None and 0 <= rtt < 2000  # (a loaded machine's figure: judged below)
        assert shown[-1]["measured_fps"] is not None and shown[-1]["measured_fps"] > 0
        for batch in sent[len(sent) // 2 + len(shown) :]:
            page.send(batch)
        _answer_probes(page, 0.0, 0.3)
        page.send(
            {"type": "episode_done", "game_id": game_id, "episode": 1, "steps": 90, "end_reason": "truncated"}
        )
        _answer_probes(page, 0.0, 5, stop="ended")
        page.close()
        ended = records_when(server.data_dir, EXPERIMENT, "games", lambda r: r[-1]["event"] == "ended")
    rows = read_records(server.data_dir, EXPERIMENT, "connection_stats")  # the last written before "ended"
    episodes = read_records(server.data_dir, EXPERIMENT, "episodes")
    pid = page.welcome["participant_id"]
    assert {r["participant_id"] for r in rows} == {pid} and {r["seat"] for r in rows} == {"left"}
    assert sum(r["steps_received"] for r in rows) == len(steps) == 90
    assert all(r["frames_sent"] is None and r["bytes_sent"] is None for r in rows)  # the page draws
    answered = sum(r["probes_answered"] for r in rows)
    assert answered == sum(len(r["rtt_ms"]) for r in rows) >= 5
    assert all(0 <= v < 2000 for r in rows for v in r["rtt_ms"])
    assert episodes[0]["rtt_ms"][pid]["n"] == answered
    assert not [g for g in ended if g["event"].startswith("slow_connection")]
    assert [g["reason"] for g in ended if g["event"] == "ended"] == ["completed"]


def test_a_page_whose_echoes_come_back_late_is_warned_then_its_game_ends(tmp_path: Path) -> None:
    with LiveServer(f"{STUDY}:slow_rule", tmp_path / "data") as server:
        page = Page(server.url)
        game_id = page.to_game()
        page.loaded(game_id)
        page.next("pyodide_episode")
        # Every echo 600 ms late (the rule's limit is 300 ms): warned after 0.4 s, ended 0.4 s later.
        seen = _answer_probes(page, 0.6, 15, stop="ended")
        statuses = [m for m in seen if m.get("type") == "game_status"]
        notices = [s["notice"] for s in statuses if s.get("notice")]
        assert notices and "connection to the study server is slow" in notices[0]
        assert statuses[-1]["phase"] == "ended"
        assert (
            statuses[-1]["message"]
            == "The game ended because your connection to the study server was too slow."
        )
        assert page.next("scene")["scene"]["scene_id"] == "after_game"  # moved on
        page.close()
        sessions = records_when(
            server.data_dir,
            EXPERIMENT,
            "sessions",
            lambda r: any(x["event"] == "scene_left" and x["scene_id"] == "slime" for x in r),
        )
        rows = records_when(server.data_dir, EXPERIMENT, "connection_stats", lambda r: len(r) >= 1)
    games = read_records(server.data_dir, EXPERIMENT, "games")
    slow = [g for g in games if g["event"].startswith("slow_connection")]
    assert [g["event"] for g in slow] == ["slow_connection_warned", "slow_connection_ended"]
    assert slow[1]["rtt_ms"] > 300 and slow[1]["slow_for_s"] >= 0.8 and slow[1]["seat"] == "left"
    assert [g["reason"] for g in games if g["event"] == "ended"] == ["slow_connection"]
    (episode,) = read_records(server.data_dir, EXPERIMENT, "episodes")
    assert episode["end_reason"] == "slow_connection"
    left = [s for s in sessions if s["event"] == "scene_left" and s["scene_id"] == "slime"]
    assert left[0]["detail"]["reason"] == "slow_connection"
    assert all(v >= 600 for r in rows for v in r["rtt_ms"]) and any(r["rtt_ms"] for r in rows)


def test_in_a_p2p_game_the_player_whose_echoes_come_back_late_gets_the_partner_left_rule(
    tmp_path: Path,
) -> None:
    server = serve(tmp_path, env={"IGYM_TEST_P2P_SLOW_MS": "400"}, partner_left="end")
    try:
        authority, other, _game_id, _issued = started(server.url)
        seen: dict[str, list[dict]] = {}

        def answer(peer: Peer, late_s: float) -> None:
            seen[peer.welcome["participant_id"]] = _answer_probes(peer, late_s, 15, stop="ended")

        pages = [
            threading.Thread(target=answer, args=(authority, 0.0)),
            threading.Thread(target=answer, args=(other, 0.7)),
        ]
        for thread in pages:
            thread.start()
        for thread in pages:
            thread.join(20)
        slow_id, fast_id = other.welcome["participant_id"], authority.welcome["participant_id"]
        notices = [
            m.get("notice") for m in seen[slow_id] if m.get("type") == "game_status" and m.get("notice")
        ]
        assert notices and "connection to the study server is slow" in notices[0]
        assert not [m for m in seen[fast_id] if m.get("type") == "game_status" and m.get("notice")]
        assert authority.next("scene")["scene"]["kind"] == "end"
        games = records_when(server.data_dir, "slime_p2p", "games", lambda r: r[-1]["event"] == "ended")
        sessions = records_when(
            server.data_dir, "slime_p2p", "sessions", lambda r: any(x["event"] == "finished" for x in r)
        )
    finally:
        server.stop()
    slow = [g for g in games if g["event"].startswith("slow_connection")]
    assert [(g["event"], g["participant_id"]) for g in slow] == [
        ("slow_connection_warned", slow_id),
        ("slow_connection_ended", slow_id),
    ]
    left = [g for g in games if g["event"] == "partner_left"]
    assert [(g["left"], g["seat"], g["outcome"]) for g in left] == [(slow_id, "right", "end")]
    assert [g["reason"] for g in games if g["event"] == "ended"] == ["partner_left"]
    finished = {s["participant_id"]: s["detail"]["outcome"] for s in sessions if s["event"] == "finished"}
    assert finished.get(fast_id) == "partner_left"
    rows = read_records(server.data_dir, "slime_p2p", "connection_stats")
    by_player = {
        pid: [v for r in rows if r["participant_id"] == pid for v in r["rtt_ms"]]
        for pid in (slow_id, fast_id)
    }
    assert by_player[slow_id] and min(by_player[slow_id]) >= 700
    fast = sorted(by_player[fast_id])
    assert fast and fast[len(fast) // 2] < 400


def test_with_the_bot_rule_the_slow_players_seat_goes_to_the_partner_policy_and_the_game_goes_on(
    tmp_path: Path,
) -> None:
    server = serve(tmp_path, env={"IGYM_TEST_P2P_SLOW_MS": "400"}, partner_left="bot")
    try:
        authority, other, _game_id, _issued = started(server.url)
        told: dict[str, dict] = {}

        def stay(peer: Peer) -> None:  # answers on time (until the test has what it needs)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and "done" not in told:
                message = peer.recv(timeout=max(0.01, deadline - time.monotonic()))
                if message.get("type") == "rtt_probe":
                    peer.send({"type": "rtt_echo", "game_id": message["game_id"], "n": message["n"]})
                elif message.get("type") == "p2p_partner" and message.get("state") == "left":
                    told["partner"] = message

        def lag(peer: Peer) -> None:  # answers 700 ms late until its seat is taken
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and "slow" not in told:
                message = peer.recv(timeout=max(0.01, deadline - time.monotonic()))
                if message.get("type") == "rtt_probe":
                    time.sleep(0.7)
                    peer.send({"type": "rtt_echo", "game_id": message["game_id"], "n": message["n"]})
                elif message.get("type") == "game_status" and "too slow" in message.get("message", ""):
                    told["slow"] = message

        pages = [
            threading.Thread(target=stay, args=(authority,)),
            threading.Thread(target=lag, args=(other,)),
        ]
        for thread in pages:
            thread.start()
        pages[1].join(20)
        slow_id = other.welcome["participant_id"]
        games = records_when(
            server.data_dir, "slime_p2p", "games", lambda r: any(g["event"] == "partner_left" for g in r)
        )
        deadline = time.monotonic() + 10
        while "partner" not in told and time.monotonic() < deadline:
            time.sleep(0.05)
        told["done"] = {}
        pages[0].join(20)
        assert told["partner"]["state"] == "left"
        assert told["slow"]["phase"] == "playing"  # the game goes on, without them
    finally:
        server.stop()
    assert [(g["left"], g["seat"], g["outcome"]) for g in games if g["event"] == "partner_left"] == [
        (slow_id, "right", "bot")
    ]
    slow = [g["event"] for g in games if g["event"].startswith("slow_connection")]
    assert slow == ["slow_connection_warned", "slow_connection_ended"]
    assert not [g for g in games if g["event"] == "ended" and g["reason"] != "server_stopped"]
