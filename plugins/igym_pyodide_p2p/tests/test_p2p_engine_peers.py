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

    def __init__(self, peer: Peer, game_id: str, seed: int, *, first_batch: int = 1) -> None:
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
            first_batch=first_batch,
        )
        #: A reloaded page: it plays on from the partner's snapshot (the first packet it gets).
        self.resuming = bool(start.get("resume"))
        self.snapshots: list[int] = []
        self.rng = random.Random(seed)
        self.playing = False
        self.finished = False
        self.events: list[dict[str, Any]] = []
        self.episodes: list[dict[str, Any]] = []

    def pump(self, now_ms: float) -> None:
        """Everything the server sent so far."""
        for message in [*self.peer.unclaimed, *self._available()]:
            kind = message.get("type")
            if kind == "p2p_relay" and self.resuming:
                # As the page's worker does: the partner's inputs may come before its snapshot;
                # only the snapshot resumes the page, the rest is dropped.
                if self.game.resume_from(message["data"]) is not None:
                    self.resuming = False
                    self.playing = True
            elif kind == "p2p_relay":
                self.events.extend(self.game.receive(message["data"], now_ms))
            elif kind == "pyodide_episode" and self.resuming:
                self.episodes.append(message)  # played from the partner's snapshot (a p2p_relay)
            elif kind == "p2p_partner" and message.get("resume"):
                snapshot = self.game.snapshot()
                self.snapshots.append(len(snapshot))
                self.peer.send({"type": "p2p_relay", "game_id": self.game_id, "data": snapshot})
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


def run(pages: list[EnginePage], *, until: Any, timeout_s: float) -> None:
    """Tick the pages on drift-free deadlines at 30 fps, reading their sockets in between."""
    period_ms = 1000 / 30
    next_ms = time.monotonic() * 1000
    deadline = time.monotonic() + timeout_s
    while not until() and time.monotonic() < deadline:
        now_ms = time.monotonic() * 1000
        for page in pages:
            page.pump(now_ms)
        if now_ms >= next_ms:
            next_ms += period_ms
            for page in pages:
                page.tick(now_ms)
        time.sleep(max(0.0, min(0.005, (next_ms - time.monotonic() * 1000) / 1000)))


def test_two_engine_peers_play_a_whole_game_over_the_relay(tmp_path: Path) -> None:
    with serve(tmp_path, options={"route": "relay"}) as server:
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
        run(pages, until=lambda: all(p.finished for p in pages), timeout_s=40)
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


def test_a_reloaded_engine_page_resumes_from_its_partner_s_snapshot_through_the_server(
    tmp_path: Path,
) -> None:
    with serve(tmp_path, options={"route": "relay"}) as server:
        authority, other, game_id = pair(server.url)
        token = other.welcome["token"]
        pages = [EnginePage(authority, game_id, 1), EnginePage(other, game_id, 2)]
        for page in pages:
            page.peer.send(
                {"type": "p2p_route", "game_id": game_id, "route": "relay", "rtt_ms": None, "input_delay": 2}
            )
        run(pages, until=lambda: pages[1].game.engine.confirmed >= 40, timeout_s=20)
        assert pages[1].game.engine.confirmed >= 40
        other.close()  # the right page reloads: its engine is gone

        def told_reloading() -> bool:
            return any(
                m.get("type") == "p2p_partner" and m["state"] == "reloading" for m in authority.received
            )

        run(pages[:1], until=told_reloading, timeout_s=5)
        assert told_reloading()

        again = Peer(server.url, token=token)
        again.loaded(game_id)
        start = again.next("p2p_start")
        assert start["resume"] is True
        episode = again.next("pyodide_episode")
        again.start = start
        resumed = EnginePage(again, game_id, 3, first_batch=episode["next_batch"])
        resumed.episodes.append(episode)
        pages = [pages[0], resumed]
        run(pages, until=lambda: all(p.finished for p in pages), timeout_s=40)
        assert all(p.finished for p in pages), [(p.game.engine.frame, p.game.stats) for p in pages]
        assert 0 < pages[0].snapshots[0] <= 8192  # the snapshot fits one relay packet
        assert authority.errors() == [] and again.errors() == []

        rows = records(server, "steps", lambda rows: len(rows) >= 360)
        assert len(rows) == 360 and len({(r["episode"], r["step"], r["agent"]) for r in rows}) == 360
        found = read_records(server.data_dir, EXPERIMENT, "p2p_disagreements")
        assert {d["field"] for d in found} <= {"unconfirmed"}  # frames the old page had not sent
        games = records(server, "games", lambda rows: any(r["event"] == "ended" for r in rows))
        assert [g["reason"] for g in games if g["event"] == "ended"] == ["completed"]
        assert [(g["seat"], g["rule"]) for g in games if g["event"] == "reloaded"] == [("right", "resume")]
        assert not [g for g in games if g["event"] == "partner_left"]
        result = subprocess.run(
            [sys.executable, "-m", "igym_core.cli", "verify", str(server.data_dir / EXPERIMENT)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
