"""URL templates with placeholders (``{completion_code}``, ``{participant_id}``, ``{PROLIFIC_PID}``)."""

from __future__ import annotations

import string
from collections.abc import Mapping
from urllib.parse import quote

from igym_core.config.validators import FieldError

__all__ = ["check_url_template", "fill_url_template"]


def check_url_template(field_name: str, value: str) -> None:
    """Raise :class:`FieldError` unless ``value`` is an http(s) URL or a path with plain placeholders."""
    if not value.startswith(("https://", "http://", "/")):
        raise FieldError(
            field_name,
            f"must start with https://, http:// or /; got {value!r}. Example: "
            "'https://app.prolific.com/submissions/complete?cc={completion_code}'.",
        )
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as exc:
        raise FieldError(
            field_name,
            f"{value!r} is not a valid template ({exc}); write placeholders as "
            "{completion_code}, {participant_id} or a URL parameter such as {PROLIFIC_PID}, and "
            "double literal braces: {{ }}.",
        ) from exc
    for field in fields:
        if not field.isidentifier():
            raise FieldError(
                field_name,
                f"placeholder {{{field}}} is not a plain name; use {{completion_code}}, "
                "{participant_id} or the name of a URL parameter such as {PROLIFIC_PID}.",
            )


def fill_url_template(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each placeholder replaced by its URL-encoded value ("" when unknown)."""
    parts = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(literal)
        if field is not None:
            parts.append(quote(str(values.get(field, "")), safe=""))
    return "".join(parts)
