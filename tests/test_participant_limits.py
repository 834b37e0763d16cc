"""What an untrusted participant can make a real `igym run` server hold, over a raw WebSocket.

Link parameters, drafts, unknown answer keys, new participants per address, and participant state
that leaves memory and comes back from the records when its owner returns.
"""

from __future__ import annotations

import json
import time
from typing import Any

import msgpack
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from igym_core.testing import poll, read_records
from igym_core.testing.support import SURVEY_STUDY_ANSWERS as ANSWERS

EXAMPLE = "igym_core.examples.survey_study:experiment"
EXPERIMENT_ID = "demo_survey"


class Socket:
    """A participant's socket without a page: hello, then whatever the test sends."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        ws_url = url.replace("http://", "ws://") + "/ws"
        self.ws = connect(ws_url, max_size=None, additional_headers=headers).__enter__()
        self.seq = 0
        self.send({"type": "hello", "protocol": 1, "token": token, "params": params or {}})
        self.first = self.recv()
        self.welcome: dict[str, Any] = {}
        self.scene: dict[str, Any] = {}
        if self.first["type"] == "welcome":
            self.welcome = self.first
            self.scene = self.recv()
        self.scene_seen_at = time.monotonic()

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(msgpack.packb(message))

    def recv_frame(self) -> bytes:
        frame = self.ws.recv(timeout=10)
        assert isinstance(frame, bytes)
        return frame

    def recv(self) -> dict[str, Any]:
        return msgpack.unpackb(self.recv_frame())

    def closed_with(self) -> tuple[int, str]:
        """Wait for the server's close; its code and reason."""
        with pytest.raises(ConnectionClosed):
            self.ws.recv(timeout=10)
        return self.ws.close_code, self.ws.close_reason

    def request(self, kind: str, answers: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        self.send({"type": kind, "seq": self.seq, "position": self.scene["position"], "answers": answers})
        return self.recv()

    def submit(self, answers: dict[str, Any]) -> dict[str, Any]:
        # Like the page: a scene with min_duration_ms cannot be submitted sooner (the server refuses).
        wait_s = (self.scene["scene"].get("min_duration_ms") or 0) / 1000
        time.sleep(max(0.0, self.scene_seen_at + wait_s - time.monotonic()))
        reply = self.request("submit", answers)
        assert reply["type"] == "ack", reply
        self.scene = self.recv()
        self.scene_seen_at = time.monotonic()
        return self.scene

    def walk_to(self, scene_id: str) -> None:
        while self.scene["scene"]["scene_id"] != scene_id:
            self.submit(ANSWERS[self.scene["scene"]["scene_id"]])

    def close(self) -> None:
        self.ws.close()


def _stats(server: Any) -> dict[str, Any]:
    return server.stats()


def _log_events(server: Any, event: str) -> list[dict[str, Any]]:
    out = []
    for line in server.log().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("event") == event:
            out.append(row)
    return out


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = digits[n % 36]
    while n >= 36:
        n //= 36
        out = digits[n % 36] + out
    return out


# --- URL parameters --------------------------------------------------------------------------------


def test_url_parameters_over_the_limits_are_refused_with_a_message_and_a_log_line(live_server) -> None:
    server = live_server(EXAMPLE)
    prolific = {"PROLIFIC_PID": "a" * 24, "STUDY_ID": "b" * 24, "SESSION_ID": "c" * 32}
    fine = Socket(server.url, params={**prolific, **{f"utm_{i}": "x" * 256 for i in range(13)}})
    assert fine.welcome["type"] == "welcome"  # 16 parameters, values of 256 characters: accepted
    fine.close()
    cases = {
        "count": {f"p{i}": "1" for i in range(17)},
        "name": {"n" * 65: "1"},
        "value": {"PROLIFIC_PID": "v" * 257},
        "the QA run": {f"param_{i}": "z" * 512 for i in range(63)},
    }
    for case, params in cases.items():
        refused = Socket(server.url, params=params)
        assert refused.first["type"] == "error", case
        assert refused.first["code"] == "url_params", case
        message = refused.first["message"]
        assert "at most" in message and "link you were given" in message, message
        assert len(message) < 400, message  # names the problem, does not echo the parameters
        assert refused.closed_with() == (1008, "url_params"), case
    assert len(_log_events(server, "participant_refused")) == len(cases)
    assert all(e["reason"] == "url_params" for e in _log_events(server, "participant_refused"))
    # nobody was created or recorded for the refused links
    assert _stats(server)["participants"] == 1

    def joined() -> list[dict[str, Any]]:
        return [e for e in read_records(server.data_dir, EXPERIMENT_ID, "sessions") if e["event"] == "joined"]

    poll(joined, what="the accepted participant's records", timeout_s=15)
    time.sleep(0.6)  # one more flush interval: nothing else arrives
    assert len(joined()) == 1


def test_url_parameter_limits_are_settings(live_server) -> None:
    server = live_server(
        EXAMPLE,
        env={
            "IGYM_MAX_URL_PARAMS": "2",
            "IGYM_MAX_URL_PARAM_NAME_CHARS": "600",
            "IGYM_MAX_URL_PARAM_VALUE_CHARS": "600",
        },
    )
    long = Socket(server.url, params={"k" * 600: "v" * 600})
    assert long.welcome["type"] == "welcome"
    three = Socket(server.url, params={"a": "1", "b": "2", "c": "3"})
    assert three.first["code"] == "url_params" and "at most 2" in three.first["message"]
    long.close()


# --- drafts ----------------------------------------------------------------------------------------


def test_drafts_keep_only_the_scenes_own_answers_within_a_size(live_server) -> None:
    server = live_server(EXAMPLE, env={"IGYM_MAX_DRAFT_BYTES": "2048"})
    p = Socket(server.url)
    p.walk_to("about_you")
    token = p.welcome["token"]

    kept = {"nickname": "half-typed", "devices": ["pc"]}
    assert p.request("draft", kept)["type"] == "ack"
    # keys the scene does not ask for: refused, not stored, the error names a few and counts them
    junk = {f"junk_{i}": "x" for i in range(5000)}
    reply = p.request("draft", {"nickname": "other", **junk})
    assert (reply["type"], reply["code"]) == ("error", "unknown_answers")
    assert "5000" in reply["message"] and "'junk_0'" in reply["message"] and "junk_4" not in reply["message"]
    # too large (57 KiB in the QA run; here over the 2 KiB setting): refused, not stored
    reply = p.request("draft", {"nickname": "y" * 3000})
    assert (reply["type"], reply["code"]) == ("error", "draft_too_large")
    assert "2048" in reply["message"]
    p.close()

    # a reload shows the last accepted draft: typed text survives, the refused ones were not kept
    back = Socket(server.url, token=token)
    assert back.welcome["resumed"] is True
    assert back.scene["scene"]["scene_id"] == "about_you"
    assert back.scene["draft"] == kept
    back.close()


# --- submits ---------------------------------------------------------------------------------------


def test_unknown_answer_keys_are_refused_not_echoed_and_not_recorded_in_full(live_server) -> None:
    server = live_server(EXAMPLE)
    p = Socket(server.url)
    p.walk_to("about_you")
    # the QA run: 11,000 unknown keys with a valid submission
    unknown = {_base36(i): 1 for i in range(11_000)}  # keys of 1-3 characters: the frame fits 64 KiB
    p.seq += 1
    p.send(
        {
            "type": "submit",
            "seq": p.seq,
            "position": p.scene["position"],
            "answers": {**ANSWERS["about_you"], **unknown},
        }
    )
    frame = p.recv_frame()
    reply = msgpack.unpackb(frame)
    assert len(frame) < 1000, len(frame)  # was 260 KB
    assert reply["type"] == "rejected" and reply["code"] == "unknown_answers"
    assert reply["unknown_count"] == 11_000
    assert len(reply["errors"]) <= 3 and set(reply["errors"]) <= set(unknown)
    assert "11000" in reply["message"] and "and 10997 more" in reply["message"]
    # nothing advanced; the same answers without the junk go through
    assert p.submit(ANSWERS["about_you"])["scene"]["scene_id"] != "about_you"
    p.close()

    sessions_file = server.data_dir / EXPERIMENT_ID / "sessions.jsonl"
    assert sessions_file.stat().st_size < 20_000
    rejected = [
        e
        for e in read_records(server.data_dir, EXPERIMENT_ID, "sessions")
        if e["event"] == "submission_rejected"
    ]
    assert len(rejected) == 1
    detail = rejected[0]["detail"]
    assert detail["unknown_answer_count"] == 11_000
    assert 0 < len(detail["unknown_answers"]) <= 5
    responses = read_records(server.data_dir, EXPERIMENT_ID, "responses")
    assert {r["question_id"] for r in responses}.isdisjoint(unknown)


# --- new participants per address ----------------------------------------------------------------


def test_new_participants_per_address_are_limited_and_resumes_never_refused(live_server) -> None:
    server = live_server(EXAMPLE, env={"IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN": "3"})
    people = [Socket(server.url, params={"PROLIFIC_PID": f"p{i}"}) for i in range(3)]
    assert all(p.welcome["resumed"] is False for p in people)
    for p in people:
        p.close()
    for attempt in range(3):
        refused = Socket(server.url, params={"PROLIFIC_PID": f"extra{attempt}"})
        assert refused.first["type"] == "error"
        assert refused.first["code"] == "too_many_new_participants"
        assert "Please wait" in refused.first["message"] and "same browser" in refused.first["message"]
        assert refused.closed_with() == (1008, "too_many_new_participants")
    # an unknown token is someone new: refused too
    stranger = Socket(server.url, token="not-a-token-this-server-issued")
    assert stranger.first["code"] == "too_many_new_participants"
    # everyone who started comes back, as often as they like
    for _ in range(2):
        for i, p in enumerate(people):
            again = Socket(server.url, token=p.welcome["token"], params={"PROLIFIC_PID": f"p{i}"})
            assert again.welcome["resumed"] is True
            assert again.welcome["participant_id"] == p.welcome["participant_id"]
            again.close()
    assert _stats(server)["participants"] == 3
    refusals = _log_events(server, "participant_refused")
    assert len(refusals) == 4 and {e["reason"] for e in refusals} == {"rate_limited"}
    assert refusals[0]["address"] == "127.0.0.1"


def test_behind_a_proxy_participants_are_counted_by_their_forwarded_address(live_server) -> None:
    """uvicorn takes X-Forwarded-For from a trusted proxy (loopback by default), as nginx sends it."""
    server = live_server(EXAMPLE, env={"IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN": "1"})
    alice = Socket(server.url, headers={"X-Forwarded-For": "203.0.113.5"})
    assert alice.welcome["type"] == "welcome"
    again = Socket(server.url, headers={"X-Forwarded-For": "203.0.113.5"})
    assert again.first["code"] == "too_many_new_participants"
    bob = Socket(server.url, headers={"X-Forwarded-For": "198.51.100.7"})
    assert bob.welcome["type"] == "welcome"
    refused = _log_events(server, "participant_refused")
    assert [e["address"] for e in refused] == ["203.0.113.5"]
    alice.close()
    bob.close()


def test_the_cap_on_participants_in_memory_refuses_new_ones_only(live_server) -> None:
    # The limit per address turned off (a lab whose computers share one address): only the cap holds.
    server = live_server(
        EXAMPLE,
        env={"IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN": "0", "IGYM_MAX_PARTICIPANTS_IN_MEMORY": "35"},
    )
    sockets = [Socket(server.url) for _ in range(35)]  # more than the default 30 per address
    assert all(s.welcome.get("type") == "welcome" for s in sockets)
    full = Socket(server.url)
    assert full.first["code"] == "server_full" and "try again" in full.first["message"]
    assert full.closed_with() == (1008, "server_full")
    sockets[0].close()
    again = Socket(server.url, token=sockets[0].welcome["token"])  # a resume is never refused
    assert again.welcome["resumed"] is True
    again.close()
    for s in sockets[1:]:
        s.close()
    assert {e["reason"] for e in _log_events(server, "participant_refused")} == {"server_full"}


# --- participant state leaves memory, and comes back ----------------------------------------------


def test_evicted_participants_come_back_from_the_records(live_server) -> None:
    server = live_server(
        EXAMPLE,
        env={"IGYM_PARTICIPANT_EVICT_FINISHED_S": "0.3", "IGYM_PARTICIPANT_EVICT_IDLE_S": "0.6"},
    )
    done = Socket(server.url, params={"PROLIFIC_PID": "finisher"})
    done.walk_to("done")
    code = done.scene["context"]["completion_code"]
    halfway = Socket(server.url, params={"PROLIFIC_PID": "halfway"})
    halfway.walk_to("about_you")
    halfway.submit(ANSWERS["about_you"])
    where = (halfway.scene["position"], halfway.scene["scene"]["scene_id"], halfway.scene["instance"])
    assert _stats(server)["participants"] == 2
    # still connected: nobody is evicted, however long it takes
    time.sleep(1.0)
    assert _stats(server)["participants"] == 2
    done.close()
    halfway.close()
    poll(lambda: _stats(server)["participants"] == 0, what="both participants to leave memory", timeout_s=15)
    evicted = {e["participant_id"]: e for e in _log_events(server, "participant_evicted")}
    assert set(evicted) == {done.welcome["participant_id"], halfway.welcome["participant_id"]}

    back = Socket(server.url, token=done.welcome["token"], params={"PROLIFIC_PID": "finisher"})
    assert back.welcome["resumed"] is True
    assert back.welcome["participant_id"] == done.welcome["participant_id"]
    assert back.scene["scene"]["scene_id"] == "done"
    assert back.scene["context"]["completion_code"] == code
    back.close()

    again = Socket(server.url, token=halfway.welcome["token"], params={"PROLIFIC_PID": "halfway"})
    assert again.welcome["resumed"] is True
    assert again.welcome["participant_id"] == halfway.welcome["participant_id"]
    assert (again.scene["position"], again.scene["scene"]["scene_id"], again.scene["instance"]) == where
    again.walk_to("done")  # and finishes, with one completion code of their own
    again.close()

    sessions = read_records(server.data_dir, EXPERIMENT_ID, "sessions")
    for pid in evicted:
        events = [e["event"] for e in sessions if e["participant_id"] == pid]
        assert events.count("joined") == 1 and events.count("finished") == 1, events
        assert "evicted" in events
    codes = [e["detail"]["values"]["completion_code"] for e in sessions if e["event"] == "finished"]
    assert len(set(codes)) == 2 and code in codes
