"""Texts with the participant's values in them (``EndScene(values_text="Your bonus: £{maze_bonus:.2f}")``).

A placeholder is ``{name}`` or ``{name:spec}`` (a Python number format such as ``.2f``); ``{{`` and
``}}`` are literal braces. ``name`` must be a value some scene of the experiment declares
(:meth:`~igym_core.scenes.interface.SceneConfig.participant_values`, each with the value a
participant who never got it is shown): ``igym check`` refuses any other, so no placeholder is ever
filled with an empty string.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from igym_core.config.validators import FieldError, did_you_mean
from igym_core.scenes.stager import iter_scenes

if TYPE_CHECKING:
    from igym_core.config.experiment import Experiment

__all__ = ["check_value_text", "declared_values", "fill_value_text", "value_text_problems"]

_FORMATTER = string.Formatter()


def _placeholders(text: str) -> list[tuple[str, str]]:
    """``(name, spec)`` of each placeholder; raises ``ValueError`` on a malformed text."""
    found = []
    for _literal, name, spec, conversion in _FORMATTER.parse(text):
        if name is None:
            continue
        if conversion is not None or not name or any(c in name for c in ".[]{} "):
            raise ValueError(f"{{{name}{'!' + conversion if conversion else ''}}} is not a plain value name")
        found.append((name, spec or ""))
    return found


def check_value_text(field: str, text: str | None) -> None:
    """Raise :class:`FieldError` unless ``text`` has well-formed placeholders with number formats."""
    if text is None:
        return
    try:
        placeholders = _placeholders(text)
    except ValueError as exc:
        raise FieldError(
            field,
            f"{text!r} is not a valid text with values ({exc}); write a value as {{name}} or "
            "{name:.2f}, and a literal brace as {{ or }}.",
        ) from exc
    for name, spec in placeholders:
        try:
            format(1.5, spec)
        except ValueError as exc:
            raise FieldError(
                field, f"{{{name}:{spec}}}: {spec!r} is not a number format ({exc}); use e.g. '.2f'."
            ) from exc


def declared_values(experiment: Experiment) -> dict[str, Any]:
    """Every value a scene of ``experiment`` declares, with the value shown to a participant who
    never got it (the first declaring scene's)."""
    declared: dict[str, Any] = {}
    for scene, _path in iter_scenes(experiment.scenes):
        for name, default in scene.participant_values().items():
            declared.setdefault(name, default)
    return declared


def value_text_problems(path: str, text: str | None, declared: Mapping[str, Any]) -> list[str]:
    """``path: problem`` for each placeholder of ``text`` that no scene declares."""
    if text is None:
        return []
    return [
        f"{path}: no scene of the experiment gives participants the value {{{name}}}, so it would "
        f"show nothing.{did_you_mean(name, declared)} Values: {', '.join(sorted(declared)) or 'none'} "
        "(a UnityScene with score_episode gives <scene_id>_score and <scene_id>_bonus)."
        for name, _spec in _placeholders(text)
        if name not in declared
    ]


def fill_value_text(text: str, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """``text`` with each placeholder replaced by the participant's value, else the declared default."""
    out: list[str] = []
    for literal, name, spec, _conversion in _FORMATTER.parse(text):
        out.append(literal)
        if name is None:
            continue
        value = values.get(name)
        if value is None:
            value = defaults.get(name, "?")
        out.append(_formatted(value, spec or ""))
    return "".join(out)


def _formatted(value: Any, spec: str) -> str:
    if spec and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return format(value, spec)
        except ValueError:
            pass
    text = str(value)
    return text if text else "?"
