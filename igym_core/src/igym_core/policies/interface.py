"""Policies fill the seats that no human takes.

An experiment names a policy per bot seat with a config (``RandomPolicy()``, ``PythonPolicy(target=
"my_bots:greedy")``, a plugin's ``OnnxPolicy(path=...)``), or a shorthand that
:func:`igym_core.policies.spec.policy_config_from` turns into one. Each config class belongs to one
:class:`PolicyLoader` (same ``kind``), which builds the :class:`Policy` for one seat of one game.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import attrs
from cattrs import Converter

from igym_core.errors import PluginError

__all__ = [
    "Policy",
    "PolicyBatcher",
    "PolicyConfig",
    "PolicyLoader",
    "ResettablePolicy",
    "batcher_of",
    "reset_policy",
]


@runtime_checkable
class Policy(Protocol):
    """Chooses an action for one seat from that seat's observation.

    ``act`` is called once per step for a bot seat, on the game's loop: keep it fast, or run heavy
    models in a policy plugin that does so off the loop. A policy may also define
    ``reset(self, *, seed: int) -> None``, called at the start of every episode with a seed derived
    from the experiment's seed, so that a recorded seed reproduces the bot.
    """

    def act(self, observation: Any) -> Any: ...


@runtime_checkable
class ResettablePolicy(Policy, Protocol):
    """A policy that is told when an episode starts (and re-seeds itself)."""

    def reset(self, *, seed: int) -> None: ...


@runtime_checkable
class PolicyBatcher(Protocol):
    """Evaluates many policies that share one model in a single call (batched inference).

    A policy opts in by having an attribute ``batcher`` that is not ``None``: one batcher object
    shared by every policy built from the same model. At each tick, the server runtime collects
    every bot seat that is due to act, across all the games ticking at that instant, groups them by
    batcher, and calls :meth:`act_batch` once per batcher instead of calling each policy's ``act``.
    The order of ``policies`` is deterministic (games in start order, then seats in env order), so
    seeded sampling stays reproducible. Per-seat state (recurrent state, RNG) lives in each policy
    object; the batcher reads and updates it.
    """

    def act_batch(self, policies: Sequence[Policy], observations: Sequence[Any]) -> Sequence[Any]:
        """Return one action per policy, in order, for the observation at the same position."""
        ...


def batcher_of(policy: Policy) -> PolicyBatcher | None:
    """The policy's shared :class:`PolicyBatcher`, or ``None`` when it acts one observation at a time."""
    return getattr(policy, "batcher", None)


def reset_policy(policy: Policy, *, seed: int) -> None:
    """Call ``policy.reset(seed=seed)`` if the policy has a ``reset``; otherwise do nothing."""
    reset = getattr(policy, "reset", None)
    if reset is not None:
        reset(seed=seed)


@attrs.frozen(kw_only=True)
class PolicyConfig:
    """Base of every policy kind's config; a policy plugin subclasses it with its own ``kind``.

    In TOML/JSON a policy is a table with a ``kind`` key and the config's fields.
    """

    kind: ClassVar[str] = "policy"


class PolicyLoader(ABC):
    """Builds policies of one ``kind`` (``random``, ``python``, ``onnx``, ...) from their config.

    ``config_type`` is the config class experiments use to select and configure this loader; its
    ``kind`` must equal the loader's.
    """

    kind: ClassVar[str]
    config_type: ClassVar[type[PolicyConfig]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if inspect.isabstract(cls) or "kind" not in vars(cls) or not hasattr(cls, "config_type"):
            return
        config_kind = getattr(cls.config_type, "kind", None)
        if config_kind != cls.kind:
            raise PluginError(
                f"Policy loader {cls.__module__}.{cls.__qualname__} has kind {cls.kind!r} but its "
                f"config_type {cls.config_type.__qualname__} has kind {config_kind!r}; they must be "
                f"equal (the kind in a config selects the loader). Set kind: ClassVar[str] = "
                f"{cls.kind!r} on {cls.config_type.__qualname__}."
            )

    @classmethod  # noqa: B027 (an optional hook: most loaders need no cattrs hooks)
    def configure_converter(cls, converter: Converter) -> None:
        """Register cattrs hooks for types this loader's config uses (called once per app)."""

    @abstractmethod
    def load(
        self,
        config: PolicyConfig,
        *,
        agent: str,
        action_space: Any,
        observation_space: Any,
        base_dir: Path | None,
    ) -> Policy:
        """Build the policy for seat ``agent`` of one game.

        Called when a game starts, once per bot seat (not per episode). Raise ``ConfigError`` if
        the config cannot work with these spaces, saying how to fix it.

        Args:
            config: an instance of ``config_type``.
            agent: the seat's agent id.
            action_space: the seat's gymnasium action space.
            observation_space: the seat's gymnasium observation space.
            base_dir: the directory relative files start from (the experiment file's directory),
                or ``None`` for the current directory.
        """
