"""Honest games' fps while one client floods the server, one kind of message at a time.

    uv run --frozen python bench/flood.py --seconds 3
    uv run --frozen python bench/flood.py --kinds ping,garbage --no-read

For each kind of flood, a fresh ``igym run`` server process serves ``server_tick_experiment.py``
(MountainCar, 30 fps). The load generator of ``bench/server_tick.py`` plays ``--games`` honest games
(browser-like: a key change every 50 ms, a ping a second), and one more participant, the flooder,
says hello, learns its game and scene, then sends one kind of message as fast as its socket takes
it (a blocking ``sendall`` of 64 KiB batches of ready-made frames) until the window ends. With
``--no-read`` the flooder never reads its socket after the hello.

For each kind it prints the honest games' delivered fps (minimum and median over games, frames
counted in the window), the server's CPU share in the window, how many bytes the flooder got the
server to take, and what happened to the flooder (the close code the server sent, and when). The
server's RSS (from ``/proc/<pid>/status``) is printed before and after the flood. The last line is
one JSON object with every row.

The functions here are also the fairness test's (``tests/test_flood.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgpack

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from server_tick import (  # noqa: E402
    _load_main,
    _result_of,
    bench_server_env,
    free_port,
    get_stats,
    wait_healthy,
)

#: Every kind of flood, in the order the table shows them.
FLOOD_KINDS = (
    "input_other_game",  # input for a game the client is not in
    "garbage",  # random bytes in binary frames
    "ping",
    "press",  # key presses for its own game
    "held",  # held keys for its own game (a valid message)
    "draft",
    "submit",
    "text",  # text frames
    "oversized",  # binary frames larger than the server's message limit
    "ws_ping",  # WebSocket-level ping frames (the server answers each with a pong)
)

_MASK = b"\x5a\x13\xc4\x07"
BATCH_BYTES = 64 * 1024


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame (masked, as the protocol requires of clients)."""
    from websockets.utils import apply_mask

    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + _MASK + apply_mask(payload, _MASK)


def flood_batch(kind: str, game_id: str, position: int, max_message_bytes: int = 64 * 1024) -> bytes:
    """About 64 KiB of frames of one ``kind`` (see FLOOD_KINDS), ready to write to the socket."""
    rng = random.Random(kind)
    frames: list[bytes] = []
    size = 0
    seq = 0
    while size < BATCH_BYTES:
        seq += 1
        if kind == "input_other_game":
            frame = masked_frame(
                2, msgpack.packb({"type": "input", "game_id": "not-mine", "seq": seq, "keys": ["ArrowLeft"]})
            )
        elif kind == "garbage":
            frame = masked_frame(2, rng.randbytes(rng.randint(1, 40)))
        elif kind == "ping":
            frame = masked_frame(2, msgpack.packb({"type": "ping", "seq": seq, "t": 1.5}))
        elif kind == "press":
            frame = masked_frame(
                2, msgpack.packb({"type": "input", "game_id": game_id, "seq": seq, "press": ["ArrowLeft"]})
            )
        elif kind == "held":
            keys = ["ArrowLeft"] if seq % 2 else ["ArrowRight"]
            frame = masked_frame(
                2, msgpack.packb({"type": "input", "game_id": game_id, "seq": seq, "keys": keys})
            )
        elif kind == "draft":
            frame = masked_frame(
                2,
                msgpack.packb(
                    {"type": "draft", "seq": seq, "position": position, "answers": {"q": "x" * 200}}
                ),
            )
        elif kind == "submit":
            frame = masked_frame(
                2, msgpack.packb({"type": "submit", "seq": seq, "position": position, "answers": {}})
            )
        elif kind == "text":
            frame = masked_frame(1, b'{"type": "ping"}')
        elif kind == "oversized":
            frame = masked_frame(2, b"\x00" * (max_message_bytes + 1024))
        elif kind == "ws_ping":
            frame = masked_frame(9, b"p%d" % (seq % 100))
        else:
            raise ValueError(f"unknown flood kind {kind!r}; expected one of {', '.join(FLOOD_KINDS)}")
        frames.append(frame)
        size += len(frame)
    return b"".join(frames)


class RawClient:
    """A blocking WebSocket client on a plain socket (websockets' sans-I/O protocol for framing)."""

    def __init__(self, url: str, *, rcvbuf: int | None = None, timeout_s: float = 10) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        uri = parse_uri(url)
        self.ws = ClientProtocol(uri, max_size=None)
        self.sock = socket.socket()
        if rcvbuf is not None:  # before connecting, so that the window is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout_s)
        self.sock.connect((uri.host, uri.port))
        self.close_code: int | None = None
        self.eof = False
        self.ws.send_request(self.ws.connect())
        self._flush()
        self.read_until(lambda _m: False, lambda: self.ws.handshake_exc is not None or self._open())

    def _open(self) -> bool:
        from websockets.protocol import State

        return self.ws.state is State.OPEN

    def _flush(self) -> None:
        for chunk in self.ws.data_to_send():
            if chunk:
                self.sock.sendall(chunk)

    def answer_pings(self) -> None:
        """Send what the protocol owes the server (pongs for its pings), as a browser does."""
        self._flush()

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send_binary(msgpack.packb(message))
        self._flush()

    def read_until(self, want, done=lambda: False, timeout_s: float = 10) -> dict[str, Any] | None:
        """Read messages until ``want(message)`` (returns it) or ``done()``; None at close or timeout."""
        from websockets.frames import Frame, Opcode

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not done():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not data:
                self.eof = True
                return None
            self.ws.receive_data(data)
            for event in self.ws.events_received():
                if isinstance(event, Frame):
                    if event.opcode is Opcode.CLOSE:
                        self.close_code = self.ws.close_rcvd.code if self.ws.close_rcvd else 1005
                        return None
                    if event.opcode is Opcode.BINARY:
                        message = msgpack.unpackb(event.data)
                        if want(message):
                            return message
        return None

    def drain(self) -> None:
        """Read and discard everything until the connection closes (records the close code)."""
        while not self.eof and self.close_code is None:
            try:
                self.read_until(lambda _m: False, timeout_s=1e9)
            except OSError:
                self.eof = True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def join_game(client: RawClient) -> tuple[str, int]:
    """Hello; then the game id (from ``game_status``) and the scene position (from ``scene``)."""
    client.send({"type": "hello", "protocol": 1, "token": None, "params": {}})
    seen: dict[str, Any] = {}

    def want(message: dict[str, Any]) -> bool:
        if message.get("type") == "scene":
            seen["position"] = message["position"]
        return message.get("type") == "game_status" and bool(message.get("game_id"))

    status = client.read_until(want)
    if status is None:
        raise RuntimeError(f"no game_status after hello (close code {client.close_code})")
    return status["game_id"], seen.get("position", 0)


def flood_main(url: str, kind: str, start_at: float, stop_at: float, read: bool, out: Any) -> None:
    """The flooder (its own process): hello, then ``kind`` frames as fast as the socket takes them."""
    result: dict[str, Any] = {"kind": kind, "sent_bytes": 0, "close_code": None, "closed_after_s": None}
    try:
        client = RawClient(url)
        game_id, position = join_game(client)
        batch = flood_batch(kind, game_id, position)
        time.sleep(max(0.0, start_at - time.time()))
        began = time.time()
        ended = threading.Event()

        def reader() -> None:
            client.drain()
            result["closed_after_s"] = round(time.time() - began, 3)
            ended.set()

        if read:
            threading.Thread(target=reader, daemon=True).start()
        client.sock.settimeout(0.2)
        view = memoryview(batch)
        offset = 0
        while time.time() < stop_at and not ended.is_set():
            try:
                offset += client.sock.send(view[offset:])
            except TimeoutError:  # the server is not reading just now
                continue
            except OSError:
                if result["closed_after_s"] is None:
                    result["closed_after_s"] = round(time.time() - began, 3)
                break
            if offset >= len(batch):
                result["sent_bytes"] += offset
                offset = 0
        result["sent_bytes"] += offset
        if read:
            ended.wait(max(0.0, stop_at - time.time()))
        result["close_code"] = client.close_code
        client.close()
    except Exception as exc:  # reported to the parent, which fails loudly
        result["error"] = repr(exc)
    out.send(result)
    out.close()


def rss_kib(pid: int) -> int:
    """The resident set size of process ``pid`` in KiB (``VmRSS`` of ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


class BenchServer:
    """``igym run server_tick_experiment:experiment`` in a child process, on a free port."""

    def __init__(self, env: dict[str, str] | None = None, *, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.data_dir = tempfile.mkdtemp(prefix="igym-flood-")
        full_env = bench_server_env(**{"IGYM_BENCH_STEPS": str(30 * 3600), **(env or {})})
        self.log_path = log_path or Path(self.data_dir) / "server.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "igym_core.cli",
                "run",
                "server_tick_experiment:experiment",
                "--port",
                str(self.port),
                "--data-dir",
                str(Path(self.data_dir) / "data"),
            ],
            env=full_env,
            cwd=HERE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_healthy(self.port, self.process)

    def rss_kib(self) -> int:
        return rss_kib(self.process.pid)

    def stats(self) -> dict:
        return get_stats(self.port)

    def stop(self) -> None:
        import shutil

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def measure(
    server: BenchServer,
    kind: str | None,
    *,
    games: int = 5,
    warmup_s: float = 1.0,
    seconds: float = 3.0,
    read: bool = True,
) -> dict[str, Any]:
    """Honest games' fps over ``seconds`` while one client floods ``kind`` (None: nobody floods)."""
    start_at = time.time() + 1.5
    window = (start_at + warmup_s, start_at + warmup_s + seconds)
    parent, child = mp.Pipe(duplex=False)
    loader = mp.Process(target=_load_main, args=(server.url, games, 1, start_at, window, child))
    loader.start()
    flooder = None
    if kind is not None:
        flood_parent, flood_child = mp.Pipe(duplex=False)
        flooder = mp.Process(
            target=flood_main, args=(server.url, kind, start_at, window[1], read, flood_child)
        )
        flooder.start()
    time.sleep(max(0.0, window[0] - time.time()))
    before = server.stats()
    rss_before = server.rss_kib()
    time.sleep(max(0.0, window[1] - time.time()))
    after = server.stats()
    rss_after = server.rss_kib()
    results = _result_of(loader, parent, window[1] + 30)
    flood: dict[str, Any] = {}
    if flooder is not None:
        flood = _result_of(flooder, flood_parent, window[1] + 30)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError(f"{len(errors)} honest participants failed, e.g. {errors[0]}")
    if "error" in flood:
        raise RuntimeError(f"the flooder failed: {flood['error']}")
    fps = sorted(r["frames"] / seconds for r in results)
    return {
        "kind": kind or "none",
        "fps_min": round(fps[0], 2),
        "fps_median": round(statistics.median(fps), 2),
        "max_frame_gap_ms": round(max((r["max_gap_ms"] or 0) for r in results), 1),
        "server_cpu_pct": round(100 * (after["process_cpu_s"] - before["process_cpu_s"]) / seconds, 1),
        "flood_sent_mib": round(flood.get("sent_bytes", 0) / 2**20, 2),
        "flood_close_code": flood.get("close_code"),
        "flood_closed_after_s": flood.get("closed_after_s"),
        "rss_before_mib": round(rss_before / 1024, 1),
        "rss_after_mib": round(rss_after / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default=",".join(FLOOD_KINDS), help="comma-separated flood kinds")
    parser.add_argument("--games", type=int, default=5, help="honest games")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per kind")
    parser.add_argument("--no-read", action="store_true", help="the flooder never reads its socket")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    for kind in kinds:
        if kind not in (*FLOOD_KINDS, "none"):
            parser.error(f"unknown kind {kind!r}; expected some of {', '.join(FLOOD_KINDS)} or none")
    header = (
        f"{'flood':>16} {'fps min':>7} {'fps med':>7} {'max gap':>7} {'cpu %':>6} {'sent MiB':>8} "
        f"{'closed':>6} {'after s':>7} {'rss MiB':>15}"
    )
    print(
        f"{args.games} honest games, one flooder ({'not reading' if args.no_read else 'reading'}), "
        f"{args.seconds:g} s per kind"
    )
    print(header)
    rows = []
    for kind in kinds:
        server = BenchServer()
        try:
            row = measure(
                server,
                None if kind == "none" else kind,
                games=args.games,
                seconds=args.seconds,
                read=not args.no_read,
            )
        finally:
            server.stop()
        rows.append(row)
        print(
            f"{row['kind']:>16} {row['fps_min']:>7} {row['fps_median']:>7} {row['max_frame_gap_ms']:>7} "
            f"{row['server_cpu_pct']:>6} {row['flood_sent_mib']:>8} {row['flood_close_code']!s:>6} "
            f"{row['flood_closed_after_s']!s:>7} {row['rss_before_mib']:>6} -> {row['rss_after_mib']:<6}",
            flush=True,
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
