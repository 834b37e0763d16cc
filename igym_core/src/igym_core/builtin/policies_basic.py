"""Built-in policies: random actions, a Python function or class, a constant action."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import gymnasium
import numpy as np
from cattrs import Converter

from igym_core.config.converter import exception_text, sentence
from igym_core.config.validators import FieldError
from igym_core.envs.factory import callable_data, callable_ref, import_object, not_loadable_problem
from igym_core.errors import ConfigError
from igym_core.plugins.markers import hookimpl
from igym_core.policies.interface import Policy, PolicyConfig, PolicyLoader

__all__ = [
    "ConstantActions",
    "ConstantPolicy",
    "ConstantPolicyLoader",
    "FunctionPolicy",
    "PythonPolicy",
    "PythonPolicyLoader",
    "RandomActions",
    "RandomPolicy",
    "RandomPolicyLoader",
]


@hookimpl(trylast=True)
def igym_register_policy_loaders() -> list[type[PolicyLoader]]:
    return [RandomPolicyLoader, PythonPolicyLoader, ConstantPolicyLoader]


def _config_error(message: str) -> ConfigError:
    return ConfigError(message, title="")


def _expect_config(loader: PolicyLoader, config: PolicyConfig) -> None:
    if not isinstance(config, loader.config_type):
        raise TypeError(
            f"{type(loader).__name__}.load needs a {loader.config_type.__name__}; got "
            f"{type(config).__name__}. Load policies with igym_core.policies.spec.load_policy."
        )


# --- random ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RandomPolicy(PolicyConfig):
    """Uniformly random actions from the seat's action space (``"random"`` for short).

    The bot is re-seeded at every episode start with a seed derived from the experiment's seed, so a
    recorded seed reproduces it. ``seed`` only matters for actions taken before the first reset.
    For a ``Discrete`` space and a dict observation with an ``action_mask``, only allowed actions
    are drawn.
    """

    kind: ClassVar[str] = "random"
    seed: int | None = None
    """The seed for actions before the first episode starts (every episode re-seeds the bot)."""


class RandomActions:
    """Samples its own copy of the action space, so it never disturbs the env's random streams."""

    def __init__(self, action_space: gymnasium.Space[Any], *, seed: int | None = None) -> None:
        self._space = copy.deepcopy(action_space)
        self._space.seed(seed)
        self._maskable = isinstance(self._space, gymnasium.spaces.Discrete)

    def act(self, observation: Any) -> Any:
        if self._maskable and isinstance(observation, Mapping) and "action_mask" in observation:
            mask = np.asarray(observation["action_mask"], dtype=np.int8)
            return self._space.sample(mask=mask)
        return self._space.sample()

    def reset(self, *, seed: int) -> None:
        self._space.seed(seed)


class RandomPolicyLoader(PolicyLoader):
    kind: ClassVar[str] = "random"
    config_type: ClassVar[type[PolicyConfig]] = RandomPolicy

    def load(
        self,
        config: PolicyConfig,
        *,
        agent: str,
        action_space: Any,
        observation_space: Any,
        base_dir: Path | None,
    ) -> Policy:
        _expect_config(self, config)
        assert isinstance(config, RandomPolicy)  # for type checkers; checked above
        if not isinstance(action_space, gymnasium.spaces.Space):
            raise _config_error(
                f"A random policy for {agent!r} samples the seat's action space, but it is a "
                f"{type(action_space).__name__}, not a gymnasium space. Give the env gymnasium spaces."
            )
        return RandomActions(action_space, seed=config.seed)


# --- python ------------------------------------------------------------------------------------


#: What ``PythonPolicy.target`` holds: a ``module:attr`` string, a function or class, or a policy object.
PolicyTarget = str | Callable[..., Any] | Policy


def _check_target(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, str):
        module, sep, attr = value.rpartition(":")
        if not sep or not module or not attr:
            raise FieldError(
                attribute.name,
                f"expected 'package.module:attribute' or 'path/to/file.py:attribute'; got {value!r}. "
                "Example: 'my_study.bots:greedy'.",
            )
    elif not callable(value) and not callable(getattr(value, "act", None)):
        raise FieldError(
            attribute.name,
            f"expected a function observation -> action, a policy class, an object with an act() "
            f"method, or a 'module:attribute' string naming one; got {type(value).__name__} {value!r}.",
        )


@attrs.frozen(kw_only=True)
class PythonPolicy(PolicyConfig):
    """A bot written in Python. ``target`` is, or names (``"my_study.bots:greedy"``):

    - a function ``f(observation) -> action``;
    - a class, instantiated once per seat with whichever of the keyword arguments ``agent``,
      ``action_space`` and ``observation_space`` its ``__init__`` accepts; its instances need ``act``;
    - an object with an ``act(observation)`` method, used as it is (shared by every seat it fills).

    A ``reset(self, *, seed)`` method, if present, is called at every episode start.
    """

    kind: ClassVar[str] = "python"
    target: PolicyTarget = attrs.field(validator=_check_target)
    """``"module:attribute"`` or ``"path/to/bots.py:attribute"`` naming the function, class or object (in
    Python, also the object itself)."""


class FunctionPolicy:
    """A plain function ``observation -> action`` as a policy."""

    __slots__ = ("act", "function")

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function
        self.act = function

    def __repr__(self) -> str:
        return f"FunctionPolicy({callable_ref(self.function)})"


_CONTEXT_ARGUMENTS = ("agent", "action_space", "observation_space")


class PythonPolicyLoader(PolicyLoader):
    kind: ClassVar[str] = "python"
    config_type: ClassVar[type[PolicyConfig]] = PythonPolicy

    @classmethod
    def configure_converter(cls, converter: Converter) -> None:
        def structure(value: Any, _type: Any) -> Any:
            if isinstance(value, str) or callable(value) or callable(getattr(value, "act", None)):
                return value
            problem = not_loadable_problem(value)
            if problem is not None:
                raise ValueError(f"the target {problem}")
            raise ValueError(
                f"expected a 'module:attribute' string naming a policy function or class; got {value!r}"
            )

        converter.register_structure_hook_func(lambda t: t == PolicyTarget, structure)
        # Config snapshots record a callable by its import path (or mark it as not loadable).
        converter.register_unstructure_hook_func(lambda t: t == PolicyTarget, callable_data)

    def load(
        self,
        config: PolicyConfig,
        *,
        agent: str,
        action_space: Any,
        observation_space: Any,
        base_dir: Path | None,
    ) -> Policy:
        _expect_config(self, config)
        assert isinstance(config, PythonPolicy)  # for type checkers; checked above
        what = f"the python policy for {agent!r}"
        target = config.target
        if isinstance(target, str):
            target = import_object(target, what=what, base_dir=base_dir)
        context = {"agent": agent, "action_space": action_space, "observation_space": observation_space}
        if isinstance(target, type):
            policy = _instantiate(target, context, what=what)
        elif callable(getattr(target, "act", None)):
            policy = target
        elif callable(target):
            return FunctionPolicy(target)
        else:
            raise _config_error(
                f"{what}: {callable_ref(config.target)!r} is of type {type(target).__name__}; expected a "
                "function observation -> action, a policy class, or an object with an act(observation) "
                "method."
            )
        _check_reset(policy, what=what)
        return policy  # type: ignore[no-any-return]


def _instantiate(cls: type, context: dict[str, Any], *, what: str) -> Any:
    name = callable_ref(cls)
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        parameters = None
    if parameters is None:
        kwargs: dict[str, Any] = {}
    elif any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        kwargs = dict(context)
    else:
        kwargs = {k: v for k, v in context.items() if k in parameters}
        missing = [
            p.name
            for p in parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            and p.name not in kwargs
        ]
        if missing:
            raise _config_error(
                f"{what}: {name} is instantiated with keyword arguments chosen from "
                f"{', '.join(_CONTEXT_ARGUMENTS)}, but its __init__ also requires {', '.join(missing)}. "
                "Give those parameters defaults, or name a function that builds the policy."
            )
    try:
        policy = cls(**kwargs)
    except Exception as exc:
        raise _config_error(
            sentence(
                f"{what}: {name}({', '.join(f'{k}=...' for k in kwargs)}) raised {exception_text(exc)}",
                "Fix the policy class.",
            )
        ) from exc
    if not callable(getattr(policy, "act", None)):
        raise _config_error(
            f"{what}: instances of {name} have no act(observation) method; add one returning the action."
        )
    return policy


def _check_reset(policy: Any, *, what: str) -> None:
    reset = getattr(policy, "reset", None)
    if reset is None:
        return
    try:
        parameters = inspect.signature(reset).parameters
    except (TypeError, ValueError):
        return
    accepts_seed = "seed" in parameters and parameters["seed"].kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
    if not accepts_seed and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        raise _config_error(
            f"{what}: {type(policy).__qualname__}.reset is called at every episode start as "
            "reset(seed=...), but it takes no seed. Define it as def reset(self, *, seed): ... and "
            "seed the bot's randomness with it, so that a recorded seed reproduces the bot."
        )


# --- constant ----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ConstantPolicy(PolicyConfig):
    """Always the same ``action`` (a no-op bot, or a baseline). Checked against the action space."""

    kind: ClassVar[str] = "constant"
    action: Any
    """The action played at every step; it must be in the seat's action space."""


class ConstantActions:
    __slots__ = ("action",)

    def __init__(self, action: Any) -> None:
        self.action = action

    def act(self, observation: Any) -> Any:
        return self.action


class ConstantPolicyLoader(PolicyLoader):
    kind: ClassVar[str] = "constant"
    config_type: ClassVar[type[PolicyConfig]] = ConstantPolicy

    def load(
        self,
        config: PolicyConfig,
        *,
        agent: str,
        action_space: Any,
        observation_space: Any,
        base_dir: Path | None,
    ) -> Policy:
        _expect_config(self, config)
        assert isinstance(config, ConstantPolicy)  # for type checkers; checked above
        action = _as_action(config.action, action_space)
        try:
            valid = bool(action_space.contains(action))
        except Exception:
            valid = False
        if not valid:
            raise _config_error(
                f"The constant policy for {agent!r} has action {config.action!r}, which is not in the "
                f"seat's action space {action_space}. Choose an action from that space."
            )
        if isinstance(action, np.ndarray):
            action.flags.writeable = False  # the same array is returned every step
        return ConstantActions(action)


def _as_action(value: Any, space: Any) -> Any:
    """A list or number from TOML/JSON, in the form the space holds (arrays of its dtype, ints)."""
    spaces = gymnasium.spaces
    if isinstance(space, spaces.Box | spaces.MultiDiscrete | spaces.MultiBinary):
        try:
            return np.array(value, dtype=space.dtype)
        except (TypeError, ValueError):
            return value
    if isinstance(space, gymnasium.spaces.Discrete) and isinstance(value, int | np.integer):
        return int(value)
    return copy.deepcopy(value)
