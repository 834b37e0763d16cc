"""The admin dashboard against a real `igym run` server: who may get in (token, rate limits, the
cookie, the socket's cookie and origin checks), the live view, and the actions (pause arrivals, end a
game, download the data), each recorded with the admin session that took it."""

from __future__ import annotations

import gzip
import http.client
import io
import json
import re
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgpack
import pyarrow.parquet as pq
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from igym_core.protocol.messages import PROTOCOL_VERSION
from tests.conftest import LiveServer

PAGES = "tests.studies.admin_study:pages"
GAME = "tests.studies.admin_study:game"
ADMIN_TOKEN = "admin-token-for-the-tests-0123456789"


def _request(
    server: LiveServer, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request, redirects not followed."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", server.port, timeout=60
    )  # the export takes a few seconds
    try:
        all_headers = dict(headers or {})
        if body is not None:
            all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _login(
    server: LiveServer, token: str = ADMIN_TOKEN, **headers: str
) -> tuple[int, http.client.HTTPMessage]:
    status, response_headers, _ = _request(
        server, "POST", "/admin/login", urlencode({"token": token}), headers
    )
    return status, response_headers


def _cookie(server: LiveServer) -> str:
    status, headers = _login(server)
    assert status == 303, status
    return headers["Set-Cookie"].split(";")[0]  # igym_admin=<secret>


def _admin_socket(server: LiveServer, cookie: str, origin: str | None = "same") -> ClientConnection:
    if origin == "same":
        origin = f"http://127.0.0.1:{server.port}"
    return connect(
        f"ws://127.0.0.1:{server.port}/admin/ws",
        additional_headers={"Cookie": cookie},
        origin=origin,  # type: ignore[arg-type]
    )


def _snapshot(
    ws: ClientConnection, until: Callable[[dict[str, Any]], bool] = lambda s: True, timeout_s: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == "snapshot" and until(message):
            return message
    raise AssertionError(f"no snapshot as expected within {timeout_s:g} s")


def _act(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    ws.send(json.dumps(message))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        reply = json.loads(ws.recv(timeout=10))
        if reply["type"] in ("done", "error"):
            return reply
    raise AssertionError("no reply to the action")


def _participant(server: LiveServer, token: str | None = None) -> tuple[ClientConnection, dict[str, Any]]:
    """A participant's socket after its hello, and the first reply (welcome or error)."""
    ws = connect(f"ws://127.0.0.1:{server.port}/ws", legacy=True)
    ws.send(msgpack.packb({"type": "hello", "protocol": PROTOCOL_VERSION, "token": token, "params": {}}))
    return ws, msgpack.unpackb(ws.recv(timeout=10))


def _scene_counts(snapshot: dict[str, Any]) -> dict[str, int]:
    return {s["scene_id"]: s["participants"] for s in snapshot["scenes"]}


def _records(server: LiveServer, experiment: str, record_type: str) -> list[dict[str, Any]]:
    path = server.data_dir / experiment / f"{record_type}.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _recorded(
    server: LiveServer, experiment: str, record_type: str, match: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """The records that ``match``, once there is one (the sink writes every 500 ms); at most 10 s."""
    deadline = time.monotonic() + 10
    while True:
        found = [r for r in _records(server, experiment, record_type) if match(r)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


#: The shared server's tests log in many times from one address: its login limit is out of their
#: way (the limits have a test and a server of their own).
SHARED_ENV = {"IGYM_ADMIN_TOKEN": ADMIN_TOKEN, "IGYM_ADMIN_LOGINS_PER_IP_PER_MIN": "1000"}


@pytest.fixture(scope="module")
def pages_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the tests that do not depend on a fresh one (they count relative to it)."""
    with LiveServer(PAGES, tmp_path_factory.mktemp("admin") / "data", env=SHARED_ENV) as server:
        yield server


def test_without_a_session_every_admin_route_is_refused(pages_server: LiveServer) -> None:
    server = pages_server
    status, headers, body = _request(server, "GET", "/admin")
    assert status == 401
    assert b'action="/admin/login"' in body and b'name="token"' in body  # the login form
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert headers["Cache-Control"] == "no-store"
    for cookie in (None, "igym_admin=made-up-secret", f"igym_admin={ADMIN_TOKEN}"):
        extra = {"Cookie": cookie} if cookie else {}
        assert _request(server, "GET", "/admin", headers=extra)[0] == 401
        for path in ("/admin/download", "/admin/download/raw"):
            status, _headers, body = _request(server, "GET", path, headers=extra)
            assert status == 401 and b"PK" not in body[:4] and not body.startswith(b"\x1f\x8b"), path
        with pytest.raises(InvalidStatus) as refused:
            _admin_socket(server, cookie or "", origin=None)
        assert refused.value.response.status_code == 403
    # The token never goes in a URL: a query string does not log anyone in.
    assert _request(server, "GET", f"/admin?token={ADMIN_TOKEN}")[0] == 401
    assert _request(server, "GET", "/admin/login")[0] in (404, 405)
    # Odd login forms are wrong tokens, never server errors.
    for body in ("&".join(f"f{i}=x" for i in range(20)), "token=" + "x" * 5000, "%ff%00=\x00", ""):
        assert _request(server, "POST", "/admin/login", body)[0] == 401, body[:40]


def test_login_sets_a_strict_cookie_and_the_token_is_never_logged(pages_server: LiveServer) -> None:
    server = pages_server
    assert _login(server, "wrong-token-of-a-good-length-000000")[0] == 401
    status, headers = _login(server)
    assert status == 303 and headers["Location"].endswith("/admin")
    cookie = headers["Set-Cookie"]
    flags = [part.strip() for part in cookie.split(";")]
    assert flags[0].startswith("igym_admin=") and len(flags[0]) > 40
    assert ADMIN_TOKEN not in cookie  # a session secret, not the token
    assert {"HttpOnly", "SameSite=Strict", "Path=/admin"} <= set(flags)
    assert any(f.startswith("Max-Age=") and int(f.split("=")[1]) > 0 for f in flags)
    assert "Secure" not in flags  # plain http: a Secure cookie would never come back
    # Behind an HTTPS proxy (uvicorn trusts X-Forwarded-Proto from 127.0.0.1): Secure.
    status, headers = _login(server, **{"X-Forwarded-Proto": "https"})
    assert status == 303 and "Secure" in [p.strip() for p in headers["Set-Cookie"].split(";")]
    status, _, body = _request(server, "GET", "/admin", headers={"Cookie": flags[0]})
    assert status == 200 and b"/client/admin.js" in body
    # A login form posted by another site is refused.
    assert _login(server, Origin="https://evil.example")[0] == 403
    # (Only the access log line of a request that itself put the token in its URL may show it.)
    assert not [line for line in server.log().splitlines() if ADMIN_TOKEN in line and "?token=" not in line]


def test_igym_run_makes_a_token_prints_it_once_and_refuses_short_ones(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(PAGES)
    log = server.log()
    found = re.findall(r"admin token for \S+ \([^)]*\): (\S+)", log)
    assert len(found) == 1, log
    token = found[0]
    assert len(token) >= 32
    assert _login(server, token)[0] == 303
    assert server.log().count(token) == 1
    with pytest.raises(RuntimeError, match="at least 24 characters"):
        live_server(PAGES, env={"IGYM_ADMIN_TOKEN": "short-token"}, ready_timeout_s=20)


def test_logins_are_rate_limited_per_address_and_for_everyone(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(
        PAGES,
        env={
            "IGYM_ADMIN_TOKEN": ADMIN_TOKEN,
            "IGYM_ADMIN_LOGINS_PER_IP_PER_MIN": "3",
            "IGYM_ADMIN_LOGINS_PER_MIN": "5",
            "FORWARDED_ALLOW_IPS": "127.0.0.1",  # uvicorn: X-Forwarded-For from here names the client
        },
    )
    wrong = "a-wrong-guess-of-the-admin-token-0000"
    for _ in range(3):
        assert _login(server, wrong)[0] == 401
    status, headers = _login(server)  # even the right token: this address is over its limit
    assert status == 429
    assert 1 <= int(headers["Retry-After"]) <= 60
    # Other addresses: two more attempts make five in the minute, for everyone together.
    assert _login(server, wrong, **{"X-Forwarded-For": "10.0.0.1"})[0] == 401
    assert _login(server, wrong, **{"X-Forwarded-For": "10.0.0.2"})[0] == 401
    status, headers = _login(server, **{"X-Forwarded-For": "10.0.0.3"})
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert "admin_login_rate_limited" in server.log()


def test_the_admin_socket_needs_the_cookie_and_the_same_origin(pages_server: LiveServer) -> None:
    server = pages_server
    assert _login(server, "a-wrong-guess-of-the-admin-token-0000")[0] == 401  # a warning, shown below
    cookie = _cookie(server)
    for origin in ("https://evil.example", f"http://127.0.0.1:{server.port + 1}"):
        with pytest.raises(InvalidStatus) as refused:
            _admin_socket(server, cookie, origin=origin)
        assert refused.value.response.status_code == 403
    with _admin_socket(server, cookie) as ws:
        snapshot = _snapshot(ws)
        assert snapshot["experiment_id"] == "admin_pages"
        assert [s["scene_id"] for s in snapshot["scenes"]] == ["intro", "middle", "end"]
        warned = [e for e in snapshot["errors"] if e["event"] == "admin_login_failed"]
        assert warned and warned[-1]["level"] == "warning" and warned[-1]["detail"]["address"] == "127.0.0.1"
        # Logging out ends the session: its socket is closed and the cookie no longer works.
        status, headers, _ = _request(
            server,
            "POST",
            "/admin/logout",
            "",
            {"Cookie": cookie, "Origin": f"http://127.0.0.1:{server.port}"},
        )
        assert status == 303 and "Max-Age=0" in headers["Set-Cookie"]
        with pytest.raises(ConnectionClosed):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                ws.recv(timeout=5)
    assert _request(server, "GET", "/admin", headers={"Cookie": cookie})[0] == 401
    with pytest.raises(InvalidStatus):
        _admin_socket(server, cookie)


def test_the_live_view_follows_participants_and_outcomes(pages_server: LiveServer) -> None:
    server = pages_server
    with _admin_socket(server, _cookie(server)) as ws:
        before = _snapshot(ws)
        arrivals = before["participants"]["arrivals"]
        intro = _scene_counts(before)["intro"]
        completed = before["outcomes"].get("completed", 0)
        first, welcome = _participant(server)
        second, _ = _participant(server)
        assert welcome["type"] == "welcome"
        snapshot = _snapshot(ws, lambda s: s["participants"]["arrivals"] == arrivals + 2)
        assert _scene_counts(snapshot)["intro"] == intro + 2
        first.send(msgpack.packb({"type": "submit", "seq": 1, "position": 0, "answers": {}}))
        first.send(msgpack.packb({"type": "submit", "seq": 2, "position": 1, "answers": {}}))
        snapshot = _snapshot(ws, lambda s: s["outcomes"].get("completed", 0) == completed + 1)
        assert _scene_counts(snapshot) == {"intro": intro + 1, "middle": 0, "end": 0}
        series = snapshot["series"]
        assert sum(series["arrivals"]) == arrivals + 2 and sum(series["completions"]) == completed + 1
        first.close()
        second.close()


def test_pausing_arrivals_refuses_new_participants_only(pages_server: LiveServer) -> None:
    server = pages_server
    inside, welcome = _participant(server)
    token = welcome["token"]
    inside.close()
    with _admin_socket(server, _cookie(server)) as ws:
        reply = _act(ws, {"type": "pause_arrivals", "message": "We are full today, thank you."})
        assert reply == {
            "type": "done",
            "action": "pause_arrivals",
            "message": "We are full today, thank you.",
        }
        assert (
            _snapshot(ws, lambda s: s["arrivals_paused"])["pause_message"] == "We are full today, thank you."
        )
        newcomer, refused = _participant(server)
        assert refused["type"] == "error" and refused["code"] == "arrivals_paused"
        assert refused["message"] == "We are full today, thank you."
        newcomer.close()
        back, resumed = _participant(server, token)  # those in the study go on
        assert resumed["type"] == "welcome" and resumed["resumed"] is True
        back.close()
        assert _act(ws, {"type": "resume_arrivals"})["type"] == "done"
        again, welcome = _participant(server)
        assert welcome["type"] == "welcome" and welcome["resumed"] is False
        again.close()
        assert _act(ws, {"type": "no_such_action"})["type"] == "error"
        session_id = _snapshot(ws)["actions"][0]["admin_session"]
    actions = [
        r for r in _records(server, "admin_pages", "admin_actions") if r["admin_session"] == session_id
    ]
    assert [a["action"] for a in actions] == ["logged_in", "arrivals_paused", "arrivals_resumed"]
    assert all(a["timestamp"] for a in actions)


def test_ending_a_stuck_game_applies_the_partner_left_ending(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(GAME, env={"IGYM_ADMIN_TOKEN": ADMIN_TOKEN})
    player, welcome = _participant(server)
    assert welcome["type"] == "welcome"
    with _admin_socket(server, _cookie(server)) as ws:
        snapshot = _snapshot(ws, lambda s: any(g["measured_fps"] for g in s["games"]))
        (game,) = snapshot["games"]
        assert game["scene_id"] == "count" and game["participant_ids"] == [welcome["participant_id"]]
        assert game["fps"] == 30 and 5 < game["measured_fps"] < 60
        assert _act(ws, {"type": "end_game", "game_id": game["game_id"]}) == {
            "type": "done",
            "action": "end_game",
            "game_id": game["game_id"],
        }
        assert _snapshot(ws, lambda s: not s["games"])["games_total"] == 0
        assert _act(ws, {"type": "end_game", "game_id": game["game_id"]})["type"] == "error"
    # The player is told with the scene's partner-left message, then moves on to the end scene.
    seen_message = seen_end = False
    deadline = time.monotonic() + 10
    while not (seen_message and seen_end) and time.monotonic() < deadline:
        message = msgpack.unpackb(player.recv(timeout=10))
        if message["type"] == "game_status" and message.get("message") == "The game was ended for you.":
            seen_message = True
        if message["type"] == "scene" and message["scene"]["scene_id"] == "end":
            seen_end = True
    player.close()
    assert seen_message and seen_end
    ended = [r for r in _records(server, "admin_game", "games") if r.get("event") == "ended"]
    assert [r["reason"] for r in ended] == ["ended_by_admin"]
    (action,) = [r for r in _records(server, "admin_game", "admin_actions") if r["action"] == "game_ended"]
    assert action["detail"]["game_id"] == game["game_id"]


def _answer_one_page(server: LiveServer) -> str:
    """A participant who answers the first page and leaves; their id."""
    player, welcome = _participant(server)
    player.send(msgpack.packb({"type": "submit", "seq": 1, "position": 0, "answers": {}}))
    player.recv(timeout=10)
    player.close()
    return welcome["participant_id"]


def _export_state(state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda snapshot: snapshot["export"].get("state") == state


def test_the_download_is_the_tables_igym_export_writes(pages_server: LiveServer, tmp_path: Path) -> None:
    server = pages_server
    participant_id = _answer_one_page(server)
    cookie = _cookie(server)
    page = _request(server, "GET", "/admin", headers={"Cookie": cookie})[2].decode()
    assert 'href="/admin/download/raw"' in page
    session_id = re.search(r"session (a-[0-9a-f]+)", page).group(1)  # type: ignore[union-attr]
    status, _headers, body = _request(server, "GET", "/admin/download", headers={"Cookie": cookie})
    assert status == 404 and b"Prepare the tables" in body  # nothing exported yet
    with _admin_socket(server, cookie) as ws:
        assert _snapshot(ws)["export"] == {"available": True, "state": "none", "ready": None}
        assert _act(ws, {"type": "export_data"}) == {"type": "done", "action": "export_data"}
        again = _act(ws, {"type": "export_data"})  # one at a time
        assert again["type"] == "error" and "already" in again["message"]
        running = _snapshot(ws, _export_state("running"))["export"]
        assert running["admin_session"] == session_id and running["started_at"]
        ready = _snapshot(ws, _export_state("ready"), timeout_s=90)["export"]
    assert ready["ready"]["files"] and ready["ready"]["bytes"] == sum(
        f["bytes"] for f in ready["ready"]["files"]
    )
    status, headers, body = _request(server, "GET", "/admin/download", headers={"Cookie": cookie})
    assert status == 200, body[:300]
    assert headers["Content-Type"].startswith("application/zip")
    disposition = headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="admin_pages-[0-9TZ]+-[0-9a-f]+\.zip"', disposition)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        root = disposition.split('"')[1].removesuffix(".zip")
        assert all(name.startswith(f"{root}/") for name in names)
        downloaded = {
            name.split("/", 1)[1].removesuffix(".parquet"): pq.read_table(io.BytesIO(archive.read(name)))
            for name in names
        }
    assert sorted(f"{t}.parquet" for t in downloaded) == sorted(f["name"] for f in ready["ready"]["files"])
    # The same data through `igym export`, now: the same tables (admin_actions has gained the
    # export's and the download's records since).
    from igym_parquet.export import export_experiment

    exported = {
        data.record_type: pq.read_table(data.path)
        for data in export_experiment(server.data_dir / "admin_pages", out=tmp_path / "export")
    }
    assert set(downloaded) == set(exported) and {"sessions", "admin_actions"} <= set(downloaded)
    for record_type, table in downloaded.items():
        if record_type == "admin_actions":
            assert exported[record_type].slice(0, table.num_rows).to_pylist() == table.to_pylist()
        else:
            assert table.equals(exported[record_type], check_metadata=True), record_type
    sessions = downloaded["sessions"].to_pylist()
    assert {"joined", "scene_left"} <= {r["event"] for r in sessions if r["participant_id"] == participant_id}
    # Recorded with who, when and what; the export is kept (for the next download) outside the data.
    actions = _recorded(
        server,
        "admin_pages",
        "admin_actions",
        lambda r: r["admin_session"] == session_id and r["action"] == "data_downloaded",
    )
    (download,) = actions
    assert download["detail"]["format"] == "tables" and download["detail"]["archive"] == f"{root}.zip"
    assert download["detail"]["exported_at"] == ready["ready"]["finished_at"] and download["at"]
    mine = [
        r["action"]
        for r in _records(server, "admin_pages", "admin_actions")
        if r["admin_session"] == session_id
    ]
    assert mine == ["logged_in", "data_export_started", "data_exported", "data_downloaded"]
    assert len(list((server.data_dir / ".igym-admin-exports").iterdir())) == 1


def test_the_raw_download_streams_the_data_files(pages_server: LiveServer) -> None:
    server = pages_server
    _answer_one_page(server)
    cookie = _cookie(server)
    status, headers, body = _request(server, "GET", "/admin/download/raw", headers={"Cookie": cookie})
    assert status == 200
    assert headers["Content-Type"].startswith("application/gzip")
    assert headers["Content-Disposition"].startswith('attachment; filename="admin_pages-')
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(body))) as archive:
        names = archive.getnames()
        root = names[0].split("/")[0]
        assert f"{root}/sessions.jsonl" in names and any(n.startswith(f"{root}/snapshots/") for n in names)
        sessions = archive.extractfile(f"{root}/sessions.jsonl").read().decode()  # type: ignore[union-attr]
    events = [json.loads(line)["event"] for line in sessions.splitlines()]
    assert "joined" in events and "scene_left" in events
    assert (
        _recorded(server, "admin_pages", "admin_actions", lambda r: r["detail"].get("format") == "raw")[-1][
            "action"
        ]
        == "data_downloaded"
    )


def test_a_failed_export_is_told_and_recorded_and_without_an_exporter_only_raw_is_offered(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(PAGES, env={"IGYM_ADMIN_TOKEN": ADMIN_TOKEN, "IGYM_ADMIN_EXPORT_TIMEOUT_S": "0.001"})
    _answer_one_page(server)
    cookie = _cookie(server)
    with _admin_socket(server, cookie) as ws:
        assert _act(ws, {"type": "export_data"})["type"] == "done"
        failed = _snapshot(ws, _export_state("failed"), timeout_s=60)["export"]
    assert "IGYM_ADMIN_EXPORT_TIMEOUT_S" in failed["message"] and "raw files" in failed["message"]
    assert failed["ready"] is None
    assert _request(server, "GET", "/admin/download", headers={"Cookie": cookie})[0] == 404
    server.stop()  # its records written out
    actions = [r["action"] for r in _records(server, "admin_pages", "admin_actions")]
    assert actions == ["logged_in", "data_export_started", "data_export_failed"]
    assert not list((server.data_dir / ".igym-admin-exports").iterdir())

    bare = live_server(PAGES, env={"IGYM_ADMIN_TOKEN": ADMIN_TOKEN, "IGYM_BLOCKED_PLUGINS": "parquet"})
    cookie = _cookie(bare)
    page = _request(bare, "GET", "/admin", headers={"Cookie": cookie})[2]
    assert b'href="/admin/download/raw"' in page
    with _admin_socket(bare, cookie) as ws:
        assert _snapshot(ws)["export"] == {"available": False}
        refused = _act(ws, {"type": "export_data"})
    assert refused["type"] == "error" and "igym-parquet" in refused["message"]
    status, _headers, body = _request(bare, "GET", "/admin/download", headers={"Cookie": cookie})
    assert status == 404 and b"igym-parquet" in body
    assert _request(bare, "GET", "/admin/download/raw", headers={"Cookie": cookie})[0] == 200


def test_an_expired_session_closes_its_socket_and_its_cookie_stops_working(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(PAGES, env={"IGYM_ADMIN_TOKEN": ADMIN_TOKEN, "IGYM_ADMIN_SESSION_S": "3"})
    cookie = _cookie(server)
    assert _request(server, "GET", "/admin", headers={"Cookie": cookie})[0] == 200
    started = time.monotonic()
    with _admin_socket(server, cookie) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            while time.monotonic() - started < 10:  # snapshots, until the session's end closes it
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert _request(server, "GET", "/admin", headers={"Cookie": cookie})[0] == 401
    with pytest.raises(InvalidStatus):
        _admin_socket(server, cookie)


def test_the_live_view_shows_a_waiting_room_then_the_game_it_made(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server("tests.e2e.multiplayer_study:experiment", env={"IGYM_ADMIN_TOKEN": ADMIN_TOKEN})
    with _admin_socket(server, _cookie(server)) as ws:
        first, welcome_first = _participant(server)
        first.send(msgpack.packb({"type": "submit", "seq": 1, "position": 0, "answers": {}}))
        snapshot = _snapshot(ws, lambda s: bool(s["waiting_rooms"]))
        assert snapshot["waiting_rooms"] == [
            {"scene_id": "dots", "instance": 0, "waiting": 1, "group_size": 2}
        ]
        second, welcome_second = _participant(server)
        second.send(msgpack.packb({"type": "submit", "seq": 1, "position": 0, "answers": {}}))
        snapshot = _snapshot(ws, lambda s: bool(s["games"]))
        assert snapshot["waiting_rooms"] == []
        (game,) = snapshot["games"]
        players = {welcome_first["participant_id"], welcome_second["participant_id"]}
        assert game["scene_id"] == "dots" and set(game["participant_ids"]) == players
        assert set(game["rtt_ms"]) == players
        first.close()
        second.close()
