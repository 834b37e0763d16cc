"""Everything ``igym run`` checks before it serves an experiment, in one place.

:func:`validate_for_serving` is the only path from a target string (or an experiment object) to
what the server needs: the app factory builds the app from its :class:`ServingPlan`, and
``igym check`` calls it and stops there. So the check cannot pass an experiment that the server
refuses: there is no second list of checks to fall out of step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import cattrs

from igym_core.config.converter import exception_text, make_converter, sentence
from igym_core.config.loader import LoadedExperiment, load_experiment
from igym_core.config.validators import did_you_mean
from igym_core.data.interface import DataSink, SinkConfig
from igym_core.errors import ConfigError, IgymError
from igym_core.protocol.messages import MessageDecoder
from igym_core.recruitment import outcome_code_problems, reachable_outcomes
from igym_core.scenes.interface import PrepareContext
from igym_core.scenes.stager import iter_scenes
from igym_core.server.security import PAGE_SCRIPT_SOURCES

if TYPE_CHECKING:
    from igym_core.config.experiment import Experiment
    from igym_core.plugins.manager import IgymPluginManager
    from igym_core.settings import Settings

__all__ = ["ServingPlan", "validate_for_serving"]


@attrs.frozen(kw_only=True)
class ServingPlan:
    """An experiment checked against the installed plugins, with what the server builds from it."""

    loaded: LoadedExperiment
    converter: cattrs.Converter
    sinks: tuple[tuple[type[DataSink], SinkConfig], ...]
    """Each data sink's class and config (opened by :meth:`open_sinks`, which creates files)."""
    views: Mapping[int, dict[str, Any]]
    """``id(scene)`` → the scene's client view."""
    prepared: Mapping[int, Any]
    """``id(scene)`` → what the scene's ``prepare`` returned (a game scene's env, seats and bots)."""
    client_assets: tuple[Any, ...]
    routes: tuple[Any, ...]
    """The plugins' HTTP route handlers."""
    messages: MessageDecoder = attrs.field(factory=MessageDecoder)
    """Decodes the client's messages: the built-in ones and every installed runtime's."""
    notes: tuple[str, ...] = ()
    """What the game scenes' runtimes said about them (``igym check`` prints these)."""
    warnings: tuple[str, ...] = ()
    """What may go wrong but does not stop serving (the recruitment platform's, e.g. a random code
    sent to Prolific); ``igym check`` prints them and ``igym run`` logs them."""
    script_sources: tuple[str, ...] = ()
    """Sources the participant page's ``script-src`` allows beyond igym's own, for this experiment's
    game scenes (``RuntimeCheck.script_sources``; a Unity build with decompression fallback: ``blob:``)."""

    @property
    def experiment(self) -> Experiment:
        return self.loaded.experiment

    def open_sinks(self, data_dir: Path) -> list[DataSink]:
        return [sink_type(config, data_dir) for sink_type, config in self.sinks]


def validate_for_serving(
    target: str | Experiment | LoadedExperiment,
    plugins: IgymPluginManager,
    settings: Settings,
) -> ServingPlan:
    """Load ``target`` and run every check ``igym run`` runs before serving it.

    Raises :class:`~igym_core.errors.ConfigError` (every problem with its ``$.path``),
    :class:`~igym_core.errors.ExperimentLoadError` or :class:`~igym_core.errors.PluginError`.
    Writes nothing: sinks are checked, not opened.
    """
    converter = make_converter(plugins.registry)
    # A message type declared twice (by two runtimes, or by a runtime and the protocol) refuses here.
    runtimes = plugins.registry.runtimes
    messages = MessageDecoder.for_runtimes((kind, runtimes.get(kind).messages) for kind in runtimes.kinds())
    loaded = target if isinstance(target, LoadedExperiment) else load_experiment(target, converter)
    exp = loaded.experiment
    sinks = _sink_plan(plugins, exp.sinks, loaded.source)
    # The snapshot each run writes holds the experiment as the converter unstructures it.
    try:
        converter.unstructure(exp)
    except Exception as exc:
        raise ConfigError(
            [sentence(f"$: the experiment cannot be recorded in the run's snapshot: {exception_text(exc)}")],
            title=f"The experiment in {loaded.source} cannot be served",
        ) from exc
    scenes = iter_scenes(exp.scenes)
    # Client views once, up front: a missing body_file fails here, not mid-study.
    views = {id(scene): scene.client_view(converter, loaded.base_dir) for scene, _path in scenes}
    # Game scenes build their env, seats and bots (runtimes, renderers, matchmakers and policies
    # are looked up in the registry), so that a broken one fails before the first participant.
    context = PrepareContext(
        base_dir=loaded.base_dir, registry=plugins.registry, converter=converter, experiment_seed=exp.seed
    )
    prepared: dict[int, Any] = {}
    problems: list[str] = []
    for scene, path in scenes:
        if id(scene) in prepared:
            continue
        try:
            prepared[id(scene)] = scene.prepare(context)
        except ConfigError as exc:
            problems.extend(_in_scene(path, problem) for problem in exc.problems)
        except IgymError:
            raise  # its own class and message (a missing dependency's is the install command)
        except Exception as exc:
            problems.append(sentence(f"{path}: preparing the scene failed: {exception_text(exc)}"))
    if problems:
        raise ConfigError(problems, title=f"The experiment in {loaded.source} cannot be served")
    # Each game scene's runtime may refuse it (what to add) and say what it will need (notes), and
    # its client names the runtime's browser module.
    notes: list[str] = []
    script_sources: list[str] = []
    checked: set[int] = set()
    for scene, path in scenes:
        kind = scene.game_runtime()
        if kind is None or id(scene) in checked:
            continue
        checked.add(id(scene))
        runtime = runtimes.get(kind)
        try:
            check = runtime.check_scene(scene, prepared[id(scene)], settings)
        except IgymError:
            raise
        except Exception as exc:
            problems.append(
                sentence(f"{path}: the {kind!r} runtime could not check the scene: {exception_text(exc)}")
            )
            continue
        problems.extend(_in_scene(path, problem) for problem in check.problems)
        notes.extend(f"{path} ({scene.scene_id}): {note}" for note in check.notes)
        for source in check.script_sources:  # the page's CSP, widened for this experiment only
            if source not in PAGE_SCRIPT_SOURCES:
                problems.append(
                    f"{path}: the {kind!r} runtime asks the page to run scripts from {source!r}; igym "
                    f"allows only {', '.join(PAGE_SCRIPT_SOURCES)} beyond its own. Serve the script "
                    "from igym instead (a client asset of the plugin)."
                )
            elif source not in script_sources:
                script_sources.append(source)
        module = runtime.client_module
        if module is not None:
            # The page's Content-Security-Policy runs scripts of igym's own origin only.
            if not module.startswith("/plugins/") or ".." in module or "//" in module:
                problems.append(
                    f"{path}: the {kind!r} runtime's client_module {module[:80]!r} is not a path under "
                    "/plugins/; serve the module as the plugin's client asset and name it "
                    "'/plugins/<plugin>/<file>.js'."
                )
            views[id(scene)] = {**views[id(scene)], "runtime_module": module}
        if not check.problems:
            try:
                runtime_view = runtime.scene_view(scene, prepared[id(scene)])
            except IgymError:
                raise
            except Exception as exc:
                problems.append(
                    sentence(
                        f"{path}: the {kind!r} runtime could not describe the scene: {exception_text(exc)}"
                    )
                )
                continue
            if runtime_view is not None:
                views[id(scene)] = {**views[id(scene)], "runtime_view": dict(runtime_view)}
    # Outcomes are declared by the plugins that produce them (igym_register_outcomes).
    problems.extend(outcome_code_problems(exp, plugins.registry.outcomes))
    if problems:
        raise ConfigError(problems, title=f"The experiment in {loaded.source} cannot be served")
    return ServingPlan(
        loaded=loaded,
        converter=converter,
        sinks=sinks,
        views=views,
        prepared=prepared,
        client_assets=tuple(plugins.client_assets()),
        routes=tuple(plugins.routes(settings)),
        messages=messages,
        notes=tuple(notes),
        warnings=_recruitment_warnings(exp, plugins),
        script_sources=tuple(script_sources),
    )


def _recruitment_warnings(exp: Experiment, plugins: IgymPluginManager) -> tuple[str, ...]:
    """The recruiter's warnings, and its warnings about the outcomes the experiment can produce."""
    if exp.recruitment is None:
        return ()
    reachable = reachable_outcomes(exp, plugins.registry.outcomes)
    return (*exp.recruitment.check_warnings(exp), *exp.recruitment.check_outcome_warnings(reachable))


def _in_scene(path: str, problem: str) -> str:
    """A scene's problem under the scene's path: ``$.x: …`` (a path in the scene) becomes
    ``$.scenes[i].x: …``; any other text is prefixed with ``$.scenes[i]: ``."""
    if problem.startswith("$.") or problem.startswith("$["):
        return f"{path}{problem[1:]}"
    return f"{path}: {problem}"


def _sink_plan(
    plugins: IgymPluginManager, configs: Sequence[SinkConfig], source: str
) -> tuple[tuple[type[DataSink], SinkConfig], ...]:
    installed = plugins.registry.data_sinks
    if not configs:
        if "jsonl" not in installed:
            raise ConfigError(
                "$.sinks: the experiment names no data sink and the built-in 'jsonl' sink is blocked; "
                "add a sink to the experiment's sinks, or unblock igym.sink_jsonl.",
                title="No data sink",
            )
        default = installed.get("jsonl")
        return ((default, default.config_type()),)
    plan: list[tuple[type[DataSink], SinkConfig]] = []
    problems: list[str] = []
    for index, config in enumerate(configs):
        kind = type(config).kind
        if kind not in installed:
            problems.append(
                f"$.sinks[{index}]: no data sink of kind {kind!r} is installed; installed: "
                f"{', '.join(sorted(installed.kinds())) or 'none'}.{did_you_mean(kind, installed.kinds())} "
                "Install (or unblock) the plugin that provides it; `igym plugins` lists what is loaded."
            )
            continue
        sink_type = installed.get(kind)
        if not isinstance(config, sink_type.config_type):
            problems.append(
                f"$.sinks[{index}]: the {kind!r} sink takes a {sink_type.config_type.__name__}; got "
                f"{type(config).__name__}. Use {sink_type.config_type.__name__}(...)."
            )
            continue
        plan.append((sink_type, config))
    if problems:
        raise ConfigError(problems, title=f"The experiment in {source} cannot be served")
    return tuple(plan)
