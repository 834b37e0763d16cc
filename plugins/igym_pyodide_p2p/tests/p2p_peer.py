"""Two pages of a ``pyodide_p2p`` game over real sockets, without a browser (for the server's tests).

:class:`Peer` speaks a page's side (hello, submit, ``runtime_loaded``, ``p2p_*``, ``step_batch``,
``episode_done``); :func:`p2p_episode` makes what an honest page reports of an episode of the test
study's slime game (both pages of an honest game report the same frames).
"""

from __future__ import annotations

import random
import time
from typing import Any

from honest_page import KEYS
from page_client import Page

from igym_slime.env import make_env

SEATS = ("left", "right")


def p2p_episode(
    seed: int, *, max_steps: int = 90, hash_every: int = 10, rng_seed: int = 0, seat: str = "left"
) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """The steps (with their ``p2p`` part) and ``[step, hash]`` pairs the page of ``seat`` reports of
    one honest episode: both seats' inputs come from ``rng_seed``; ``keys`` only for the page's own seat."""
    env = make_env(lives=2, max_steps=90)
    rng = random.Random(rng_seed)
    env.reset(seed=seed)
    hashes: list[list[Any]] = [[0, str(env.state_hash())]]
    steps: list[dict[str, Any]] = []
    for n in range(1, max_steps + 1):
        actions = {"left": rng.randrange(6), "right": rng.randrange(6)}
        _obs, rewards, terminated, truncated, _infos = env.step(actions)
        steps.append(
            {
                "step": n,
                "t_ms": round(time.time() * 1000, 1),
                "actions": dict(actions),
                "sources": {a: "human" if actions[a] else "default" for a in SEATS},
                "keys": {seat: KEYS[actions[seat]]},
                "rewards": {a: float(rewards[a]) for a in SEATS},
                "terminated": {a: bool(terminated[a]) for a in SEATS},
                "truncated": {a: bool(truncated[a]) for a in SEATS},
                "infos": None,
                "p2p": {"rollbacks": n % 3, "predicted": 0 if n % 4 == 0 else None},
            }
        )
        done = all(terminated[a] or truncated[a] for a in SEATS)
        if done or n == max_steps or n % hash_every == 0:
            hashes.append([n, str(env.state_hash())])
        if done:
            break
    return steps, hashes


class Peer(Page):
    """One page of a P2P game."""

    #: The ``p2p_start`` this page got (set by :func:`pair`).
    start: dict[str, Any]

    def join(self) -> None:
        """From the welcome scene into the game scene (its waiting room until the partner comes)."""
        self.seq += 1
        self.send(
            {
                "type": "submit",
                "seq": self.seq,
                "position": self.scene["position"],
                "answers": {"agree": True},
            }
        )
        self.scene = self.next("scene")

    def loading(self) -> str:
        """The game's id, once both players are matched and the game is loading."""
        while True:
            status = self.next("game_status", timeout=20)
            if status["phase"] == "loading":
                return status["game_id"]

    def errors(self) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == "error"]

    def drain(self, seconds: float = 0.3) -> None:
        """Read what arrives for a while (into ``unclaimed``)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.unclaimed.append(self.recv(timeout=max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                return


def pair(url: str) -> tuple[Peer, Peer, str]:
    """Two pages matched into one game; (the authority's page, the other's, the game id)."""
    first = Peer(url)
    first.join()
    second = Peer(url)
    second.join()
    game_id = first.loading()
    assert second.loading() == game_id
    first.loaded(game_id)
    second.loaded(game_id)
    starts = {}
    for peer in (first, second):
        start = peer.next("p2p_start")
        starts[start["seat"]] = (peer, start)
    authority = next(peer for peer, start in starts.values() if start["authority"])
    other = next(peer for peer, start in starts.values() if not start["authority"])
    for peer, start in starts.values():
        peer.start = start
    return authority, other, game_id
