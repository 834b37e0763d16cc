"""Load an experiment from ``module:attr``, ``path/to/file.py:attr``, or a JSON/TOML file."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import tomllib
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs

from igym_core.config.converter import exception_text, problems_from_exception, structure_or_raise
from igym_core.config.experiment import Experiment, experiment_problems
from igym_core.data.interface import SinkConfig
from igym_core.errors import ConfigError, ExperimentLoadError

__all__ = ["LoadedExperiment", "load_experiment", "validate_experiment"]


@attrs.frozen
class LoadedExperiment:
    experiment: Experiment
    base_dir: Path
    """Where relative files named by scenes live: the experiment file's directory."""
    source: str


def load_experiment(target: str | Experiment, converter: cattrs.Converter) -> LoadedExperiment:
    """Import and validate an experiment. Raises ExperimentLoadError or ConfigError with paths."""
    if isinstance(target, Experiment):
        loaded = LoadedExperiment(target, Path.cwd(), repr(target.experiment_id))
    elif target.endswith((".json", ".toml")) and ":" not in target:
        loaded = _from_data_file(Path(target), converter)
    else:
        loaded = _from_python(target, converter)
    loaded = _structure_sinks(loaded, converter)
    validate_experiment(loaded, converter)
    return loaded


def _structure_sinks(loaded: LoadedExperiment, converter: cattrs.Converter) -> LoadedExperiment:
    """A Python experiment's sinks given as dicts (``{"kind": "parquet"}``) become sink configs, as
    in a TOML file; anything else that is not a sink config is refused with its path."""
    sinks = loaded.experiment.sinks
    if not isinstance(sinks, tuple) or all(isinstance(s, SinkConfig) for s in sinks):
        return loaded
    problems: list[str] = []
    structured: list[Any] = []
    for index, sink in enumerate(sinks):
        if isinstance(sink, SinkConfig):
            structured.append(sink)
        elif isinstance(sink, Mapping):
            try:
                structured.append(converter.structure(dict(sink), SinkConfig))
            except Exception as exc:
                problems.extend(problems_from_exception(exc, f"$.sinks[{index}]"))
        else:
            problems.append(
                f"$.sinks[{index}]: expected a data sink config such as JsonlSinkConfig() or "
                f"{{'kind': 'jsonl'}}; got {sink!r} ({type(sink).__name__}). Fix the entry."
            )
    if problems:
        raise ConfigError(problems, title=f"The experiment in {loaded.source} is invalid")
    experiment = attrs.evolve(loaded.experiment, sinks=tuple(structured))
    return attrs.evolve(loaded, experiment=experiment)


def validate_experiment(loaded: LoadedExperiment, converter: cattrs.Converter) -> None:
    problems = experiment_problems(loaded.experiment)
    if not problems:
        from igym_core.scenes.stager import iter_scenes

        for scene, path in iter_scenes(loaded.experiment.scenes):
            try:
                scene.client_view(converter, loaded.base_dir)
            except Exception as exc:
                problems.append(f"{path}: {exc}")
        for index, sink in enumerate(loaded.experiment.sinks):
            try:
                converter.unstructure(sink)
            except Exception as exc:
                problems.append(f"$.sinks[{index}]: {exc}")
    if problems:
        raise ConfigError(problems, title=f"The experiment in {loaded.source} is invalid")


def _from_data_file(path: Path, converter: cattrs.Converter) -> LoadedExperiment:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ExperimentLoadError(f"Cannot read {path}: {exc.strerror}.") from exc
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ExperimentLoadError(f"{path} is not valid {path.suffix[1:].upper()}: {exc}") from exc
    if isinstance(data, dict):
        # A JSON file may name its schema for editors (``"$schema": "experiment.schema.json"``).
        data.pop("$schema", None)
    experiment = structure_or_raise(converter, data, Experiment, title=f"The experiment in {path} is invalid")
    return LoadedExperiment(experiment, path.resolve().parent, str(path))


def _from_python(target: str, converter: cattrs.Converter) -> LoadedExperiment:
    module_part, sep, attr = target.rpartition(":")
    if not sep:
        module_part, attr = target, ""  # no attribute: the module's one experiment
    if not module_part or (sep and not attr):
        raise ExperimentLoadError(
            f"Expected MODULE:ATTRIBUTE such as my_study:experiment (or path/to/study.py:experiment, "
            f"or study.toml); got {target!r}."
        )
    try:
        if module_part.endswith(".py") or "/" in module_part:
            path = Path(module_part).resolve()
            if not path.is_file():
                raise ExperimentLoadError(f"No such file: {path}.")
            module_name = f"igym_experiment_{path.stem}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ExperimentLoadError(f"Cannot import {path} as a Python module.")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            sys.path.insert(0, str(path.parent))
            spec.loader.exec_module(module)
        else:
            if str(Path.cwd()) not in sys.path and "" not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(module_part)
    except ExperimentLoadError:
        raise
    except ModuleNotFoundError as exc:
        # The target itself (or a package on its dotted path) is missing, not one of its imports.
        is_file = module_part.endswith(".py") or "/" in module_part
        if exc.name and not is_file and (module_part == exc.name or module_part.startswith(exc.name + ".")):
            raise ExperimentLoadError(
                f"No module named {module_part!r}. Run igym from the directory that holds "
                f"{module_part.replace('.', '/')}.py, or give a path: path/to/{module_part}.py:{attr}."
            ) from exc
        raise ExperimentLoadError(f"Importing {module_part!r} failed: {_where(exc)}") from exc
    except Exception as exc:
        raise ExperimentLoadError(f"Importing {module_part!r} failed: {_where(exc)}") from exc
    if not attr:
        attr = _only_experiment(module, module_part)
        target = f"{module_part}:{attr}"
    try:
        value: Any = getattr(module, attr)
    except AttributeError:
        names = [n for n, v in vars(module).items() if isinstance(v, Experiment)]
        hint = f" It defines: {', '.join(names)}." if names else ""
        raise ExperimentLoadError(f"{module_part!r} has no attribute {attr!r}.{hint}") from None
    if callable(value) and not isinstance(value, Experiment):
        value = value()
    if isinstance(value, dict):
        value = structure_or_raise(converter, value, Experiment, title=f"The experiment {target} is invalid")
    if not isinstance(value, Experiment):
        raise ExperimentLoadError(
            f"{target} is a {type(value).__name__}; expected an igym_core.Experiment (or a function "
            "returning one, or a dict describing one)."
        )
    base_dir = Path(getattr(module, "__file__", None) or Path.cwd()).resolve().parent
    return LoadedExperiment(value, base_dir, target)


def _only_experiment(module: Any, module_part: str) -> str:
    """The name of the module's experiment when the target names none: its one ``Experiment``, or
    else an attribute called ``experiment`` (a function or dict may stand there)."""
    by_object: dict[int, str] = {}
    for name, value in vars(module).items():
        if isinstance(value, Experiment) and not name.startswith("_"):
            by_object.setdefault(id(value), name)  # one object under two names is one experiment
    names = list(by_object.values())
    if len(names) == 1:
        return names[0]
    if not names and hasattr(module, "experiment"):
        return "experiment"
    if not names:
        raise ExperimentLoadError(
            f"{module_part!r} defines no igym_core.Experiment at module level; expected one, e.g. "
            f"experiment = Experiment(...), or name the object to serve: {module_part}:ATTRIBUTE."
        )
    choices = ", ".join(f"{module_part}:{n}" for n in names)
    raise ExperimentLoadError(
        f"{module_part!r} defines {len(names)} experiments ({', '.join(names)}); expected one when no "
        f"attribute is given. Name the one to serve: {choices}."
    )


def _where(exc: BaseException) -> str:
    """The exception and the line of the experiment's own code that raised it."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [
        f
        for f in frames
        if not f.filename.startswith("<")
        and "site-packages" not in f.filename
        and "/igym_core/" not in f.filename
        and "importlib" not in f.filename
    ]
    message = str(exc) if isinstance(exc, ValueError | TypeError) and str(exc) else exception_text(exc)
    if not own:
        return message
    frame = own[-1]
    code = f"\n    {frame.line}" if frame.line else ""
    return f"{frame.filename}:{frame.lineno}{code}\n  {message}"
