"""Small deterministic envs for game-scene tests (pure Python apart from Gymnasium's spaces)."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from igym_core import EndScene, Experiment, GymScene, StaticScene
from igym_core.rendering.objects import Circle, Rect, Text


class Corridor(gymnasium.Env):
    """Walk right from 0 to ``length``: actions 0 left, 1 stay, 2 right. Reward 1 on arrival."""

    metadata = {"render_modes": []}

    def __init__(self, length: int = 50) -> None:
        self.length = length
        self.action_space = spaces.Discrete(3)
        self.observation_space = spaces.Box(0, length, shape=(1,), dtype=np.float32)
        self.position = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.position = int(self.np_random.integers(0, 3))
        return np.array([self.position], dtype=np.float32), {"start": self.position}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self.position = max(0, self.position + int(action) - 1)
        arrived = self.position >= self.length
        info = {"position": self.position, "detail": {"moved": int(action) != 1}}
        return np.array([self.position], dtype=np.float32), float(arrived), arrived, False, info


def draw_corridor(env: Any) -> list[Any]:
    inner = env.unwrapped
    return [
        Rect(id="floor", x=300, y=390, width=600, height=20, fill="#475569", permanent=True),
        Circle(id="walker", x=10 + inner.position * 10, y=360, radius=10, fill="#f59e0b"),
        Text(id="label", x=10, y=10, text=f"at {inner.position}"),
    ]


def corridor_scene(**overrides: Any) -> GymScene:
    """The corridor game the tests play: ArrowLeft walks left, ArrowRight right, the default stays
    (so an episode without keys lasts ``max_steps``); 60 fps, 2 episodes of 15 steps, no countdown."""
    options: dict[str, Any] = dict(
        scene_id="walk",
        env_factory=Corridor,
        render_fn=draw_corridor,
        action_mapping={"ArrowLeft": 0, "ArrowRight": 2},
        default_action=1,
        fps=60,
        num_episodes=2,
        max_steps=15,
        countdown_s=0,
    )
    options.update(overrides)
    return GymScene(**options)


def game_study(*games: GymScene, experiment_id: str = "game_test", seed: int = 7) -> Experiment:
    """``games``, then a thank-you page and the end."""
    return Experiment(
        experiment_id=experiment_id,
        seed=seed,
        scenes=(*games, StaticScene(scene_id="after", body="Thanks"), EndScene(scene_id="end")),
    )


class Duel:
    """Two agents, ``human`` and ``bot``; each action (0-4) adds to its own counter.

    A PettingZoo-style parallel env without PettingZoo. Ends when either counter reaches ``target``.
    """

    metadata = {"name": "duel"}

    def __init__(self, target: int = 1000) -> None:
        self.possible_agents = ["human", "bot"]
        self.agents: list[str] = []
        self.target = target
        self.counters = {"human": 0, "bot": 0}

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(5)

    def observation_space(self, agent: str) -> spaces.Space:
        return spaces.Box(0, 10_000, shape=(2,), dtype=np.int64)

    def _obs(self) -> dict[str, Any]:
        both = np.array([self.counters["human"], self.counters["bot"]], dtype=np.int64)
        return {a: both.copy() for a in self.agents}

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        self.agents = list(self.possible_agents)
        self.counters = {"human": 0, "bot": 0}
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        for agent, action in actions.items():
            self.counters[agent] += int(action)
        done = any(v >= self.target for v in self.counters.values())
        obs = self._obs()
        rewards = {a: float(actions[a]) for a in self.agents}
        terminations = {a: done for a in self.agents}
        truncations = {a: False for a in self.agents}
        infos = {a: {} for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def render(self) -> list[Any]:
        return [
            Rect(id="h", x=100, y=200, width=20, height=self.counters["human"] % 300 + 1),
            Rect(id="b", x=500, y=200, width=20, height=self.counters["bot"] % 300 + 1, fill="#22c55e"),
        ]

    def close(self) -> None:
        pass


class CountingBatcher:
    """A PolicyBatcher that records the size of every batched call (tests of batched bots)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def act_batch(self, policies, observations):
        self.calls.append(len(policies))
        return [policy.choose(obs) for policy, obs in zip(policies, observations, strict=True)]


SHARED_BATCHER = CountingBatcher()


class BatchedEcho:
    """A bot whose action depends on the observation and on its own seat's state, in batches or not.

    ``choose`` is the one rule; ``act`` (one at a time) and the batcher both use it, so the records
    tell whether an action came from either path, and ``acted_alone`` counts the unbatched calls.
    """

    batcher = SHARED_BATCHER
    acted_alone = 0

    def __init__(self) -> None:
        self.calls = 0

    def choose(self, observation) -> int:
        self.calls += 1
        return (int(observation[0]) + self.calls) % 5

    def act(self, observation) -> int:
        type(self).acted_alone += 1
        return self.choose(observation)

    def reset(self, *, seed: int) -> None:
        self.calls = 0


def episode_sample() -> dict[str, Any]:
    """The values of an ``episodes`` row (``records.episode_row``'s keyword arguments), for the
    tests that compare a row's columns with the builder's."""
    return dict(
        episode=1,
        seed=5,
        steps=10,
        end_reason="max_steps",
        returns={},
        seats={},
        started_at="2026-12-05T00:00:00.000Z",
        duration_ms=330,
        fps=30,
        frames_dropped={},
        tick_lateness_ms_p50=None,
        tick_lateness_ms_p99=None,
        tick_lateness_ms_max=None,
        rtt_ms={},
        paused_ms=0,
        pauses=0,
        pause_reasons={},
    )
