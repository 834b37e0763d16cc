"""numpy views of Slime Volleyball for training (the environment's core has no numpy).

:class:`NumpyObservations` wraps a :class:`~igym_slime.env.SlimeVolleyEnv`: observations become
``float32`` arrays of a ``Box(12)`` space. With ``own_frame=True`` each player sees the court as
the left player does and acts in that frame: the right player's observation is mirrored and its
action mirrored back, so one policy trained on either side plays both::

    env = NumpyObservations(SlimeVolleyEnv(), own_frame=True)
    obs, infos = env.reset(seed=0)            # obs["right"][0] < 0: it sees itself on the left
    env.step({"left": 2, "right": 2})          # both move towards the net

:func:`observation_matrix` does the same for many observations at once (training loops).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np

from igym_slime.env import OBSERVATION_SIZE, X_INDICES, SlimeVolleyEnv, mirror_action
from igym_slime.spaces import observation_bounds

__all__ = ["MIRROR", "NumpyObservations", "observation_matrix"]

#: Multiply an observation by this to mirror it (x positions and x velocities negated).
MIRROR = np.ones(OBSERVATION_SIZE, dtype=np.float32)
MIRROR[list(X_INDICES)] = -1.0


def observation_matrix(observations: Sequence[Sequence[float]], *, own_frame: bool = True) -> np.ndarray:
    """A ``float32`` array ``[n, 12]`` of observations; with ``own_frame``, each row is mirrored when
    its player is on the right (its own x is positive)."""
    matrix = np.asarray(observations, dtype=np.float32).reshape(-1, OBSERVATION_SIZE)
    if own_frame:
        right = matrix[:, 0] > 0
        matrix[right] *= MIRROR
    return matrix


class NumpyObservations:
    """The parallel env with ``float32`` array observations (``Box(12)``), optionally in each
    player's own frame (see the module docstring). Everything else is passed through, the state
    methods included (the wrapper keeps no state of its own)."""

    def __init__(self, env: SlimeVolleyEnv | None = None, *, own_frame: bool = False) -> None:
        self.env = env if env is not None else SlimeVolleyEnv()
        self.own_frame = bool(own_frame)
        low, high = observation_bounds()  # symmetric in x, so mirrored observations fit too
        self._observation_space = gymnasium.spaces.Box(
            np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32), dtype=np.float32
        )

    @property
    def possible_agents(self) -> list[str]:
        return self.env.possible_agents

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    @property
    def unwrapped(self) -> SlimeVolleyEnv:
        return self.env

    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        self.env.observation_space(agent)  # checks the agent
        return self._observation_space

    def action_space(self, agent: str) -> Any:
        return self.env.action_space(agent)

    def _convert(self, observations: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
        out = {}
        for agent, observation in observations.items():
            array = np.asarray(observation, dtype=np.float32)
            if self.own_frame and agent == "right":
                array = array * MIRROR
            out[agent] = array
        return out

    def reset(self, seed: int | None = None, options: Mapping[str, Any] | None = None) -> tuple[dict, dict]:
        observations, infos = self.env.reset(seed=seed, options=options)
        return self._convert(observations), infos

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self.own_frame and "right" in actions:
            actions = {**actions, "right": mirror_action(int(actions["right"]))}
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        return self._convert(observations), rewards, terminations, truncations, infos

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    def get_state(self) -> dict[str, Any]:
        return self.env.get_state()

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.env.set_state(state)

    def state_hash(self) -> str:
        return self.env.state_hash()
