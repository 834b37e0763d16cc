"""The ``onnx`` policy kind: one :class:`OnnxActor` per bot seat, sharing one :class:`OnnxModel`."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import gymnasium
import numpy as np
from cattrs import Converter

from igym_core.config.converter import exception_text, sentence
from igym_core.policies.interface import Policy, PolicyConfig, PolicyLoader
from igym_onnx.config import OnnxConfigError, OnnxPolicy, configure_converter
from igym_onnx.model import OnnxModel, load_model

__all__ = ["OnnxActor", "OnnxPolicyLoader"]


class OnnxActor:
    """The policy of one seat: its recurrent state and its sampling stream; the model is shared.

    Attributes:
        batcher: the shared :class:`OnnxModel` when the model takes batches (the server runtime then
            calls ``batcher.act_batch`` for all its seats at once), else ``None``.
        seed: the seed of the current sampling stream: the last ``reset(seed=...)``, or the
            config's ``seed`` before any. In a game, episode *k*'s seed is
            ``igym_core.envs.agent_seed(seed of episode k in episodes.jsonl, agent)``.
        draws: uniform draws used since the last reset (one per sampled action).
        state: the recurrent state inputs' current values (batch size 1).
    """

    def __init__(self, model: OnnxModel, *, agent: str, action_start: int, seed: int) -> None:
        self.model = model
        self.agent = agent
        self.batcher: OnnxModel | None = model if model.signature.batchable else None
        self.action_start = action_start
        self.seed = seed
        self.draws = 0
        self.state: list[np.ndarray] = model.initial_state()

    def __repr__(self) -> str:
        return f"OnnxActor({self.model.path.name}, agent={self.agent!r}, seed={self.seed})"

    def act(self, observation: Any) -> int:
        """The action for one observation (the same computation as a batch of one)."""
        return self.model.act_batch([self], [observation])[0]

    def reset(self, *, seed: int) -> None:
        """Start an episode: zero the recurrent state, restart the sampling stream from ``seed``."""
        self.seed = int(seed)
        self.draws = 0
        self.state = self.model.initial_state()

    def logits(self, observation: Any) -> np.ndarray:
        """The model's logits for one observation (advances the recurrent state, draws nothing)."""
        return self.model.evaluate([self], [observation])[0]

    def choose(self, logits: np.ndarray, observation: Any) -> int:
        """The action for a row of logits, masked by the observation's action mask (one draw if sampling)."""
        model = self.model
        u = None
        if model.sampling:
            u = model.draw(self.seed, self.draws)
            self.draws += 1
        index = model.select(logits, model.mask_of(observation), u)
        return self.action_start + index


def _space_name(space: Any) -> str:
    return type(space).__name__


class OnnxPolicyLoader(PolicyLoader):
    """Builds :class:`OnnxActor` policies; checks the model against each seat's spaces first."""

    kind: ClassVar[str] = "onnx"
    config_type: ClassVar[type[PolicyConfig]] = OnnxPolicy

    @classmethod
    def configure_converter(cls, converter: Converter) -> None:
        configure_converter(converter)

    def load(
        self,
        config: PolicyConfig,
        *,
        agent: str,
        action_space: Any,
        observation_space: Any,
        base_dir: Path | None,
    ) -> Policy:
        if not isinstance(config, OnnxPolicy):
            raise TypeError(f"OnnxPolicyLoader.load needs an OnnxPolicy; got {type(config).__name__}.")
        where = f"the onnx policy for {agent!r} ({config.path})"
        if not isinstance(action_space, gymnasium.spaces.Discrete):
            raise OnnxConfigError(
                f"{where}: the seat's action space is {action_space}; onnx policies choose among the "
                "actions of a Discrete space (one logit each). Give the seat a Discrete action space, or a "
                "Python policy."
            )
        model = load_model(config, base_dir=base_dir)
        model.check_actions(int(action_space.n), where=where)
        actor = OnnxActor(model, agent=agent, action_start=int(action_space.start), seed=config.seed)
        check_fit(actor, observation_space, int(action_space.n), where=where)
        return actor


def check_fit(actor: OnnxActor, observation_space: Any, n_actions: int, *, where: str) -> None:
    """Run the model once on an observation from ``observation_space``; raise if anything does not fit.

    The probe uses a copy of the policy (its state and draws are untouched) and a copy of the space
    (the env's random streams are untouched).
    """
    model = actor.model
    key = model.mask_key
    if isinstance(observation_space, gymnasium.spaces.Dict):
        names = list(observation_space.spaces)
        explicit_mask = model.config.mask_key
        if explicit_mask is not None and explicit_mask not in names:
            raise OnnxConfigError(
                f"{where}: mask_key {explicit_mask!r} is not a key of the observation ({names}); fix "
                "mask_key."
            )
        for name in model.decl.keys or ():
            if name not in names:
                raise OnnxConfigError(
                    f"{where}: preprocess.keys names {name!r}, which the observation does not have; "
                    f"its keys: {names}."
                )
        if key in names:
            mask_space = observation_space.spaces[key]
            size = int(np.prod(mask_space.shape)) if mask_space.shape is not None else None
            if size is not None and size != n_actions:
                raise OnnxConfigError(
                    f"{where}: the action mask {key!r} has {size} entries, but the action space has "
                    f"{n_actions} actions."
                )
    elif model.decl.keys is not None:
        raise OnnxConfigError(
            f"{where}: preprocess.keys is {list(model.decl.keys)!r}, but the seat's observations are "
            f"{_space_name(observation_space)}, not a dict; remove keys."
        )
    if not isinstance(observation_space, gymnasium.spaces.Space):
        return
    space = copy.deepcopy(observation_space)
    space.seed(0)
    try:
        sample = space.sample()
    except Exception:
        return  # a space that cannot sample: the first real step will tell
    if isinstance(sample, Mapping) and key in sample:
        sample = {**sample, key: np.ones(n_actions, dtype=np.int8)}
    probe = copy.copy(actor)
    probe.state = model.initial_state()
    try:
        logits = model.evaluate([probe], [sample])
    except OnnxConfigError as exc:
        raise OnnxConfigError(f"{where}: {exc}") from exc
    except Exception as exc:
        raise OnnxConfigError(
            sentence(
                f"{where}: running the model on an observation of the seat's space {observation_space} "
                f"failed: {exception_text(exc)}",
                "Check preprocess (keys, dtype) against the model's inputs (`igym onnx check` shows both).",
            )
        ) from exc
    if logits.shape[1] != n_actions:
        raise OnnxConfigError(
            f"{where}: the model gives {logits.shape[1]} logits per observation, but the action space has "
            f"{n_actions} actions. Use the model trained for this env, or set logits_output."
        )
