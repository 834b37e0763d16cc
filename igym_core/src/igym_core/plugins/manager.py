"""The per-app plugin manager and the typed facade core code calls hooks through.

Order of set-up: add the specs, apply the block list, register the built-ins by name, load the
``igym`` entry points (unless autoload is off), register extra plugins named in settings, check that
every hookimpl matches a spec, and log one line naming each plugin. There is no global manager:
every app (and every test) builds its own.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import pluggy
import structlog

from igym_core import hookspecs
from igym_core.config.converter import sentence
from igym_core.errors import PluginError
from igym_core.plugins.markers import ENTRY_POINT_GROUP, PROJECT_NAME
from igym_core.plugins.registry import Registry

if TYPE_CHECKING:
    from igym_core.config.experiment import Experiment
    from igym_core.plugins.assets import ClientAssets
    from igym_core.runtime.interface import GameInfo
    from igym_core.scenes.interface import SceneConfig
    from igym_core.session.conditions import ConditionLedger
    from igym_core.session.participant import Participant, ParticipantIdentity
    from igym_core.settings import Settings

__all__ = ["BUILTIN_PLUGINS", "IgymPluginManager", "PluginInfo", "create_plugin_manager"]

log = structlog.get_logger(__name__)

#: Built-in plugins, registered by name (``igym.<module>``) and blockable like any other.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "scenes_static",
    "sink_jsonl",
    "identity_token",
    "conditions_balanced",
    "scene_gym",
    "runtime_server",
    "renderers",
    "policies_basic",
    "matchmakers",
    "recruiters",
    "scene_screening",
    "outcomes",
)

_REGISTER_HOOKS: dict[str, str] = {
    "scene_types": "igym_register_scene_types",
    "matchmakers": "igym_register_matchmakers",
    "renderers": "igym_register_renderers",
    "runtimes": "igym_register_runtimes",
    "policy_loaders": "igym_register_policy_loaders",
    "data_sinks": "igym_register_data_sinks",
    "commands": "igym_register_commands",
    "recruiters": "igym_register_recruiters",
    "outcomes": "igym_register_outcomes",
}


@attrs.frozen
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    registers: dict[str, list[str]]


class IgymPluginManager:
    """Typed facade over a pluggy manager. Core code never touches ``pm.hook`` directly."""

    def __init__(self, *, strict: bool = False) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        # Historic: every plugin registered from now on gets this call as it is registered.
        self.pm.hook.igym_add_hookspecs.call_historic(kwargs={"plugin_manager": self})
        self.strict = strict
        self._registry: Registry | None = None

    # --- set-up -------------------------------------------------------------------------------
    def add_hookspecs(self, module_or_class: object) -> None:
        self.pm.add_hookspecs(module_or_class)

    def register(self, plugin: object, name: str | None = None) -> str:
        if self._registry is not None:
            raise PluginError(
                "Plugins must be registered before the registry is built; register it when "
                "creating the plugin manager (settings.plugins) instead."
            )
        return self.pm.register(plugin, name=name) or name or ""

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._registry = None

    def is_blocked(self, name: str) -> bool:
        return self.pm.is_blocked(name)

    def plugin_names(self) -> list[str]:
        return [name for name, plugin in self.pm.list_name_plugin() if plugin is not None]

    def blocked_names(self) -> list[str]:
        return [name for name, plugin in self.pm.list_name_plugin() if plugin is None]

    def plugin_info(self, *, with_registrations: bool = True) -> list[PluginInfo]:
        """Each loaded plugin with its distribution and version, and what it registers.

        ``with_registrations=False`` leaves the registry unbuilt (more plugins may still come).
        """
        dists = {id(plugin): dist for plugin, dist in self.pm.list_plugin_distinfo()}
        provided: dict[str, dict[str, list[str]]] = {}
        if with_registrations:
            for category, kinds in self.registry.all().items():
                for kind, _value, provider in kinds.items():
                    provided.setdefault(provider, {}).setdefault(category, []).append(kind)
            for provider, assets in self._client_assets_by_plugin().items():
                provided.setdefault(provider, {})["client_assets"] = assets
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:  # blocked
                continue
            dist = dists.get(id(plugin))
            infos.append(
                PluginInfo(
                    name=name,
                    distribution=dist.project_name if dist is not None else _own_distribution(plugin),
                    version=dist.version if dist is not None else _own_version(plugin),
                    registers=provided.get(name, {}),
                )
            )
        return infos

    # --- registration hooks -------------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = self._build_registry()
        return self._registry

    def _build_registry(self) -> Registry:
        registry = Registry()
        targets = registry.all()
        for category, hook_name in _REGISTER_HOOKS.items():
            for provider, items in self._collect(hook_name):
                for item in items:
                    targets[category].add(item, provider=provider)
        return registry

    def _collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, list[Any]]]:
        """Call a register hook implementation by implementation, keeping who returned what."""
        caller = getattr(self.pm.hook, hook_name)
        out: list[tuple[str, list[Any]]] = []
        for impl in reversed(caller.get_hookimpls()):  # registration order
            try:
                result = impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:
                raise PluginError(
                    f"Plugin {impl.plugin_name!r} failed in {hook_name}: {exc!r}. Fix or block it "
                    f"(IGYM_BLOCKED_PLUGINS={impl.plugin_name})."
                ) from exc
            if result is None:
                continue
            if not isinstance(result, list | tuple):
                raise PluginError(
                    f"Plugin {impl.plugin_name!r}: {hook_name} must return a list, "
                    f"got {type(result).__name__}."
                )
            out.append((impl.plugin_name, list(result)))
        return out

    def client_assets(self) -> list[ClientAssets]:
        return [a for _provider, items in self._collect("igym_register_client_assets") for a in items]

    def _client_assets_by_plugin(self) -> dict[str, list[str]]:
        return {
            provider: [a.plugin for a in items]
            for provider, items in self._collect("igym_register_client_assets")
            if items
        }

    def routes(self, settings: Settings) -> list[Any]:
        return [r for _p, items in self._collect("igym_register_routes", settings=settings) for r in items]

    # --- decisions ----------------------------------------------------------------------------
    def resolve_participant(
        self, *, token: str | None, params: Mapping[str, str], known: Participant | None
    ) -> ParticipantIdentity:
        identity = self.pm.hook.igym_resolve_participant(token=token, params=params, known=known)
        if identity is None:
            raise PluginError(
                "No plugin decided who a participant is (igym_resolve_participant returned None); "
                "the built-in 'igym.identity_token' plugin may be blocked. Unblock it."
            )
        return identity

    def resolve_condition(
        self, *, participant: Participant, experiment: Experiment, ledger: ConditionLedger
    ) -> str:
        condition = self.pm.hook.igym_resolve_condition(
            participant=participant, experiment=experiment, ledger=ledger
        )
        if condition is None or condition not in experiment.conditions:
            raise PluginError(
                f"igym_resolve_condition returned {condition!r}; expected one of "
                f"{list(experiment.conditions)}. Check the plugin that assigns conditions, or unblock "
                "the built-in 'igym.conditions_balanced'."
            )
        return condition

    # --- notifications ------------------------------------------------------------------------
    def notify_participant_joined(self, participant: Participant) -> None:
        self._notify("igym_on_participant_joined", participant=participant)

    def notify_scene_activated(self, participant: Participant, scene: SceneConfig, instance: int) -> None:
        self._notify("igym_on_scene_activated", participant=participant, scene=scene, instance=instance)

    def notify_participant_left(self, participant: Participant, reason: str) -> None:
        self._notify("igym_on_participant_left", participant=participant, reason=reason)

    def notify_participant_finished(self, participant: Participant) -> None:
        self._notify("igym_on_participant_finished", participant=participant)

    def notify_game_started(self, game: GameInfo) -> None:
        self._notify("igym_on_game_started", game=game)

    def notify_episode_started(self, game: GameInfo, episode: int, seed: int) -> None:
        self._notify("igym_on_episode_started", game=game, episode=episode, seed=seed)

    def notify_episode_ended(self, game: GameInfo, episode: int, summary: Mapping[str, Any]) -> None:
        self._notify("igym_on_episode_ended", game=game, episode=episode, summary=summary)

    def notify_game_ended(self, game: GameInfo, reason: str) -> None:
        self._notify("igym_on_game_ended", game=game, reason=reason)

    def notify_matched(self, game: GameInfo, waited_s: Mapping[str, float]) -> None:
        self._notify("igym_on_matched", game=game, waited_s=waited_s)

    def notify_waiting_timeout(
        self, participant: Participant, scene_id: str, waited_s: float, action: str
    ) -> None:
        self._notify(
            "igym_on_waiting_timeout",
            participant=participant,
            scene_id=scene_id,
            waited_s=waited_s,
            action=action,
        )

    def notify_partner_left(self, game: GameInfo, participant_id: str, outcome: str) -> None:
        self._notify("igym_on_partner_left", game=game, participant_id=participant_id, outcome=outcome)

    def _notify(self, hook_name: str, **kwargs: Any) -> None:
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception:
                log.exception("hook_failed", plugin=impl.plugin_name, hook=hook_name)
                if self.strict:
                    raise


def create_plugin_manager(
    *,
    blocked: Iterable[str] = (),
    autoload: bool = True,
    extra: Iterable[object | str] = (),
    strict: bool = False,
    quiet: bool = False,
) -> IgymPluginManager:
    """Build a fresh plugin manager.

    Args:
        blocked: plugin names to refuse (``igym.sink_jsonl`` for a built-in, the entry-point name
            for an installed plugin).
        autoload: load plugins from the ``igym`` entry-point group.
        extra: more plugins: objects, or dotted module paths to import.
        strict: re-raise failures in notification hooks (for tests and development).
        quiet: do not log the ``plugins_loaded`` line (the command line's own look-up of plugin
            commands; the app that then starts logs it).
    """
    manager = IgymPluginManager(strict=strict)
    for name in blocked:
        manager.pm.set_blocked(name)
    for module_name in BUILTIN_PLUGINS:
        name = f"igym.{module_name}"
        if manager.pm.is_blocked(name):
            continue
        manager.register(importlib.import_module(f"igym_core.builtin.{module_name}"), name=name)
    if autoload:
        manager.pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for item in extra:
        plugin = importlib.import_module(item) if isinstance(item, str) else item
        name = item if isinstance(item, str) else None
        if name is None and isinstance(plugin, types.ModuleType):
            name = plugin.__name__
        if name is not None and manager.pm.is_blocked(name):
            continue
        manager.register(plugin, name=name)
    try:
        manager.pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            sentence(
                str(exc),
                "A hook implementation has a name that no igym hook has: check the spelling "
                "against igym_core.hookspecs, or mark it @hookimpl(optionalhook=True).",
            )
        ) from exc
    if not quiet:
        log.info(
            "plugins_loaded",
            plugins=[
                f"{i.name}={i.distribution or '-'}@{i.version or '-'}"
                for i in manager.plugin_info(with_registrations=False)
            ],
        )
    return manager


def _own_distribution(plugin: object) -> str | None:
    module = getattr(plugin, "__name__", "") or getattr(type(plugin), "__module__", "")
    return "igym-core" if str(module).startswith("igym_core.") else None


def _own_version(plugin: object) -> str | None:
    if _own_distribution(plugin) == "igym-core":
        from igym_core import __version__

        return __version__
    return None
