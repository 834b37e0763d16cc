"""Environments: the parallel-API contract, the Gymnasium adapter, factories named in configs, seeds."""

from igym_core.envs.contract import (
    GymnasiumParallelEnv,
    ObservedAgentsEnv,
    ParallelEnv,
    RollbackEnv,
    as_parallel_env,
    observed_agents_for,
    tell_observed_agents,
    unwrap_env,
)
from igym_core.envs.factory import (
    NOT_LOADABLE,
    callable_data,
    callable_ref,
    import_object,
    not_loadable_problem,
    resolve_callable,
)
from igym_core.envs.seeding import MAX_SEED, agent_seed, derive_seed, episode_seed, game_seed

__all__ = [
    "MAX_SEED",
    "NOT_LOADABLE",
    "GymnasiumParallelEnv",
    "ObservedAgentsEnv",
    "ParallelEnv",
    "RollbackEnv",
    "agent_seed",
    "as_parallel_env",
    "callable_data",
    "callable_ref",
    "derive_seed",
    "episode_seed",
    "game_seed",
    "import_object",
    "not_loadable_problem",
    "observed_agents_for",
    "resolve_callable",
    "tell_observed_agents",
    "unwrap_env",
]
