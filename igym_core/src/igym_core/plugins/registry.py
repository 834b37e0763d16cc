"""Registries: ``kind`` → implementation, per plugin type, with who provided it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import attrs

from igym_core.config.validators import did_you_mean
from igym_core.errors import DuplicatePluginNameError, PluginError, PluginNotFoundError

__all__ = ["KindRegistry", "Registry"]

T = TypeVar("T")


@attrs.frozen
class _Entry(Generic[T]):
    kind: str
    value: T
    provider: str


class KindRegistry(Generic[T]):
    """Maps ``kind`` strings to classes of one plugin type; rejects duplicates, naming both providers."""

    def __init__(self, label: str, base: type | None = None) -> None:
        self.label = label
        self.base = base
        self._entries: dict[str, _Entry[T]] = {}

    def add(self, value: T, *, provider: str) -> None:
        kind = getattr(value, "kind", None)
        if self.base is not None and not (isinstance(value, type) and issubclass(value, self.base)):
            raise PluginError(
                f"Plugin {provider!r} registered {value!r} as a {self.label}, but it is not a "
                f"subclass of {self.base.__module__}.{self.base.__qualname__}. Derive it from that class."
            )
        if not isinstance(kind, str) or not kind:
            raise PluginError(
                f"Plugin {provider!r} registered a {self.label} {value!r} without a 'kind'. "
                "Give the class a class attribute kind = 'some_name'."
            )
        if self.base is not None and kind == getattr(self.base, "kind", None):
            raise PluginError(
                f"Plugin {provider!r} registered a {self.label} {value!r} that keeps its base class's "
                f"kind {kind!r}. Give it a kind of its own."
            )
        existing = self._entries.get(kind)
        if existing is not None:
            raise DuplicatePluginNameError(
                f"Two plugins register {_article(self.label)} {self.label} named {kind!r}: "
                f"{existing.provider!r} "
                f"({_qualname(existing.value)}) and {provider!r} ({_qualname(value)}). Uninstall or "
                f"block one of them (IGYM_BLOCKED_PLUGINS={provider}), or rename the kind."
            )
        self._entries[kind] = _Entry(kind, value, provider)

    def get(self, kind: str) -> T:
        entry = self._entries.get(kind)
        if entry is None:
            installed = ", ".join(sorted(self._entries)) or "none"
            raise PluginNotFoundError(
                f"No {self.label} named {kind!r} is installed; installed: {installed}."
                f"{did_you_mean(kind, self._entries)} Check the spelling, or install the plugin that "
                "provides it (`igym plugins` lists what is loaded)."
            )
        return entry.value

    def provider(self, kind: str) -> str:
        return self._entries[kind].provider

    def kinds(self) -> list[str]:
        return list(self._entries)

    def values(self) -> list[T]:
        return [e.value for e in self._entries.values()]

    def items(self) -> Iterator[tuple[str, T, str]]:
        for e in self._entries.values():
            yield e.kind, e.value, e.provider

    def __contains__(self, kind: object) -> bool:
        return kind in self._entries

    def __len__(self) -> int:
        return len(self._entries)


class Registry:
    """Every registry of one app, built once after plugins load."""

    def __init__(self) -> None:
        from igym_core.commands import Command
        from igym_core.data.interface import DataSink
        from igym_core.matchmaking.interface import Matchmaker
        from igym_core.policies.interface import PolicyLoader
        from igym_core.recruitment import OutcomeRegistry, Recruiter
        from igym_core.rendering.interface import Renderer
        from igym_core.runtime.interface import Runtime
        from igym_core.scenes.interface import SceneConfig

        self.scene_types: KindRegistry[type[SceneConfig]] = KindRegistry("scene type", SceneConfig)
        self.matchmakers: KindRegistry[type[Matchmaker]] = KindRegistry("matchmaker", Matchmaker)
        self.renderers: KindRegistry[type[Renderer]] = KindRegistry("renderer", Renderer)
        self.runtimes: KindRegistry[type[Runtime]] = KindRegistry("runtime", Runtime)
        self.policy_loaders: KindRegistry[type[PolicyLoader]] = KindRegistry("policy loader", PolicyLoader)
        self.data_sinks: KindRegistry[type[DataSink]] = KindRegistry("data sink", DataSink)
        self.commands: KindRegistry[type[Command]] = KindRegistry("command", Command)
        self.recruiters: KindRegistry[type[Recruiter]] = KindRegistry("recruiter", Recruiter)
        # Outcome values (not classes), declared by the plugin that ends studies with them.
        self.outcomes = OutcomeRegistry()

    def all(self) -> dict[str, KindRegistry[Any]]:
        return {
            "scene_types": self.scene_types,
            "matchmakers": self.matchmakers,
            "renderers": self.renderers,
            "runtimes": self.runtimes,
            "policy_loaders": self.policy_loaders,
            "data_sinks": self.data_sinks,
            "commands": self.commands,
            "recruiters": self.recruiters,
            "outcomes": self.outcomes,
        }


def _qualname(value: Any) -> str:
    return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
