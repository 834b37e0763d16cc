"""Shared pieces of the rollback engine's tests: a small second env, negative-control envs, specs,
and a driver that plays two real :class:`P2PBrowserGame` peers over simulated links.

The env factories are named by ``"p2p_support:..."`` references (the tests put this directory on
``sys.path``), as a page would import them.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping
from typing import Any

from igym_pyodide_p2p.browser.p2p_game import P2PBrowserGame
from igym_pyodide_p2p.browser.spec import GameSpec
from igym_pyodide_p2p.netsim import FaultyLink, PeerPair

MAPPING = {
    "ArrowLeft": 1,
    "ArrowRight": 2,
    "ArrowUp": 3,
    "ArrowUp+ArrowLeft": 4,
    "ArrowUp+ArrowRight": 5,
}
KEY_STATES: list[tuple[str, ...]] = [
    ("ArrowRight",),
    ("ArrowUp", "ArrowLeft"),
    (),
    ("ArrowLeft", "x"),
    ("ArrowUp",),
    ("ArrowRight", "ArrowUp"),
]
_MASK = (1 << 64) - 1


class CatchEnv:
    """Two paddles on a 9-cell floor catch fruit that falls from a seeded column (pure Python).

    Actions: 0 stay, 1 left, 2 right (3, 4, 5 act as 0). A catch is +1 for the catcher; the episode
    ends when someone has ``target`` catches.
    """

    WIDTH = 9
    HEIGHT = 6

    def __init__(self, *, target: int = 4) -> None:
        self.possible_agents = ["left", "right"]
        self.agents: list[str] = []
        self.target = target
        self.rng = 1
        self.paddles = [2, 6]
        self.fruit = [4, 0]
        self.score = [0, 0]
        self.steps = 0

    def _draw(self) -> int:
        self.rng = (self.rng * 6364136223846793005 + 1442695040888963407) & _MASK
        return (self.rng >> 33) % self.WIDTH

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        self.rng = (seed or 0) & _MASK
        self.agents = list(self.possible_agents)
        self.paddles = [2, 6]
        self.score = [0, 0]
        self.steps = 0
        self.fruit = [self._draw(), 0]
        return self._obs(), {a: {} for a in self.agents}

    def _obs(self) -> dict[str, Any]:
        return {
            a: (self.paddles[i], self.fruit[0], self.fruit[1]) for i, a in enumerate(self.possible_agents)
        }

    def step(self, actions: Mapping[str, Any]) -> tuple[Any, ...]:
        for index, agent in enumerate(self.possible_agents):
            action = int(actions.get(agent, 0))
            move = {1: -1, 2: 1}.get(action, 0)
            self.paddles[index] = min(self.WIDTH - 1, max(0, self.paddles[index] + move))
        self.fruit[1] += 1
        rewards = {"left": 0.0, "right": 0.0}
        if self.fruit[1] >= self.HEIGHT:
            for index, agent in enumerate(self.possible_agents):
                if self.paddles[index] == self.fruit[0]:
                    rewards[agent] = 1.0
                    self.score[index] += 1
            self.fruit = [self._draw(), 0]
        self.steps += 1
        done = max(self.score) >= self.target
        flags = {a: done for a in self.possible_agents}
        self.agents = [] if done else list(self.possible_agents)
        return self._obs(), rewards, flags, {a: False for a in self.possible_agents}, {a: {} for a in flags}

    def render(self) -> list[Any]:
        from igym_core.rendering.objects import Circle, Rect

        objects: list[Any] = [
            Rect(id=f"paddle{i}", x=p / self.WIDTH, y=0.9, width=0.1, height=0.05)
            for i, p in enumerate(self.paddles)
        ]
        objects.append(
            Circle(id="fruit", x=self.fruit[0] / self.WIDTH, y=self.fruit[1] / self.HEIGHT, radius=0.03)
        )
        return objects

    def get_state(self) -> dict[str, Any]:
        return {
            "agents": list(self.agents),
            "target": self.target,
            "rng": self.rng,
            "paddles": list(self.paddles),
            "fruit": list(self.fruit),
            "score": list(self.score),
            "steps": self.steps,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.agents = list(state["agents"])
        self.target = int(state["target"])
        self.rng = int(state["rng"])
        self.paddles = [int(v) for v in state["paddles"]]
        self.fruit = [int(v) for v in state["fruit"]]
        self.score = [int(v) for v in state["score"]]
        self.steps = int(state["steps"])

    def state_hash(self) -> str:
        text = json.dumps(self.get_state(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


class GlobalRandomCatchEnv(CatchEnv):
    """Negative control: draws the fruit's column from the global ``random`` (outside its state)."""

    def _draw(self) -> int:
        return random.randrange(self.WIDTH)


class HashSkipsScoreEnv(CatchEnv):
    """Negative control: its hash leaves out ``score``."""

    def state_hash(self) -> str:
        state = self.get_state()
        del state["score"]
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


class BigStateCatchEnv(CatchEnv):
    """CatchEnv with ``pad`` numbers in its state, one changed every step: a state larger than one
    8 KB packet (``pad=4000``: about 25 KB as JSON)."""

    def __init__(self, *, target: int = 4, pad: int = 4000) -> None:
        super().__init__(target=target)
        self.pad = [0] * pad

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        out = super().reset(seed=seed, options=options)
        self.pad = [(i * 7919 + (seed or 0)) % 100_003 for i in range(len(self.pad))]
        return out

    def step(self, actions: Mapping[str, Any]) -> tuple[Any, ...]:
        out = super().step(actions)
        self.pad[self.steps % len(self.pad)] += sum(int(a) for a in actions.values()) + 1
        return out

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "pad": list(self.pad)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        super().set_state(state)
        self.pad = [int(v) for v in state["pad"]]


def make_big_catch(**kwargs: Any) -> CatchEnv:
    return BigStateCatchEnv(**kwargs)


def make_catch(**kwargs: Any) -> CatchEnv:
    return CatchEnv(**kwargs)


def make_global_random_catch(**kwargs: Any) -> CatchEnv:
    return GlobalRandomCatchEnv(**kwargs)


ENVS: dict[str, dict[str, Any]] = {
    "slime": {
        "env_factory": "igym_slime.env:make_env",
        "render_fn": "igym_slime.render:draw",
        "env_kwargs": {"lives": 2, "max_steps": 3000},
    },
    "catch": {"env_factory": "p2p_support:make_catch", "render_fn": None, "env_kwargs": {"target": 3}},
    "big": {"env_factory": "p2p_support:make_big_catch", "render_fn": None, "env_kwargs": {"target": 3}},
    "global_random": {
        "env_factory": "p2p_support:make_global_random_catch",
        "render_fn": None,
        "env_kwargs": {"target": 50},
    },
}


def spec(env: str, seat: str, *, max_steps: int = 120, **overrides: Any) -> GameSpec:
    data = dict(
        scene_id="p2p",
        agents=["left", "right"],
        human_seat=seat,
        action_mapping=MAPPING,
        default_action=0,
        fps=30,
        num_episodes=2,
        max_steps=max_steps,
        hud=None,
        bots={},
        action_spaces={"left": [6, 0], "right": [6, 0]},
    )
    data.update(ENVS[env])
    data.update(overrides)
    return GameSpec.from_json(data)


def peers(
    env: str, *, max_steps: int = 120, game_id: str = "g1", **options: Any
) -> tuple[P2PBrowserGame, P2PBrowserGame]:
    a = P2PBrowserGame(
        spec(env, "left", max_steps=max_steps),
        game_id=game_id,
        seat="left",
        partner_seat="right",
        authority=True,
        **options,
    )
    b = P2PBrowserGame(
        spec(env, "right", max_steps=max_steps),
        game_id=game_id,
        seat="right",
        partner_seat="left",
        authority=False,
        **options,
    )
    return a, b


class Match:
    """Two peers over two links, with scripted keys; collects batches, frames and events."""

    def __init__(
        self,
        a: P2PBrowserGame,
        b: P2PBrowserGame,
        *,
        link_a: FaultyLink | None = None,
        link_b: FaultyLink | None = None,
        keys_seed: int = 0,
        key_period_ms: float = 150.0,
        b_start_ms: float = 0.0,
        b_period_scale: float = 1.0,
    ) -> None:
        self.games = {"a": a, "b": b}
        self.batches: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
        self.frames: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
        self.outs: dict[str, list[tuple[float, dict[str, Any]]]] = {"a": [], "b": []}
        self.keys_rng = random.Random(keys_seed)
        self.key_period_ms = key_period_ms
        self._key_plan: dict[tuple[str, int], tuple[str, ...]] = {}
        self.pair = PeerPair(
            a,
            b,
            a_to_b=link_a or FaultyLink(seed=1),
            b_to_a=link_b or FaultyLink(seed=2),
            b_start_ms=b_start_ms,
            b_period_scale=b_period_scale,
            on_tick=self._on_tick,
        )

    def _keys(self, name: str, now_ms: float) -> tuple[str, ...]:
        slot = (name, int(now_ms // self.key_period_ms))
        if slot not in self._key_plan:
            self._key_plan[slot] = self.keys_rng.choice(KEY_STATES)
        return self._key_plan[slot]

    def _on_tick(self, name: str, game: Any, out: dict[str, Any], now_ms: float) -> None:
        game.set_held(self._keys(name, now_ms))
        self.outs[name].append((now_ms, out))
        if out["frame"] is not None:
            self.frames[name].append(out["frame"])
        batch = game.take_batch()
        if batch is not None:
            self.batches[name].append(batch)

    def start(self, episode: int, seed: int, *, max_steps: int | None = None) -> None:
        for game in self.games.values():
            game.start_episode(episode, seed, max_steps=max_steps, fps=30)

    def play_episode(self, *, limit_ms: float = 120_000) -> None:
        a, b = self.games["a"], self.games["b"]
        until = self.pair.now + limit_ms
        self.pair.run(until_ms=until, stop=lambda _pair: a.engine.done and b.engine.done)

    def steps(self, name: str, episode: int | None = None) -> list[dict[str, Any]]:
        return [
            step
            for batch in self.batches[name]
            if episode is None or batch["episode"] == episode
            for step in batch["steps"]
        ]

    def hashes(self, name: str, episode: int | None = None) -> list[list[Any]]:
        return [
            entry
            for batch in self.batches[name]
            if episode is None or batch["episode"] == episode
            for entry in batch["hashes"]
        ]

    def events(self, name: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.pair.events[name] if kind is None or e["kind"] == kind]


def corrupt_at(game: Any, frame: int, mutate: Callable[[Any], None]) -> None:
    """A determinism bug in one peer: each time its env simulates ``frame``, ``mutate(env)`` runs after
    the step (so a rollback through that frame goes wrong again)."""
    env = game.env
    step = env.step

    def buggy_step(actions: Any) -> Any:
        result = step(actions)
        if env.steps == frame:
            mutate(env)
        return result

    env.step = buggy_step


def canonical(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step without what legitimately differs between the peers (timing, this page's predictions)."""
    return {k: v for k, v in step.items() if k not in ("t_ms", "p2p")}


def lockstep(env_factory: Callable[[], Any], seed: int, steps: list[dict[str, Any]]) -> list[Any]:
    """Replay the confirmed actions in a fresh env; returns per step (rewards, flags) and the final hash."""
    env = env_factory()
    env.reset(seed=seed)
    out = []
    for step in steps:
        _obs, rewards, terms, truncs, _infos = env.step(step["actions"])
        out.append(
            (
                {k: float(v) for k, v in rewards.items()},
                {k: bool(v) for k, v in terms.items()},
                {k: bool(v) for k, v in truncs.items()},
            )
        )
    out.append(env.state_hash())
    return out


class ButtonEnv(CatchEnv):
    """Ends (terminated) at a step from ``arm_at`` on at which ``right`` plays 3; truncated at
    ``max_steps`` otherwise. A peer that predicts ``right`` still playing 3 predicts the end."""

    def __init__(self, *, arm_at: int = 10, max_steps: int = 40) -> None:
        super().__init__(target=10**6)
        self.arm_at = arm_at
        self.max_steps = max_steps

    def step(self, actions: Mapping[str, Any]) -> tuple[Any, ...]:
        obs, rewards, _terms, _truncs, infos = super().step(actions)
        pressed = int(actions.get("right", 0)) == 3 and self.steps >= self.arm_at
        truncated = not pressed and self.steps >= self.max_steps
        self.agents = [] if pressed or truncated else list(self.possible_agents)
        terms = {a: pressed for a in self.possible_agents}
        return obs, rewards, terms, {a: truncated for a in self.possible_agents}, infos

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "arm_at": self.arm_at, "max_steps": self.max_steps}

    def set_state(self, state: Mapping[str, Any]) -> None:
        super().set_state(state)
        self.arm_at = int(state["arm_at"])
        self.max_steps = int(state["max_steps"])


def make_button(**kwargs: Any) -> ButtonEnv:
    return ButtonEnv(**kwargs)


ENVS["button"] = {"env_factory": "p2p_support:make_button", "render_fn": None, "env_kwargs": {}}
