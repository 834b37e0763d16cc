"""Reusable attrs validators. Messages say what was expected, what was found and how to fix it."""

from __future__ import annotations

import difflib
import functools
import math
import numbers
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

__all__ = [
    "FieldError",
    "did_you_mean",
    "field_type_problems",
    "is_slug",
    "non_empty",
    "non_negative",
    "one_of",
    "positive",
    "slug",
    "type_problem",
]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


class FieldError(ValueError):
    """A problem with one field; ``field`` becomes the last part of the error's path."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def did_you_mean(word: object, options: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the option closest to a misspelt ``word`` ("" if none is close)."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if not close:
        lowered = {o.lower(): o for o in options}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f" Did you mean {close[0]!r}?" if close else ""


def is_slug(value: object) -> bool:
    return isinstance(value, str) and _SLUG.match(value) is not None


def slug(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A short identifier that is safe in file names and URLs: ``consent``, ``survey_1``."""
    if not is_slug(value):
        raise FieldError(
            attribute.name,
            f"must be 1-64 characters of lowercase letters, digits, '_' or '-', "
            f"starting with a letter or digit; got {value!r}. Example: 'post_game_survey'.",
        )


def non_empty(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if len(value) == 0:
        raise FieldError(attribute.name, "must not be empty.")


def _number(attribute: attrs.Attribute, value: Any, wanted: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise FieldError(attribute.name, f"must be {wanted}; got {value!r} ({type(value).__name__}).")


def non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    _number(attribute, value, "a finite number, 0 or more")
    if not value >= 0 or value == math.inf:  # (not >= also catches nan)
        raise FieldError(attribute.name, f"must be a finite number, 0 or more; got {value!r}.")


def positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    _number(attribute, value, "a finite number greater than 0")
    if not value > 0 or value == math.inf:  # (not > also catches nan)
        raise FieldError(attribute.name, f"must be a finite number greater than 0; got {value!r}.")


def one_of(*choices: str) -> Any:
    """A validator: the value is one of ``choices`` (for ``Literal`` fields)."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise FieldError(attribute.name, f"must be one of {listed}; got {value!r}.")

    return check


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a name only known under TYPE_CHECKING: that class's fields are not checked
        return {}


def type_problem(value: Any, expected: Any) -> str | None:
    """What is wrong with ``value`` for the annotation ``expected``, for the simple annotations
    (int, float, bool, str, their ``| None``, ``Literal``, ``tuple[X, ...]``); None if it fits or
    the annotation is not one of those."""
    origin = typing.get_origin(expected)
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return f"must be a whole number; got {value!r} ({type(value).__name__})."
    elif expected is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"must be a number; got {value!r} ({type(value).__name__})."
    elif expected is bool:
        if not isinstance(value, bool):
            return f"must be true or false; got {value!r} ({type(value).__name__})."
    elif expected is str:
        if not isinstance(value, str):
            return f"must be a string; got {value!r} ({type(value).__name__})."
    elif origin is Literal:
        if value not in typing.get_args(expected):
            listed = ", ".join(repr(c) for c in typing.get_args(expected))
            return f"must be one of {listed}; got {value!r}."
    elif origin in (typing.Union, types.UnionType):
        options = typing.get_args(expected)
        if value is None and type(None) in options:
            return None
        rest = [o for o in options if o is not type(None)]
        if len(rest) == 1:
            return type_problem(value, rest[0])
    elif origin is tuple:
        args = typing.get_args(expected)
        if len(args) == 2 and args[1] is Ellipsis and isinstance(value, tuple):
            for item in value:
                problem = type_problem(item, args[0])
                if problem is not None:
                    return f"each entry {problem}"
    return None


def field_type_problems(obj: Any, path: str) -> list[str]:
    """``path.field: problem`` for every field of the attrs object ``obj`` (and of the attrs objects
    in its fields, in tuples and in mappings) whose value does not fit its simple annotation: a
    Python experiment can pass ``num_episodes=2.5`` or ``record_observations="no"``, which attrs
    does not check."""
    problems: list[str] = []
    cls = type(obj)
    hints = _hints(cls)
    for field in attrs.fields(cls):
        value = getattr(obj, field.name)
        here = f"{path}.{field.name}"
        expected = hints.get(field.name)
        problem = type_problem(value, expected) if expected is not None else None
        if problem is not None:
            problems.append(f"{here}: {problem}")
        problems.extend(_nested_problems(value, here))
    return problems


def _nested_problems(value: Any, path: str) -> list[str]:
    if attrs.has(type(value)):
        return field_type_problems(value, path)
    problems: list[str] = []
    if isinstance(value, tuple | list):
        for index, item in enumerate(value):
            if attrs.has(type(item)):
                problems.extend(field_type_problems(item, f"{path}[{index}]"))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if attrs.has(type(item)):
                problems.extend(field_type_problems(item, f"{path}.{key}"))
    return problems
