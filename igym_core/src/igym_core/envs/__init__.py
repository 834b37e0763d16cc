"""Environments: the parallel-API contract, the Gymnasium adapter, factories named in configs, seeds."""

from igym_core.envs.contract import (
    GymnasiumParallelEnv,
    ParallelEnv,
    RollbackEnv,
    as_parallel_env,
    unwrap_env,
)
from igym_core.envs.factory import callable_ref, import_object, resolve_callable
from igym_core.envs.seeding import MAX_SEED, agent_seed, derive_seed, episode_seed, game_seed

__all__ = [
    "MAX_SEED",
    "GymnasiumParallelEnv",
    "ParallelEnv",
    "RollbackEnv",
    "agent_seed",
    "as_parallel_env",
    "callable_ref",
    "derive_seed",
    "episode_seed",
    "game_seed",
    "import_object",
    "resolve_callable",
    "unwrap_env",
]
