"""Envs for the P2P runtime's ``igym check`` tests: a two-seat env without rollback methods, one
with a large state."""

from __future__ import annotations

from typing import Any

from igym_slime.env import make_env


class PlainEnv:
    """Slime Volleyball without ``get_state`` / ``set_state`` / ``state_hash``: it cannot roll back."""

    def __init__(self) -> None:
        self._env = make_env(lives=2, max_steps=90)
        self.possible_agents = self._env.possible_agents
        self.agents = self._env.agents
        self.metadata = getattr(self._env, "metadata", {})

    def __getattr__(self, name: str) -> Any:
        # Everything of the slime env (the renderer reads its ball and players) but rolling back.
        if name in ("get_state", "set_state", "state_hash") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._env, name)

    def observation_space(self, agent: str) -> Any:
        return self._env.observation_space(agent)

    def action_space(self, agent: str) -> Any:
        return self._env.action_space(agent)

    def reset(self, seed: int | None = None, options: Any = None) -> Any:
        out = self._env.reset(seed=seed, options=options)
        self.agents = self._env.agents
        return out

    def step(self, actions: dict[str, Any]) -> Any:
        out = self._env.step(actions)
        self.agents = self._env.agents
        return out

    def render(self) -> Any:
        return self._env.render()

    def close(self) -> None:
        self._env.close()


def make_plain_env() -> PlainEnv:
    return PlainEnv()


def make_big_state_env(**kwargs: Any) -> Any:
    """Slime Volleyball whose state carries 4,000 more numbers (about 20 KB as JSON)."""
    env = make_env(**kwargs)
    get_state, set_state = env.get_state, env.set_state
    pad = [0] * 4000

    def big_get_state() -> Any:
        return {"slime": get_state(), "pad": list(pad)}

    def big_set_state(state: Any) -> None:
        set_state(state["slime"])
        pad[:] = state["pad"]

    env.get_state, env.set_state = big_get_state, big_set_state
    return env
