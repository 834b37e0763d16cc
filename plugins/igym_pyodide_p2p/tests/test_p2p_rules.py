"""The ``pyodide_p2p`` runtime's rules on a real ``igym run`` server: a tampered page, partners who
leave (the ``end`` and ``bot`` rules), a reload within the grace period, bad messages, and
``igym check``'s refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from honest_page import batches  # noqa: E402
from live_records import assert_one_saving_pause  # noqa: E402
from p2p_peer import Peer, p2p_episode, pair  # noqa: E402
from test_p2p_runtime import EXPERIMENT, records, route, send_episode, serve  # noqa: E402

from igym_core.testing import read_records  # noqa: E402


def started(url: str) -> tuple[Peer, Peer, str, list[dict[str, Any]]]:
    """A matched pair whose routes are reported and whose first episode was issued to both."""
    authority, other, game_id = pair(url)
    route(authority, game_id)
    route(other, game_id, "direct")
    issued = [peer.next("pyodide_episode") for peer in (authority, other)]
    return authority, other, game_id, issued


def test_a_tampered_page_is_noticed_and_the_honest_page_s_records_stay(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        authority, other, game_id, issued = started(server.url)

        def tamper(steps: list[dict[str, Any]], hashes: list[list[Any]]) -> None:
            steps[19]["rewards"]["left"] = 9.0  # frame 20: a reward the env never gave
            steps[29]["actions"]["right"] = (
                steps[29]["actions"]["right"] + 1
            ) % 6  # frame 30: another action
            hashes[2][1] = "0" * 64  # the hash at frame 20

        # Episode 1: the honest page reports first; its frames are the stored ones.
        send_episode(authority, game_id, issued[0], first_batch=1)
        send_episode(other, game_id, issued[1], first_batch=1, tamper=tamper)
        rows = records(server, "steps", lambda rows: len(rows) >= 180)
        honest, _hashes = p2p_episode(issued[0]["seed"], seat="left")
        by_key = {(r["episode"], r["step"], r["agent"]): r for r in rows}
        assert len(rows) == 180 and len(by_key) == 180
        assert all(
            by_key[(1, s["step"], a)]["reward"] == s["rewards"][a] for s in honest for a in ("left", "right")
        )
        assert all(
            by_key[(1, s["step"], a)]["action"] == s["actions"][a] for s in honest for a in ("left", "right")
        )
        found = records(server, "p2p_disagreements", lambda rows: len(rows) >= 3)
        assert sorted((d["step"], d["field"], d["agent"]) for d in found) == [
            (20, "reward", "left"),
            (20, "state_hash", None),
            (30, "action", "right"),
        ]
        reward = next(d for d in found if d["field"] == "reward")
        assert reward["values"] == {"left": honest[19]["rewards"]["left"], "right": 9.0}
        assert reward["game_id"] == game_id and reward["episode"] == 1

        # Episode 2: the tampered page reports first; the server cannot tell who is right, but
        # it notices, and the honest page's values are in the disagreement rows.
        second = [peer.next("pyodide_episode") for peer in (authority, other)]
        send_episode(other, game_id, second[1], first_batch=7, tamper=tamper)
        send_episode(authority, game_id, second[0], first_batch=7)
        found = records(server, "p2p_disagreements", lambda rows: len(rows) >= 6)
        assert sorted((d["episode"], d["step"], d["field"]) for d in found if d["episode"] == 2) == [
            (2, 20, "reward"),
            (2, 20, "state_hash"),
            (2, 30, "action"),
        ]
        assert (
            Counter(
                (r["episode"], r["step"], r["agent"])
                for r in records(server, "steps", lambda r: len(r) >= 360)
            ).most_common(1)[0][1]
            == 1
        )
        for peer in (authority, other):
            assert peer.next("scene")["scene"]["kind"] == "end"
            assert peer.errors() == []
        # igym verify: episode 1 (the honest copy stored) matches a re-run; episode 2 (the tampered
        # copy stored) does not; both are named as games whose pages disagreed.
        result = subprocess.run(
            [sys.executable, "-m", "igym_core.cli", "verify", str(server.data_dir / EXPERIMENT)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"DIFFERS game {game_id} (scene slime_p2p) episode 2" in result.stdout
        assert "episode 1 " not in result.stdout
        assert (
            f"NOTE game {game_id}: its two pages' records differ (p2p_disagreements: action 2, reward 2, "
            "state_hash 2)" in result.stdout
        )


def test_a_partner_who_leaves_ends_the_game_with_the_end_rule(tmp_path: Path) -> None:
    with serve(tmp_path, options={"reload_grace_s": 1.0, "partner_lost_s": 1.0}) as server:
        authority, other, game_id, issued = started(server.url)
        steps, hashes = p2p_episode(issued[0]["seed"], seat="left")
        for batch in batches(game_id, 1, steps[:30], hashes, first_batch=1):
            assert authority.send_batch(batch)["type"] == "batch_ack"
        other.close()
        authority.send(
            {
                "type": "p2p_event",
                "game_id": game_id,
                "kind": "partner_lost",
                "episode": 1,
                "frame": 31,
                "detail": {},
            }
        )
        assert authority.next("p2p_partner")["state"] == "reloading"
        # Past the reload grace: the scene's rule (end) sends the remaining player on.
        status = authority.next("game_status", phase="ended", timeout=10)
        assert "partner" in status["message"].lower() or status["message"]
        assert authority.next("scene")["scene"]["kind"] == "end"
        games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
        left = next(g for g in games if g["event"] == "partner_left")
        assert (left["seat"], left["outcome"]) == ("right", "end")
        assert [g["reason"] for g in games if g["event"] == "ended"] == ["partner_left"]
        episodes = records(server, "episodes", lambda rows: len(rows) >= 1)
        assert [(e["episode"], e["steps"], e["end_reason"]) for e in episodes] == [(1, 30, "partner_left")]
        events = read_records(server.data_dir, EXPERIMENT, "p2p_events")
        assert [(e["kind"], e["seat"], e["frame"]) for e in events] == [("partner_lost", "left", 31)]
        # The frames only the authority reported are recorded as such.
        unconfirmed = read_records(server.data_dir, EXPERIMENT, "p2p_disagreements")
        assert {d["field"] for d in unconfirmed} == {"unconfirmed"} and len(unconfirmed) >= 30


def test_a_connected_but_silent_partner_is_lost_and_a_page_cannot_push_out_a_playing_one(
    tmp_path: Path,
) -> None:
    with serve(tmp_path, options={"partner_lost_s": 1.0}) as server:
        authority, other, game_id, issued = started(server.url)
        steps, hashes = p2p_episode(issued[0]["seed"], seat="left")
        sent = batches(game_id, 1, steps, hashes, first_batch=1)
        lost = {
            "type": "p2p_event",
            "game_id": game_id,
            "kind": "partner_lost",
            "episode": 1,
            "frame": 1,
            "detail": {},
        }
        # Both pages are sending steps: a partner_lost claim is recorded and changes nothing.
        assert authority.send_batch(sent[0])["type"] == "batch_ack"
        assert other.send_batch(sent[0])["type"] == "batch_ack"
        other.send(lost)
        authority.send_batch(sent[1])
        assert [
            m for m in authority.received if m.get("type") == "game_status" and m["phase"] == "ended"
        ] == []
        # The right page stays connected but sends nothing for more than partner_lost_s.
        time.sleep(1.2)
        assert authority.send_batch(sent[2])["type"] == "batch_ack"
        authority.send(lost)
        assert authority.next("game_status", phase="ended", timeout=10)
        games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
        assert [(g["seat"], g["outcome"]) for g in games if g["event"] == "partner_left"] == [
            ("right", "end")
        ]


def test_with_the_bot_rule_the_remaining_page_plays_on_with_the_partner_policy(tmp_path: Path) -> None:
    with serve(tmp_path, options={"reload_grace_s": 1.0}, partner_left="bot") as server:
        authority, other, game_id, issued = started(server.url)
        spec = authority.scene["scene"]["runtime_view"]["game"]
        assert (
            spec["human_seats"] == ["left", "right"] and spec["partner_policies"]["right"]["kind"] == "random"
        )
        steps, hashes = p2p_episode(issued[0]["seed"], seat="left")
        sent = batches(game_id, 1, steps, hashes, first_batch=1)
        assert authority.send_batch(sent[0])["type"] == "batch_ack"
        other.close()
        assert authority.next("p2p_partner", timeout=5)["state"] == "reloading"
        assert authority.next("p2p_partner", timeout=10)["state"] == "left"
        # From here the partner seat is a bot in this page: its steps say so, and are taken.
        for batch in sent[1:]:
            for step in batch["steps"]:
                step["sources"]["right"] = "bot"
            assert authority.send_batch(batch)["type"] == "batch_ack"
        authority.send(
            {"type": "episode_done", "game_id": game_id, "episode": 1, "steps": 90, "end_reason": "truncated"}
        )
        second = authority.next("pyodide_episode")
        assert second["episode"] == 2
        send_episode(authority, game_id, second, first_batch=7)
        assert authority.next("scene")["scene"]["kind"] == "end"
        assert authority.errors() == []
        rows = records(server, "steps", lambda rows: len(rows) >= 360)
        assert len({(r["episode"], r["step"], r["agent"]) for r in rows}) == 360 == len(rows)
        assert {
            r["action_source"] for r in rows if r["agent"] == "right" and r["episode"] == 1 and r["step"] > 15
        } == {"bot"}
        games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
        assert [(g["seat"], g["outcome"]) for g in games if g["event"] == "partner_left"] == [
            ("right", "bot")
        ]
        assert [g["reason"] for g in games if g["event"] == "ended"] == ["completed"]


def test_a_reload_within_the_grace_period_resumes_from_the_partner(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        authority, other, game_id, issued = started(server.url)
        token = other.welcome["token"]
        left, left_hashes = p2p_episode(issued[0]["seed"], seat="left")
        right, right_hashes = p2p_episode(issued[1]["seed"], seat="right")
        left_batches = batches(game_id, 1, left, left_hashes, first_batch=1)
        right_batches = batches(game_id, 1, right, right_hashes, first_batch=1)
        for batch in right_batches[:2]:
            assert other.send_batch(batch)["type"] == "batch_ack"
        other.close()
        assert authority.next("p2p_partner", timeout=5)["state"] == "reloading"

        again = Peer(server.url, token=token)
        assert again.next("game_status")["game_id"] == game_id
        again.loaded(game_id)
        start = again.next("p2p_start")
        assert (start["seat"], start["resume"], start["authority"]) == ("right", True, False)
        episode = again.next("pyodide_episode")
        assert (episode["episode"], episode["seed"], episode["next_batch"]) == (1, issued[0]["seed"], 3)
        back = authority.next("p2p_partner", state="back", resume=True)
        assert back["game_id"] == game_id
        # The resumed page plays on from the partner's state (frame 61 on): its batches are taken.
        resumed = batches(game_id, 1, right[60:], [h for h in right_hashes if h[0] > 60], first_batch=3)
        for batch in resumed:
            assert again.send_batch(batch)["type"] == "batch_ack", again.errors()
        for batch in left_batches:
            assert authority.send_batch(batch)["type"] == "batch_ack"
        for peer, n in ((authority, 90), (again, 90)):
            peer.send(
                {
                    "type": "episode_done",
                    "game_id": game_id,
                    "episode": 1,
                    "steps": n,
                    "end_reason": "truncated",
                }
            )
        assert authority.next("pyodide_episode")["episode"] == 2
        assert again.next("pyodide_episode")["episode"] == 2
        rows = records(server, "steps", lambda rows: len(rows) >= 180)
        assert len({(r["episode"], r["step"], r["agent"]) for r in rows}) == 180 == len(rows)
        games = read_records(server.data_dir, EXPERIMENT, "games")
        assert [(g["seat"], g["rule"]) for g in games if g["event"] == "reloaded"] == [("right", "resume")]
        assert not [g for g in games if g["event"] == "partner_left"]
        gaps = records(server, "p2p_disagreements", lambda rows: len(rows) >= 30)
        assert {d["field"] for d in gaps} == {"unconfirmed"}
        assert {d["step"] for d in gaps if d["values"].get("right", "x") is None} == set(range(31, 61)) | {
            40,
            50,
            60,
        }


def test_bad_messages_are_refused_with_errors_and_the_game_goes_on(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        authority, other, game_id, issued = started(server.url)
        bad = [
            {"type": "p2p_signal", "game_id": game_id, "signal": {"sdp": "x" * 17_000}},
            {"type": "p2p_signal", "game_id": game_id, "signal": "offer"},
            {"type": "p2p_relay", "game_id": game_id, "data": b"x" * 9000},
            {"type": "p2p_relay", "game_id": game_id, "data": "text"},
            {"type": "p2p_relay", "game_id": "not-this-game", "data": b"x"},
            {"type": "p2p_event", "game_id": game_id, "kind": "hacked", "episode": 1, "frame": 1},
            {"type": "p2p_event", "game_id": game_id, "kind": "resumed", "episode": "1", "frame": 1},
            {
                "type": "p2p_event",
                "game_id": game_id,
                "kind": "resumed",
                "episode": 1,
                "frame": 1,
                "detail": {"x": "y" * 3000},
            },
            {
                "type": "p2p_route",
                "game_id": game_id,
                "route": "carrier pigeon",
                "rtt_ms": 1,
                "input_delay": 2,
            },
            {"type": "p2p_route", "game_id": game_id, "route": "relay", "rtt_ms": -5, "input_delay": 2},
            {"type": "p2p_route", "game_id": game_id, "route": "relay", "rtt_ms": 5, "input_delay": 9},
        ]
        for message in bad:
            other.send(message)
            reply = other.next("error", timeout=5)
            assert reply["code"] in ("bad_message", "wrong_game", "not_in_game"), (message["type"], reply)
        # A signal flood: the first 300 are forwarded, the rest refused.
        for n in range(305):
            other.send({"type": "p2p_signal", "game_id": game_id, "signal": {"candidate": n}})
        limits = [other.next("error", timeout=5) for _ in range(5)]
        assert {e["code"] for e in limits} == {"p2p_signal_limit"}
        # Route reports past 50 in a game are refused (each writes a record).
        for _ in range(49):  # the 50th: started() reported one
            route(other, game_id, "direct")
        route(other, game_id, "direct")
        assert other.next("error", timeout=5)["code"] == "p2p_route_limit"
        # A relay flood: at most 240 a second reach the partner, the rest are dropped and counted.
        for n in range(320):
            authority.send({"type": "p2p_relay", "game_id": game_id, "data": n.to_bytes(2, "big")})
        other.drain(1.0)
        relayed = [m for m in other.received if m.get("type") == "p2p_relay"]
        assert 0 < len(relayed) <= 240
        # The game goes on: both pages' honest episodes are taken.
        send_episode(authority, game_id, issued[0], first_batch=1)
        send_episode(other, game_id, issued[1], first_batch=1)
        assert authority.next("pyodide_episode")["episode"] == 2
        signals = [m for m in authority.received if m.get("type") == "p2p_signal"]
        assert len(signals) == 300
        assert records(server, "p2p_disagreements", lambda rows: True) == []
        assert read_records(server.data_dir, EXPERIMENT, "p2p_events") == []
        authority.close()
        other.close()
        games = records(server, "games", lambda rows: any(r["event"] == "p2p_summary" for r in rows))
        summary = next(g for g in games if g["event"] == "p2p_summary")
        assert summary["pages"]["right"]["signals"] == 300
        assert summary["pages"]["left"]["relay_dropped"] >= 80
        assert len([g for g in games if g["event"] == "p2p_route"]) == 51


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("one_human", "exactly two participants per game"),
        ("one_human", "no bot seats for now"),
        ("no_rollback", "it lacks get_state, set_state, state_hash"),
        ("small_state_bound", "more than max_state_bytes=8192"),
        ("server_only_partner", "$.scenes[0].partner_policy.target"),
        ("onnx_partner", "cannot play an ONNX policy for a partner who left"),
    ],
)
def test_igym_check_refuses_what_cannot_run_peer_to_peer(target: str, words: str) -> None:
    study = HERE / "studies" / "slime_p2p.py"
    result = subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "check", f"{study}:{target}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=study.parent,
    )
    assert result.returncode != 0
    assert words in result.stdout + result.stderr


def test_a_page_reloading_at_the_end_of_an_episode_does_not_hold_its_partner_there(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        authority, other, game_id, issued = started(server.url)
        token = other.welcome["token"]
        right, right_hashes = p2p_episode(issued[1]["seed"], seat="right")
        for batch in batches(game_id, 1, right[:30], right_hashes, first_batch=1):
            assert other.send_batch(batch)["type"] == "batch_ack"
        other.close()
        assert authority.next("p2p_partner", timeout=5)["state"] == "reloading"
        # The authority confirms the episode to its end: the next one starts (well within the
        # 30 s grace), issued to both; the reloading page gets it when it is back.
        send_episode(authority, game_id, issued[0], first_batch=1)
        second = authority.next("pyodide_episode", timeout=5)
        assert second["episode"] == 2

        again = Peer(server.url, token=token)
        again.loaded(game_id)
        assert again.next("p2p_start")["resume"] is True
        resumed = again.next("pyodide_episode")
        assert (resumed["episode"], resumed["seed"], resumed["next_batch"]) == (2, second["seed"], 3)
        episodes = records(server, "episodes", lambda rows: len(rows) >= 1)
        assert [(e["episode"], e["steps"], e["end_reason"]) for e in episodes] == [(1, 90, "truncated")]
        assert records(server, "steps", lambda rows: len(rows) >= 180)[-1]["episode"] == 1


def test_turn_servers_from_the_environment_reach_the_pages_and_never_the_data(tmp_path: Path) -> None:
    from igym_core.settings import Settings

    secret = "s3cret-turn-credential"
    ice = [{"urls": "turn:turn.example.org:3478", "username": "igym", "credential": secret}]
    env = {"IGYM_P2P_ICE_SERVERS": json.dumps(ice), "IGYM_LOG_LEVEL": "debug"}
    # The settings hold the credential and never show it: not in their repr (what a log line or a
    # traceback that names the settings would print), not in the server's log (every line, at debug).
    settings = Settings.from_env(env)
    assert settings.p2p_ice_servers is not None and settings.p2p_ice_servers[0]["credential"] == secret
    assert secret not in repr(settings) and secret not in str(settings)
    with serve(tmp_path, env=env) as server:
        authority, other, _game_id = pair(server.url)
        assert (
            authority.start["ice_servers"]
            == other.start["ice_servers"]
            == [{"urls": ["turn:turn.example.org:3478"], "username": "igym", "credential": secret}]
        )
        authority.close()
        other.close()
        records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
    log_lines = server.log().splitlines()
    assert any('"debug"' in line for line in log_lines), log_lines[:5]  # the log is at debug level
    assert not [line for line in log_lines if secret in line]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert server.log_path in written and any(p.name.endswith(".jsonl") for p in written)
    assert not [p for p in written if secret in p.read_text(errors="replace")]


def test_no_new_episode_starts_for_either_page_while_the_data_cannot_be_saved(tmp_path: Path) -> None:
    from igym_core.testing.full_disk import mount_full_disk
    from tests.conftest import LiveServer

    study = f"{HERE / 'studies' / 'slime_p2p.py'}:experiment"
    with mount_full_disk(tmp_path / "disk", size_kib=1024) as disk:
        with LiveServer(study, disk.path, env={"IGYM_MAX_UNSAVED_BYTES": "0"}) as server:
            authority, other, game_id, issued = started(server.url)
            disk.fill()
            send_episode(authority, game_id, issued[0], first_batch=1)  # the episode under way is played out
            send_episode(other, game_id, issued[1], first_batch=1)
            for peer in (authority, other):
                paused = peer.next("game_status", phase="paused", timeout=15)
                assert paused["pause_reason"] == "saving"
            issued_again = [m for m in authority.received + other.received if m["type"] == "pyodide_episode"]
            assert [m["episode"] for m in issued_again] == [1, 1]
            disk.free()
            second = [peer.next("pyodide_episode", timeout=20) for peer in (authority, other)]
            assert second[0] == second[1] and second[0]["episode"] == 2 and second[0]["next_batch"] == 7
        assert_one_saving_pause(disk.path, EXPERIMENT, {1: 180})


def test_a_page_that_cannot_load_sends_both_players_on_and_a_slow_one_times_out(tmp_path: Path) -> None:
    with serve(tmp_path, options={"load_timeout_s": 5}) as server:
        pages = [Peer(server.url), Peer(server.url)]
        for peer in pages:
            peer.join()
        game_id = pages[0].loading()
        assert pages[1].loading() == game_id
        pages[0].loaded(game_id)
        pages[1].send(
            {"type": "runtime_load_failed", "game_id": game_id, "stage": "packages", "message": "no"}
        )
        for peer in pages:
            assert peer.next("scene")["scene"]["kind"] == "end"
            assert not [m for m in peer.received if m["type"] == "p2p_start"]
        # The next pair: one page loads, the other never says so.
        late = [Peer(server.url), Peer(server.url)]
        for peer in late:
            peer.join()
        second_game = late[0].loading()
        assert late[1].loading() == second_game
        late[0].loaded(second_game)
        for peer in late:
            assert peer.next("scene", timeout=15)["scene"]["kind"] == "end"
        games = records(server, "games", lambda rows: len([r for r in rows if r["event"] == "ended"]) >= 2)
        ended = {g["game_id"]: g["reason"] for g in games if g["event"] == "ended"}
        assert ended == {game_id: "runtime_load_failed", second_game: "load_timeout"}
        timeout = next(g for g in games if g["event"] == "load_timeout")
        assert timeout["loaded"] == [
            next(g["seat"] for g in games if g["event"] == "runtime_loaded" and g["game_id"] == second_game)
        ]
        sessions = records(server, "sessions", lambda rows: True)
        outcomes = [
            s["detail"]["outcome"]
            for s in sessions
            if s["event"] == "scene_left" and s["scene_id"] == "slime_p2p"
        ]
        assert outcomes == ["runtime_load_failed"] * 4


def test_a_game_nobody_is_connected_to_is_abandoned(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        authority, other, game_id, issued = started(server.url)
        steps, hashes = p2p_episode(issued[0]["seed"], seat="left")
        assert (
            authority.send_batch(batches(game_id, 1, steps, hashes, first_batch=1)[0])["type"] == "batch_ack"
        )
        authority.close()
        other.close()
        games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
        assert [g["reason"] for g in games if g["event"] == "ended"] == ["abandoned"]
        episodes = records(server, "episodes", lambda rows: len(rows) >= 1)
        assert [(e["episode"], e["steps"], e["end_reason"]) for e in episodes] == [(1, 15, "abandoned")]
