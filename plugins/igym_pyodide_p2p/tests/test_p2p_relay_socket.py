"""The workers' relay sockets on a real ``igym run`` server: a worker proves its page with the relay
key of its ``p2p_start``, packets go worker to worker as raw bytes (and to a partner without a worker
socket through its page socket), and wrong keys and oversized packets close the socket."""

from __future__ import annotations

import importlib.util
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from igym_core.testing import ScriptedParticipant, make_test_app

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from p2p_peer import pair  # noqa: E402
from test_p2p_runtime import records, route, serve  # noqa: E402


def _study_module() -> ModuleType:
    """The P2P test study (``studies/slime_p2p.py``), imported from its file."""
    spec = importlib.util.spec_from_file_location("relay_slime_p2p_study", HERE / "studies" / "slime_p2p.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _worker(url: str, start: dict[str, Any], key: str | None = None) -> Any:
    socket = connect(url.replace("http://", "ws://") + start["relay_url"], max_size=None).__enter__()
    socket.send(start["relay_key"] if key is None else key)
    return socket


def _closed_with(socket: Any, timeout_s: float = 5) -> int | None:
    try:
        while True:
            socket.recv(timeout=timeout_s)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def test_worker_relay_sockets_carry_packets_and_refuse_what_they_must(tmp_path: Path) -> None:
    with serve(tmp_path, options={"route": "relay"}) as server:
        authority, other, game_id = pair(server.url)
        route(authority, game_id)
        route(other, game_id)
        keys = {authority.start["relay_key"], other.start["relay_key"]}
        assert len(keys) == 2 and all(len(k) >= 32 for k in keys)
        assert authority.start["relay_url"] == f"/plugins/pyodide_p2p/relay/{game_id}"
        # A key that is no page's (here: the partner's key with one letter changed) is refused.
        wrong = _worker(server.url, authority.start, key=authority.start["relay_key"][:-1] + "A")
        assert _closed_with(wrong) == 1008
        left = _worker(server.url, authority.start)
        right = _worker(server.url, other.start)
        time.sleep(0.3)
        # Worker to worker, as raw bytes, both ways.
        left.send(b'{"v":1,"k":"h"}')
        assert right.recv(timeout=5) == b'{"v":1,"k":"h"}'
        right.send(b"\x00\x01 any bytes")
        assert left.recv(timeout=5) == b"\x00\x01 any bytes"
        # A page's own p2p_relay reaches its partner's worker socket.
        authority.send({"type": "p2p_relay", "game_id": game_id, "data": b"from the page"})
        assert right.recv(timeout=5) == b"from the page"
        # Once the partner's worker socket is gone, packets go to its page socket as p2p_relay.
        right.close()
        time.sleep(0.3)
        left.send(b"to the page")
        assert other.next("p2p_relay", timeout=5)["data"] == b"to the page"
        # A packet larger than 8 KB closes the socket (1009).
        left.send(b"x" * 8193)
        assert _closed_with(left) == 1009
        authority.close()
        other.close()
        games = records(server, "games", lambda rows: any(r["event"] == "p2p_summary" for r in rows))
        summary = next(g for g in games if g["event"] == "p2p_summary")
        assert summary["pages"]["right"]["worker_relayed"] >= 2, summary
        # The relay keys are credentials: in no record.
        for path in server.data_dir.rglob("*"):
            if path.is_file():
                text = path.read_bytes()
                assert not any(k.encode() in text for k in keys), path


def test_a_flooding_worker_and_a_socket_for_no_game_are_closed(tmp_path: Path) -> None:
    with serve(tmp_path, options={"route": "relay"}) as server:
        authority, other, game_id = pair(server.url)
        route(authority, game_id)
        route(other, game_id)
        # A socket for a game that does not exist is refused at the handshake.
        base = server.url.replace("http://", "ws://")
        try:
            stray = connect(f"{base}/plugins/pyodide_p2p/relay/no-such-game").__enter__()
        except Exception as refused:  # the handshake itself is rejected
            assert "403" in str(refused) or "1008" in str(refused), refused
        else:
            assert _closed_with(stray) == 1008
        partner = _worker(server.url, other.start)
        flooder = _worker(server.url, authority.start)
        time.sleep(0.3)
        # An honest worker sends tens of packets a second; 3,000 at once is a flood.
        try:
            for _ in range(3000):
                flooder.send(b"p")
        except ConnectionClosed:
            pass
        # The close reaches a client that is still writing its flood only once its writes drain.
        assert _closed_with(flooder, timeout_s=30) == 1008
        # The partner's socket is not harmed: it still gets its own page's relayed packets.
        authority.send({"type": "p2p_relay", "game_id": game_id, "data": b"still here"})
        got = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and b"still here" not in got:
            got.append(partner.recv(timeout=5))
        assert b"still here" in got
        partner.close()
        authority.close()
        other.close()


def _in_process_game(client: Any, stack: ExitStack) -> tuple[ScriptedParticipant, ScriptedParticipant, str]:
    """Two participants of an in-process app matched into a P2P game, both pages loaded: (the
    authority's participant with its ``p2p_start`` as ``.start``, the other's, the game id). They
    are closed with ``stack`` (an open participant socket keeps the test client from stopping)."""
    first = stack.enter_context(ScriptedParticipant(client))
    second = stack.enter_context(ScriptedParticipant(client))
    for p in (first, second):
        p.submit({"agree": True})
    loading = [
        p.receive_until(lambda m: m["type"] == "game_status" and m["phase"] == "loading")[0]
        for p in (first, second)
    ]
    game_id = loading[0]["game_id"]
    assert loading[1]["game_id"] == game_id
    for p in (first, second):
        p.send({"type": "runtime_loaded", "game_id": game_id, "ms": 1.0, "stages": {}})
    for p in (first, second):
        p.start = p.receive_until(lambda m: m["type"] == "p2p_start")[0]  # type: ignore[attr-defined]
    authority, other = sorted((first, second), key=lambda p: not p.start["authority"])  # type: ignore[attr-defined]
    for p in (authority, other):
        p.send(
            {
                "type": "p2p_route",
                "game_id": game_id,
                "route": "relay",
                "rtt_ms": 10.0,
                "input_delay": 2,
                "reason": "test",
            }
        )
    return authority, other, game_id


def test_two_apps_in_one_process_count_their_sockets_awaiting_a_key_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound on relay sockets waiting for their key is each server's: one app at its bound
    refuses more (1013) while another app in the same process still takes its workers' sockets."""
    import igym_pyodide_p2p.plugin
    from igym_pyodide_p2p import p2p_relay_socket

    monkeypatch.setattr(p2p_relay_socket, "MAX_AWAITING_KEY", 1)
    monkeypatch.setattr(p2p_relay_socket, "KEY_TIMEOUT_S", 30.0)
    study = _study_module().experiment
    first_app = make_test_app(study, tmp_path / "a", extra_plugins=[igym_pyodide_p2p.plugin])
    second_app = make_test_app(study, tmp_path / "b", extra_plugins=[igym_pyodide_p2p.plugin])
    with TestClient(first_app) as first, TestClient(second_app) as second, ExitStack() as stack:
        a_authority, _, a_game = _in_process_game(first, stack)
        b_authority, b_other, b_game = _in_process_game(second, stack)
        # The first app's one socket waiting for its key fills that app's bound ...
        waiting = stack.enter_context(first.websocket_connect(a_authority.start["relay_url"]))
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            first.websocket_connect(a_authority.start["relay_url"]) as extra,
        ):
            extra.receive_bytes(timeout=5)
        assert refused.value.code == 1013
        # ... and not the second app's: its worker's socket is taken and carries a packet.
        worker = stack.enter_context(second.websocket_connect(b_authority.start["relay_url"]))
        worker.send_text(b_authority.start["relay_key"])
        worker.send_bytes(b"across the relay")
        message, _ = b_other.receive_until(lambda m: m["type"] == "p2p_relay")
        assert message["data"] == b"across the relay" and message["game_id"] == b_game
        waiting.send_text(a_authority.start["relay_key"])
        assert a_game != b_game
