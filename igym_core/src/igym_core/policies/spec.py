"""From what an experiment writes for a bot seat to a policy config, and from a config to a policy.

Accepted forms (``policy_config_from``):

- a ``PolicyConfig`` (``RandomPolicy()``, a plugin's ``OnnxPolicy(path=...)``): used as is;
- the name of an installed policy kind whose config needs no arguments: ``"random"``;
- ``"module:attr"`` or ``"path/to/bots.py:attr"``: a Python policy (function, class or object);
- a function, a class, or an object with an ``act`` method: a Python policy;
- a table/dict with a ``kind`` key: that kind's config (``{"kind": "constant", "action": 0}``).

Core code never names the built-in config classes: it finds every kind in the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs

from igym_core.config.converter import problems_from_exception
from igym_core.config.validators import did_you_mean
from igym_core.errors import ConfigError, PluginError, PluginNotFoundError
from igym_core.plugins.registry import Registry
from igym_core.policies.interface import Policy, PolicyConfig, PolicyLoader

__all__ = ["load_policy", "policy_config_from"]

#: The kind whose config wraps Python targets (built in, or a plugin that replaces it).
PYTHON_KIND = "python"


def _error(message: str) -> ConfigError:
    return ConfigError(message, title="")


def _forms(registry: Registry) -> str:
    kinds = ", ".join(repr(k) for k in sorted(registry.policy_loaders.kinds())) or "none installed"
    return (
        "a policy config such as RandomPolicy(), an installed policy kind "
        f"({kinds}), 'module:attribute' or 'path/to/bots.py:attribute' naming a Python policy, "
        "a function observation -> action, a policy class, or a table with a 'kind' key"
    )


def policy_config_from(
    value: Any, registry: Registry, *, converter: cattrs.Converter | None = None
) -> PolicyConfig:
    """Turn what an experiment gives for a bot seat into a policy config.

    Args:
        value: one of the forms in this module's docstring.
        registry: the app's registry (its policy loaders define the kinds).
        converter: the app's converter (``make_converter``), used for tables; without one, a table
            is structured with a plain converter (nested plugin types may then be missed).

    Raises:
        ConfigError: the value has none of the accepted forms, names no installed kind, or its
            fields are wrong; the message says how to fix it.
    """
    loaders = registry.policy_loaders
    if isinstance(value, PolicyConfig):
        return value
    if isinstance(value, type) and issubclass(value, PolicyConfig):
        return _config_without_arguments(value, shown=value.__qualname__)
    if isinstance(value, str):
        if value in loaders:
            return _config_without_arguments(loaders.get(value).config_type, shown=repr(value))
        if ":" in value:
            return _python_config(value, registry)
        raise _error(
            f"Unknown policy {value!r}; expected {_forms(registry)}. Check the spelling, or install the "
            "plugin that provides that kind (`igym plugins` lists what is loaded)."
        )
    if isinstance(value, Mapping):
        return _from_table(value, registry, converter)
    if callable(value) or callable(getattr(value, "act", None)):
        return _python_config(value, registry)
    raise _error(f"A policy must be {_forms(registry)}; got {type(value).__name__} {value!r}.")


def _config_without_arguments(config_type: type[PolicyConfig], *, shown: str) -> PolicyConfig:
    required = [
        field.name for field in attrs.fields(config_type) if field.default is attrs.NOTHING and field.init
    ]
    if required:
        raise _error(
            f"The policy {shown} needs {', '.join(required)}; write {config_type.__qualname__}("
            f"{', '.join(f'{name}=...' for name in required)}) or a table {{kind = {config_type.kind!r}, "
            f"{', '.join(f'{name} = ...' for name in required)}}}."
        )
    return config_type()


def _python_config(target: Any, registry: Registry) -> PolicyConfig:
    try:
        loader = registry.policy_loaders.get(PYTHON_KIND)
    except PluginNotFoundError as exc:
        raise _error(
            f"{target!r} names a Python policy, but no policy loader of kind {PYTHON_KIND!r} is "
            f"installed (is the built-in 'igym.policies_basic' plugin blocked?). Unblock it. {exc}"
        ) from exc
    try:
        return loader.config_type(target=target)  # type: ignore[call-arg]
    except (ValueError, TypeError) as exc:
        raise _error(f"Invalid Python policy {target!r}: {exc}") from exc


def _from_table(
    value: Mapping[str, Any], registry: Registry, converter: cattrs.Converter | None
) -> PolicyConfig:
    kind = value.get("kind")
    if kind is None:
        raise _error(
            f"A policy table needs a 'kind' key naming the policy type "
            f"({', '.join(sorted(registry.policy_loaders.kinds()))}); got {dict(value)!r}."
        )
    if kind not in registry.policy_loaders:
        installed = ", ".join(sorted(registry.policy_loaders.kinds()))
        raise _error(
            f"Unknown policy kind {kind!r}; installed: {installed}."
            f"{did_you_mean(kind, registry.policy_loaders.kinds())} Check the spelling, or install the "
            "plugin that provides it (`igym plugins` lists what is loaded)."
        )
    try:
        if converter is not None:
            return converter.structure(dict(value), PolicyConfig)  # type: ignore[no-any-return]
        loader = registry.policy_loaders.get(kind)
        plain = cattrs.Converter(forbid_extra_keys=True)
        loader.configure_converter(plain)
        data = {k: v for k, v in value.items() if k != "kind"}
        return plain.structure(data, loader.config_type)
    except Exception as exc:
        problems = problems_from_exception(exc, path="policy")
        raise ConfigError(problems, title=f"The {kind!r} policy {dict(value)!r} is invalid") from exc


def load_policy(
    config: PolicyConfig,
    registry: Registry,
    *,
    agent: str,
    action_space: Any,
    observation_space: Any,
    base_dir: Path | None = None,
) -> Policy:
    """Build the policy for seat ``agent`` with the loader registered for ``config``'s kind.

    Raises:
        PluginNotFoundError: no loader of that kind is installed.
        ConfigError: the loader cannot build a policy from this config for these spaces.
        PluginError: the loader returned something without an ``act`` method.
    """
    kind = type(config).kind
    loader_type: type[PolicyLoader] = registry.policy_loaders.get(kind)
    if not isinstance(config, loader_type.config_type):
        raise PluginError(
            f"The policy config {type(config).__qualname__} has kind {kind!r}, but the loader installed "
            f"for {kind!r} ({registry.policy_loaders.provider(kind)!r}) expects "
            f"{loader_type.config_type.__qualname__}. Two plugins define the kind {kind!r}; use the "
            "installed plugin's config class, or uninstall one."
        )
    policy = loader_type().load(
        config,
        agent=agent,
        action_space=action_space,
        observation_space=observation_space,
        base_dir=base_dir,
    )
    if not callable(getattr(policy, "act", None)):
        raise PluginError(
            f"The {kind!r} policy loader of plugin {registry.policy_loaders.provider(kind)!r} returned "
            f"{type(policy).__qualname__}, which has no act(observation) method. Fix or block that plugin."
        )
    return policy
