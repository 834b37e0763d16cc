"""igym: Gymnasium/PettingZoo environments and surveys as browser experiments.

The names an experiment file needs are importable from here::

    from igym_core import Experiment, StartScene, StaticScene, SurveyScene, EndScene
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from igym_core.config.experiment import Experiment
from igym_core.config.urls import UrlParam
from igym_core.plugins.markers import hookimpl
from igym_core.scenes.interface import SceneConfig, SceneContext
from igym_core.scenes.stager import ByCondition, RandomizeOrder, RepeatScene


def _installed_version() -> str:
    """The version pip or uv installed (one source of truth: igym_core/pyproject.toml). A source tree
    on ``sys.path`` without installed metadata has none: ``0+unknown`` says so instead of guessing."""
    try:
        return importlib.metadata.version("igym-core")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _installed_version()

# The built-in scene and question types are plugins; they are re-exported lazily for experiment files.
_BUILTIN_EXPORTS = {
    "Prolific": "igym_core.builtin.recruiters",
    "MTurk": "igym_core.builtin.recruiters",
    "ScreeningScene": "igym_core.builtin.scene_screening",
    "SlowConnection": "igym_core.builtin.slow_connection",
    "StartScene": "igym_core.builtin.scenes_static",
    "StaticScene": "igym_core.builtin.scenes_static",
    "SurveyScene": "igym_core.builtin.scenes_static",
    "EndScene": "igym_core.builtin.scenes_static",
    "TextQuestion": "igym_core.builtin.questions",
    "ChoiceQuestion": "igym_core.builtin.questions",
    "ScaleQuestion": "igym_core.builtin.questions",
    "OptionBoxes": "igym_core.builtin.questions",
    "Choice": "igym_core.builtin.questions",
    "OptionBox": "igym_core.builtin.questions",
    "ScaleLabel": "igym_core.builtin.questions",
    "JsonlSinkConfig": "igym_core.builtin.sink_jsonl",
    "GymScene": "igym_core.builtin.scene_gym",
    "Bot": "igym_core.builtin.scene_gym",
    "Asset": "igym_core.builtin.scene_gym",
    "HudView": "igym_core.builtin.scene_gym",
    "WaitingRoom": "igym_core.builtin.scene_gym",
    "RandomPolicy": "igym_core.builtin.policies_basic",
    "PythonPolicy": "igym_core.builtin.policies_basic",
    "ConstantPolicy": "igym_core.builtin.policies_basic",
}

__all__ = [
    "ByCondition",
    "Experiment",
    "RandomizeOrder",
    "RepeatScene",
    "SceneConfig",
    "SceneContext",
    "UrlParam",
    "__version__",
    "hookimpl",
    *_BUILTIN_EXPORTS,
]


def __getattr__(name: str) -> Any:
    module_name = _BUILTIN_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'igym_core' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
