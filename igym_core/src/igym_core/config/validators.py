"""Reusable attrs validators. Messages say what was expected, what was found and how to fix it."""

from __future__ import annotations

import math
import re
from typing import Any

import attrs

__all__ = ["FieldError", "is_slug", "non_empty", "non_negative", "positive", "slug"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


class FieldError(ValueError):
    """A problem with one field; ``field`` becomes the last part of the error's path."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


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


def non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not value >= 0 or value == math.inf:  # (not >= also catches nan)
        raise FieldError(attribute.name, f"must be a finite number, 0 or more; got {value!r}.")


def positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not value > 0 or value == math.inf:  # (not > also catches nan)
        raise FieldError(attribute.name, f"must be a finite number greater than 0; got {value!r}.")
