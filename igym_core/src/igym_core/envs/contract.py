"""The environment contract: PettingZoo's parallel API, and an adapter for single-agent Gymnasium envs.

Every game igym serves is stepped through this contract::

    env.possible_agents                      # every seat, fixed for the env's life
    env.agents                               # the seats still playing this episode
    obs, infos = env.reset(seed=s, options=None)
    obs, rewards, terminations, truncations, infos = env.step({agent: action, ...})
    env.action_space(agent), env.observation_space(agent), env.render()

All returned dicts are keyed by agent. For rollback (peer-to-peer runtimes) an env may also offer
``get_state()``, ``set_state(state)`` and ``state_hash()`` covering its *full* state.
:func:`igym_core.testing.check_env_contract` checks all of it, determinism included.

Observations only for the seats that read them
    An env whose observations are costly to build may offer
    ``set_observed_agents(agents: frozenset[str])``. A runtime calls it before the first
    ``reset`` with the seats whose observation something reads: the bots' seats (their policies
    act on observations), and every seat when the scene records observations. It calls it again
    whenever that set changes (a bot takes over the seat of a player who left, or the player comes
    back). The env may then skip building the other seats' observations and return a cheap
    placeholder for them (zeros of the right shape, so that the dicts keep every agent and stay
    inside the observation space). Nothing else may change: rewards, flags, infos, the state and
    the observations it does build must be exactly what they would be otherwise. Called mid-episode
    with a larger set, it may return the current observation of each seat newly in the set (a
    dict), so that a bot taking over a seat acts on a real observation at once; returning None
    is allowed (that bot then sees the placeholder until the next step). An env without the
    method builds every observation, as before. :func:`tell_observed_agents` is how a runtime
    calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import gymnasium

from igym_core.errors import EnvContractError

__all__ = [
    "GymnasiumParallelEnv",
    "ObservedAgentsEnv",
    "ParallelEnv",
    "RollbackEnv",
    "as_parallel_env",
    "observed_agents_for",
    "tell_observed_agents",
    "unwrap_env",
]

#: The optional methods a rollback runtime needs (``state_hash`` is recommended, not required).
STATE_METHODS = ("get_state", "set_state", "state_hash")


@runtime_checkable
class ParallelEnv(Protocol):
    """PettingZoo's parallel API, as igym uses it."""

    possible_agents: Sequence[str]
    agents: Sequence[str]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]: ...

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]: ...

    def action_space(self, agent: str) -> gymnasium.Space[Any]: ...

    def observation_space(self, agent: str) -> gymnasium.Space[Any]: ...

    def render(self) -> Any: ...


@runtime_checkable
class RollbackEnv(ParallelEnv, Protocol):
    """A parallel env whose full state can be saved, restored and hashed."""

    def get_state(self) -> Any: ...

    def set_state(self, state: Any) -> None: ...

    def state_hash(self) -> Any: ...


@runtime_checkable
class ObservedAgentsEnv(ParallelEnv, Protocol):
    """A parallel env that builds observations only for the seats a runtime names (see the module's
    documentation, "Observations only for the seats that read them")."""

    def set_observed_agents(self, agents: frozenset[str]) -> Mapping[str, Any] | None: ...


#: The optional method of an env that builds observations only for the seats that read them.
OBSERVED_AGENTS_METHOD = "set_observed_agents"


def observed_agents_for(
    bot_agents: Any, possible_agents: Sequence[Any], *, record_observations: bool
) -> frozenset[Any]:
    """The seats whose observations are read: the bots' (``bot_agents``), or every seat of
    ``possible_agents`` when the scene records observations."""
    if record_observations:
        return frozenset(possible_agents)
    return frozenset(bot_agents)


def tell_observed_agents(env: Any, agents: frozenset[Any]) -> dict[Any, Any] | None:
    """Call ``env.set_observed_agents(agents)`` if the env has the method.

    Returns None when the env lacks the method, else the current observations it returned for the
    seats newly observed (an empty dict when it returned none). An exception from the env
    propagates (a runtime treats it as the env failing)."""
    method = getattr(env, OBSERVED_AGENTS_METHOD, None)
    if not callable(method):
        return None
    fresh = method(frozenset(agents))
    return dict(fresh) if fresh else {}


class GymnasiumParallelEnv:
    """A single-agent ``gymnasium.Env`` seen through the parallel API, as one agent ``agent_id``.

    The original env stays at ``.env``. ``get_state``, ``set_state``, ``state_hash`` and
    ``set_observed_agents`` exist on the adapter exactly when the env has them (``hasattr`` tells a
    runtime whether rollback is possible).
    After the episode terminates or is truncated, ``agents`` is empty, as in PettingZoo.

    Per step it builds the five one-entry result dicts and nothing else.
    """

    __slots__ = (
        "_action_space",
        "_observation_space",
        "agent_id",
        "agents",
        "env",
        "get_state",
        "possible_agents",
        "set_observed_agents",
        "set_state",
        "state_hash",
    )

    def __init__(self, env: gymnasium.Env[Any, Any], agent_id: str = "agent_0") -> None:
        if not isinstance(agent_id, str) or not agent_id:
            raise EnvContractError(
                f"agent_id must be a non-empty string such as 'agent_0'; got {agent_id!r}."
            )
        self.env = env
        self.agent_id = agent_id
        self.possible_agents: list[str] = [agent_id]
        self.agents: list[str] = []
        self._action_space = env.action_space
        self._observation_space = env.observation_space
        for name in (*STATE_METHODS, OBSERVED_AGENTS_METHOD):
            method = getattr(env, name, None)
            if callable(method):
                setattr(self, name, method)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        agent = self.agent_id
        self.agents = [agent]
        return {agent: observation}, {agent: info}

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, bool], dict[str, bool], dict[str, Any]]:
        agent = self.agent_id
        if not self.agents:
            raise EnvContractError(
                "step() was called with no live agent: the episode has ended (or reset() was never "
                "called). Call reset() before stepping again."
            )
        try:
            action = actions[agent]
        except KeyError:
            raise EnvContractError(
                f"step() needs an action for {agent!r}; got actions for {list(actions)}. Key the "
                f"actions dict by the agent ids in env.agents."
            ) from None
        observation, reward, terminated, truncated, info = self.env.step(action)
        # Gymnasium allows numpy bools; the parallel API's flags are plain bools.
        terminated = bool(terminated)
        truncated = bool(truncated)
        if terminated or truncated:
            self.agents = []
        return (
            {agent: observation},
            {agent: reward},
            {agent: terminated},
            {agent: truncated},
            {agent: info},
        )

    def action_space(self, agent: str) -> gymnasium.Space[Any]:
        self._check_agent(agent)
        return self._action_space

    def observation_space(self, agent: str) -> gymnasium.Space[Any]:
        self._check_agent(agent)
        return self._observation_space

    def _check_agent(self, agent: str) -> None:
        if agent != self.agent_id:
            raise EnvContractError(
                f"This single-agent env has one agent, {self.agent_id!r}; got {agent!r}. Use "
                f"{self.agent_id!r} (or adapt the env with agent_id={agent!r})."
            )

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    @property
    def metadata(self) -> dict[str, Any]:
        return getattr(self.env, "metadata", {})

    @property
    def render_mode(self) -> str | None:
        return getattr(self.env, "render_mode", None)

    def __repr__(self) -> str:
        return f"GymnasiumParallelEnv({self.env!r}, agent_id={self.agent_id!r})"


_PARALLEL_MEMBERS = ("possible_agents", "reset", "step", "action_space", "observation_space")


def as_parallel_env(env: Any, *, agent_id: str = "agent_0") -> ParallelEnv:
    """Return ``env`` under the parallel API: as is if it has it, adapted if it is a ``gymnasium.Env``.

    Raises:
        EnvContractError: ``env`` is a PettingZoo AEC env, an old ``gym`` env, a class instead of an
            instance, or anything else; the message says what was found and how to fix it.
    """
    if isinstance(env, GymnasiumParallelEnv):
        return env
    if isinstance(env, gymnasium.Env):
        return GymnasiumParallelEnv(env, agent_id=agent_id)
    found = _describe(env)
    if isinstance(env, type):
        raise EnvContractError(
            f"The env factory returned the class {found}, not an environment. Return an instance: "
            f"{env.__name__}(...)."
        )
    if hasattr(env, "agent_iter") and hasattr(env, "last"):
        raise EnvContractError(
            f"Expected a PettingZoo parallel env or a gymnasium.Env; found {found}, a PettingZoo AEC "
            "(turn-based) env. Return pettingzoo.utils.aec_to_parallel(env) from the factory "
            "(or the env module's parallel_env() if it has one)."
        )
    missing = [name for name in _PARALLEL_MEMBERS if not hasattr(env, name)]
    if not missing:
        not_methods = [n for n in ("action_space", "observation_space") if not callable(getattr(env, n))]
        if not_methods:
            raise EnvContractError(
                f"{found} has possible_agents, but {', '.join(not_methods)} is not a method. The "
                "parallel API needs action_space(agent) and observation_space(agent) methods that "
                "return the agent's gymnasium space."
            )
        return env  # type: ignore[no-any-return]
    if hasattr(env, "reset") and hasattr(env, "step") and hasattr(env, "action_space"):
        raise EnvContractError(
            f"Expected a PettingZoo parallel env or a gymnasium.Env; found {found}, which looks like a "
            "single-agent env but does not derive from gymnasium.Env (an old `gym` env?). Derive "
            "the class from gymnasium.Env (reset returning (obs, info), step returning (obs, reward, "
            "terminated, truncated, info)), or convert it with shimmy."
        )
    raise EnvContractError(
        f"Expected a PettingZoo parallel env or a gymnasium.Env; found {found}, which lacks "
        f"{', '.join(missing)}. Return an environment from the factory: gymnasium.make(...), an "
        "instance of a gymnasium.Env subclass, or a pettingzoo ParallelEnv."
    )


def unwrap_env(env: Any) -> Any:
    """The object the researcher's factory returned (the ``gymnasium.Env`` if it was adapted)."""
    if isinstance(env, GymnasiumParallelEnv):
        return env.env
    return env


def _describe(value: Any) -> str:
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    cls = type(value)
    return f"a {cls.__module__}.{cls.__qualname__}"
