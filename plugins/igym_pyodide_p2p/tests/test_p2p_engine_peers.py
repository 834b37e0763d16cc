"""Two CPython peers drive the rollback engine (``P2PBrowserGame``, as a page's worker does) against a
real ``igym run`` server, their packets over the server's relay: the whole game is stored once per
frame, both pages' copies agree, and ``igym verify`` re-runs it."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from p2p_peer import Peer, pair  # noqa: E402
from test_p2p_runtime import EXPERIMENT, records, serve  # noqa: E402

from igym_core.testing import read_records  # noqa: E402
from igym_pyodide_p2p.browser.p2p_game import P2PBrowserGame  # noqa: E402
from igym_pyodide_p2p.browser.spec import GameSpec  # noqa: E402

KEYS = [[], ["ArrowLeft"], ["ArrowRight"], ["ArrowUp"], ["ArrowUp", "ArrowLeft"]]


class EnginePage:
    """A page: its socket (``Peer``) and its engine, stepped on drift-free deadlines."""

    def __init__(self, peer: Peer, game_id: str, seed: int) -> None:
        self.peer = peer
        self.game_id = game_id
        start = peer.start
        spec = GameSpec.from_json(
            {**peer.scene["scene"]["runtime_view"]["game"], "human_seat": start["seat"]}
        )
        self.game = P2PBrowserGame(
            spec,
            game_id=game_id,
            seat=start["seat"],
            partner_seat=start["partner_seat"],
            authority=start["authority"],
            input_delay=start["input_delay"],
            window=start["window"],
            hash_every=start["hash_every"],
            silent_notice_ms=start["silent_notice_ms"],
            lost_after_ms=start["lost_after_ms"],
        )
        self.rng = random.Random(seed)
        self.playing = False
        self.finished = False
        self.events: list[dict[str, Any]] = []
        self.episodes: list[dict[str, Any]] = []

    def pump(self, now_ms: float) -> None:
        """Everything the server sent so far."""
        for message in [*self.peer.unclaimed, *self._available()]:
            kind = message.get("type")
            if kind == "p2p_relay":
                self.events.extend(self.game.receive(message["data"], now_ms))
            elif kind == "pyodide_episode":
                self.episodes.append(message)
                self.game.start_episode(
                    message["episode"],
                    message["seed"],
                    max_steps=message["max_steps"],
                    fps=message["fps"],
                    next_batch=message["next_batch"],
                )
                self.playing = True
            elif kind == "scene" and message["scene"]["kind"] == "end":
                self.finished = True
        self.peer.unclaimed.clear()

    def _available(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self.peer.recv(timeout=0))
            except TimeoutError:
                return out

    def tick(self, now_ms: float) -> None:
        if not self.playing:
            return
        if self.rng.random() < 0.1:
            self.game.set_held(self.rng.choice(KEYS))
        out = self.game.tick(now_ms)
        for data in out["send"]:
            self.peer.send({"type": "p2p_relay", "game_id": self.game_id, "data": data})
        for event in out["events"]:
            self.peer.send({"type": "p2p_event", "game_id": self.game_id, **event})
            self.events.append(event)
        batch = self.game.take_batch()
        if batch is not None:
            self.peer.send(batch)
        if out["done"]:
            last = self.game.take_batch()
            if last is not None:
                self.peer.send(last)
            self.peer.send(self.game.episode_done())
            self.playing = False


def test_two_engine_peers_play_a_whole_game_over_the_relay(tmp_path: Path) -> None:
    server = serve(tmp_path, options={"route": "relay"})
    try:
        authority, other, game_id = pair(server.url)
        assert authority.start["route"] == "relay"
        pages = [EnginePage(authority, game_id, 1), EnginePage(other, game_id, 2)]
        for page in pages:
            page.peer.send(
                {
                    "type": "p2p_route",
                    "game_id": game_id,
                    "route": "relay",
                    "rtt_ms": None,
                    "input_delay": 2,
                    "reason": "route='relay'",
                }
            )
        period_ms = 1000 / 30
        next_ms = time.monotonic() * 1000
        deadline = time.monotonic() + 40
        while not all(p.finished for p in pages) and time.monotonic() < deadline:
            now_ms = time.monotonic() * 1000
            for page in pages:
                page.pump(now_ms)
            if now_ms >= next_ms:
                next_ms += period_ms
                for page in pages:
                    page.tick(now_ms)
            time.sleep(max(0.0, min(0.005, (next_ms - time.monotonic() * 1000) / 1000)))
        assert all(p.finished for p in pages), [(p.game.engine.frame, p.game.stats) for p in pages]
        for page in pages:
            assert page.peer.errors() == []
            assert [e["episode"] for e in page.episodes] == [1, 2]
            assert page.game.stats["desyncs_detected"] == 0

        rows = records(server, "steps", lambda rows: len(rows) >= 360)
        keys = Counter((r["episode"], r["step"], r["agent"]) for r in rows)
        assert len(rows) == 360 and set(keys.values()) == {1}
        frames = records(server, "p2p_frames", lambda rows: len(rows) >= 360)
        assert Counter((f["episode"], f["step"]) for f in frames) == {
            (e, s): 2 for e in (1, 2) for s in range(1, 91)
        }
        assert read_records(server.data_dir, EXPERIMENT, "p2p_disagreements") == []
        games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
        summary = next(g for g in games if g["event"] == "p2p_summary")
        assert summary["compared"] == 180 and summary["disagreements"] == 0
        assert summary["pages"]["left"]["relayed"] > 100 and summary["pages"]["right"]["relayed"] > 100
        assert [g["reason"] for g in games if g["event"] == "ended"] == ["completed"]

        result = subprocess.run(
            [sys.executable, "-m", "igym_core.cli", "verify", str(server.data_dir / EXPERIMENT)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "all 2 browser-run episodes of 1 game match" in result.stdout
    finally:
        server.stop()
