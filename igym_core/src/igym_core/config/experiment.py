"""The experiment: what a researcher writes and ``igym run module:experiment`` serves."""

from __future__ import annotations

from typing import Any

import attrs

from igym_core.config.urls import UrlParam, url_params_from, url_template_problems
from igym_core.config.validators import FieldError, field_type_problems, is_slug, slug
from igym_core.data.interface import SinkConfig
from igym_core.recruitment import Recruiter
from igym_core.scenes.interface import SceneConfig, StagerNode
from igym_core.scenes.stager import ByCondition, RandomizeOrder, RepeatScene, iter_scenes

__all__ = ["SCHEMA_VERSION", "Experiment", "experiment_problems"]

SCHEMA_VERSION = 1


def _conditions(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise FieldError(
            "conditions",
            f"expected a list of condition names, got the string {value!r}; write "
            f"conditions=({value!r},) for a single condition.",
        )
    return tuple(value)


@attrs.frozen(kw_only=True)
class Experiment:
    """A study: an ordered list of scenes and stager elements, plus study-wide settings.

    Args:
        experiment_id: names the data directory (``data/<experiment_id>/``); lowercase, digits, ``_-``.
        scenes: scenes and stager elements (``RandomizeOrder``, ``RepeatScene``, ``ByCondition``),
            ending with an end scene.
        title: shown at the top of every page.
        seed: the study's seed; randomisation derives from it and the participant id.
        conditions: condition names; each new participant is assigned one, in balance.
        sinks: where data goes; empty means the built-in JSONL sink.
        url_params: the URL parameters the study link carries (``"PROLIFIC_PID"``, or a
            :class:`~igym_core.config.urls.UrlParam` saying what to do when one is missing); only
            these may stand as placeholders in redirect URLs.
        recruitment: the recruitment platform (``Prolific(codes={...})``, ``MTurk()``, a plugin's):
            its URL parameters are recorded, it names the participant and builds the way back
            for each outcome (docs/recruitment.md). None: no platform.
    """

    experiment_id: str = attrs.field(validator=slug)
    scenes: tuple[StagerNode, ...] = attrs.field(converter=tuple)
    title: str = ""
    seed: int = 0
    conditions: tuple[str, ...] = attrs.field(default=(), converter=_conditions)
    sinks: tuple[SinkConfig, ...] = attrs.field(default=(), converter=tuple)
    url_params: tuple[UrlParam, ...] = attrs.field(default=(), converter=url_params_from)
    schema_version: int = SCHEMA_VERSION
    recruitment: Recruiter | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(Recruiter))
    )


def experiment_problems(experiment: Experiment) -> list[str]:
    """Rules that span scenes, each problem as ``$.path: message, how to fix``."""
    problems: list[str] = []
    if not experiment.scenes:
        return ["$.scenes: the experiment has no scenes; add at least a StartScene and an EndScene."]
    for index, node in enumerate(experiment.scenes):
        if not isinstance(node, StagerNode):
            problems.append(
                f"$.scenes[{index}]: expected a scene or stager element, got {type(node).__name__} "
                f"({node!r})."
            )
    if problems:
        return problems
    problems.extend(field_type_problems(experiment, "$"))

    owners: dict[str, tuple[SceneConfig, str]] = {}
    for scene, path in iter_scenes(experiment.scenes):
        previous = owners.get(scene.scene_id)
        if previous is not None and previous[0] is not scene and previous[0] != scene:
            problems.append(
                f"{path}.scene_id: {scene.scene_id!r} is already used at {previous[1]}; give every "
                "distinct scene its own id (use RepeatScene to show the same scene again)."
            )
        elif previous is None:
            owners[scene.scene_id] = (scene, path)

    for scene, path in iter_scenes(experiment.scenes):
        for field, target in scene.scene_references().items():
            named = owners.get(target)
            if named is None:
                problems.append(
                    f"{path}.{field}: names the scene {target!r}, which is not in the experiment; "
                    f"scene ids: {sorted(owners)}."
                )
            elif field == "same_group_as" and named[0].game_runtime() is None:
                problems.append(
                    f"{path}.{field}: {target!r} is not a game scene; name an earlier game scene."
                )

    problems.extend(_url_problems(experiment))
    problems.extend(value_texts_problems(experiment))
    if experiment.recruitment is not None:
        problems.extend(experiment.recruitment.check_problems())

    if len(set(experiment.conditions)) != len(experiment.conditions):
        problems.append("$.conditions: a condition is listed twice.")
    for index, name in enumerate(experiment.conditions):
        if not is_slug(name):
            problems.append(
                f"$.conditions[{index}]: {name!r} is not a valid condition name; use lowercase "
                "letters, digits, '_' or '-'."
            )

    def check_tree(nodes: tuple[StagerNode, ...], path: str, *, must_end: bool) -> None:
        for index, node in enumerate(nodes):
            here = f"{path}[{index}]"
            last = index == len(nodes) - 1
            if isinstance(node, SceneConfig):
                if node.terminal and not (must_end and last):
                    problems.append(
                        f"{here}: the end scene {node.scene_id!r} must be the last scene; a participant "
                        "never leaves it. Move it to the end."
                    )
            elif isinstance(node, RandomizeOrder):
                check_tree(node.scenes, f"{here}.scenes", must_end=False)
            elif isinstance(node, RepeatScene):
                check_tree((node.scene,), f"{here}.scene", must_end=False)
            elif isinstance(node, ByCondition):
                conditions = set(experiment.conditions)
                if not conditions:
                    branches = ", ".join(repr(k) for k in node.branches)
                    problems.append(
                        f"{here}: ByCondition needs conditions; "
                        f"add conditions=({branches}) to the Experiment."
                    )
                else:
                    missing = sorted(conditions - set(node.branches))
                    unknown = sorted(set(node.branches) - conditions)
                    if missing:
                        problems.append(f"{here}.branches: no branch for condition(s) {missing}; add them.")
                    if unknown:
                        problems.append(
                            f"{here}.branches: {unknown} are not among the experiment's conditions "
                            f"{sorted(conditions)}; fix the names."
                        )
                for name, branch in node.branches.items():
                    check_tree(branch, f"{here}.branches.{name}", must_end=must_end and last)

    check_tree(experiment.scenes, "$.scenes", must_end=True)

    if not _ends_terminal(experiment.scenes):
        problems.append(
            f"$.scenes[{len(experiment.scenes) - 1}]: the experiment must end with an end scene "
            "(EndScene), so that participants get their completion code and their data is confirmed."
        )
    return problems


def value_texts_problems(experiment: Experiment) -> list[str]:
    """Texts with the participant's values whose placeholders no scene declares (they would show nothing)."""
    from igym_core.config.value_text import declared_values, value_text_problems

    declared = declared_values(experiment)
    return [
        problem
        for scene, path in iter_scenes(experiment.scenes)
        for field, text in scene.value_texts().items()
        for problem in value_text_problems(f"{path}.{field}", text, declared)
    ]


def _url_problems(experiment: Experiment) -> list[str]:
    """Declared URL parameters, and redirect URLs whose placeholders could go out empty."""
    problems: list[str] = []
    names: list[str] = []
    for index, param in enumerate(experiment.url_params):
        if not isinstance(param, UrlParam):
            problems.append(
                f"$.url_params[{index}]: expected a parameter name such as 'PROLIFIC_PID' or a "
                f"UrlParam(...); got {param!r}."
            )
        elif param.name in names:
            problems.append(f"$.url_params[{index}]: {param.name!r} is declared twice; remove one.")
        else:
            names.append(param.name)
    if experiment.recruitment is not None:  # the platform's own parameters are recorded too
        names.extend(n for n in experiment.recruitment.url_params() if n not in names)
    for scene, path in iter_scenes(experiment.scenes):
        for field, template in scene.url_templates().items():
            problems.extend(url_template_problems(f"{path}.{field}", template, names))
    return problems


def _ends_terminal(nodes: tuple[StagerNode, ...]) -> bool:
    if not nodes:
        return False
    last = nodes[-1]
    if isinstance(last, SceneConfig):
        return last.terminal
    if isinstance(last, ByCondition):
        return all(_ends_terminal(branch) for branch in last.branches.values())
    return False
