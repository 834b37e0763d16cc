"""URL templates with placeholders (``{completion_code}``, ``{participant_id}``, ``{PROLIFIC_PID}``), and
the URL parameters an experiment expects its links to carry.

A placeholder is valid where it can never go out empty: ``{participant_id}`` everywhere,
``{completion_code}`` where the scene has a code, and the URL parameters the experiment declares
(``Experiment(url_params=("PROLIFIC_PID", ...))``). A declared parameter that a participant's link
lacks is either refused at entry or filled with a marked value (:class:`UrlParam`), never "".
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import attrs

from igym_core.config.validators import FieldError, did_you_mean, one_of

__all__ = [
    "BUILTIN_PLACEHOLDERS",
    "UrlParam",
    "UrlTemplate",
    "apply_url_params",
    "check_url_template",
    "fill_url_template",
    "mark_url_params",
    "refusal_text",
    "url_params_from",
    "url_template_problems",
]

#: Placeholders igym fills itself; ``completion_code`` only where the scene has a code.
BUILTIN_PLACEHOLDERS: tuple[str, ...] = ("participant_id", "completion_code")


def _param_name(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value.isidentifier():
        raise FieldError(
            attribute.name,
            f"must be a URL parameter name made of letters, digits and '_' (it is used as a "
            f"placeholder such as {{PROLIFIC_PID}}); got {value!r}.",
        )
    if value in BUILTIN_PLACEHOLDERS:
        raise FieldError(
            attribute.name,
            f"{value!r} is filled by igym itself and cannot be a URL parameter; remove it from url_params.",
        )


@attrs.frozen(kw_only=True)
class UrlParam:
    """A URL parameter the experiment's links carry (``?PROLIFIC_PID=...``), recorded with every
    record of the participant and usable as ``{NAME}`` in redirect URLs.

    When a new participant's link lacks it (or has it empty), ``on_missing`` applies:

    - ``"mark"`` (default): the participant takes part with ``missing_value`` in its place (in
      their records and in redirect URLs); a ``url_params_missing`` session record and a warning
      log line say so.
    - ``"refuse"``: the participant is not let in; their page says ``refuse_message`` (by default
      "This link is missing NAME. Please open the study from the page where you found it (for
      example, Prolific)."); an ``entry_refused`` session record and a log line say so.

    A plain string in ``Experiment(url_params=...)`` is a ``UrlParam`` with these defaults.
    """

    name: str = attrs.field(validator=_param_name)
    on_missing: Literal["mark", "refuse"] = attrs.field(default="mark", validator=one_of("mark", "refuse"))
    missing_value: str = "MISSING"
    """What stands in for a missing parameter under ``on_missing="mark"``."""
    refuse_message: str | None = None
    """What a refused participant reads (``on_missing="refuse"``); ``None`` for the default text."""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.missing_value, str) or not self.missing_value.strip():
            raise FieldError(
                "missing_value",
                f"must be a non-empty string that marks the parameter as missing, e.g. 'MISSING'; "
                f"got {self.missing_value!r}.",
            )


def url_params_from(value: Any) -> tuple[UrlParam, ...]:
    """``Experiment.url_params`` from names and/or :class:`UrlParam` objects."""
    if isinstance(value, str):
        raise FieldError(
            "url_params",
            f"expected a list of parameter names, got the string {value!r}; write "
            f"url_params=({value!r},) for a single parameter.",
        )
    return tuple(UrlParam(name=item) if isinstance(item, str) else item for item in value)


@attrs.frozen
class UrlTemplate:
    """A URL template a scene fills per participant, and the placeholders only that scene provides."""

    template: str
    scene_placeholders: tuple[str, ...] = ()
    """E.g. ``("completion_code",)`` for an end scene that has a code."""


def placeholders(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


def check_url_template(field_name: str, value: str) -> None:
    """Raise :class:`FieldError` unless ``value`` is an http(s) URL or a path with plain placeholders."""
    if not value.startswith(("https://", "http://", "/")):
        raise FieldError(
            field_name,
            f"must start with https://, http:// or /; got {value!r}. Example: "
            "'https://app.prolific.com/submissions/complete?cc={completion_code}'.",
        )
    try:
        fields = placeholders(value)
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


def url_template_problems(path: str, template: UrlTemplate, declared: Sequence[str]) -> list[str]:
    """``path: problem`` for each placeholder of ``template`` that could go out empty."""
    try:
        fields = placeholders(template.template)
    except ValueError:
        return []  # check_url_template reported it when the scene was built
    known = ["participant_id", *template.scene_placeholders, *declared]
    problems = []
    for field in dict.fromkeys(fields):
        if field in known:
            continue
        if field == "completion_code":
            problems.append(
                f"{path}: {{completion_code}} is used, but this scene has no completion code, so it "
                "would go out empty; set completion_code ('auto' or Prolific's code) or remove it."
            )
            continue
        close = did_you_mean(field, [*known, "completion_code"])
        declared_text = ", ".join(declared) if declared else "none"
        fix = (
            close.replace("Did you mean '", "Did you mean {").replace("'?", "}?")
            if close
            else f" If the study link carries {field}, declare it: Experiment(url_params=(..., {field!r}))."
        )
        problems.append(
            f"{path}: unknown placeholder {{{field}}}; it would go out empty.{fix} Placeholders are "
            f"{{participant_id}}, {{completion_code}} (where the scene has a code) and the URL "
            f"parameters the experiment declares (url_params: {declared_text})."
        )
    return problems


def apply_url_params(
    declared: Iterable[UrlParam], params: Mapping[str, str]
) -> tuple[dict[str, str], list[str], list[UrlParam]]:
    """A new participant's link parameters with each missing declared one marked; also the names
    marked, and the parameters whose absence refuses entry."""
    out = dict(params)
    marked: list[str] = []
    refused: list[UrlParam] = []
    for param in declared:
        value = out.get(param.name)
        if isinstance(value, str) and value.strip():
            continue
        if param.on_missing == "refuse":
            refused.append(param)
        else:
            out[param.name] = param.missing_value
            marked.append(param.name)
    return out, marked, refused


def mark_url_params(
    declared: Iterable[UrlParam], params: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The parameters of a participant who is already taking part, with each missing declared one
    marked (also under ``on_missing="refuse"``: the participant was admitted before the parameter
    was declared, and refusing them mid-study would strand them); also the names marked."""
    out = dict(params)
    marked: list[str] = []
    for param in declared:
        value = out.get(param.name)
        if not (isinstance(value, str) and value.strip()):
            out[param.name] = param.missing_value
            marked.append(param.name)
    return out, marked


def refusal_text(refused: Sequence[UrlParam]) -> str:
    """What a participant refused for missing parameters reads."""
    custom = [p.refuse_message for p in refused if p.refuse_message]
    if custom:
        return custom[0]
    names = " and ".join(p.name for p in refused)
    return (
        f"This link is missing {names}. Please open the study from the page where you found it "
        "(for example, Prolific)."
    )


def fill_url_template(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each placeholder replaced by its URL-encoded value.

    A placeholder without a value raises ``KeyError``: an experiment that passed ``igym check``
    has none, and a URL with an empty parameter must never go out silently.
    """
    parts = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(literal)
        if field is not None:
            if field not in values:
                raise KeyError(
                    f"no value for the placeholder {{{field}}} of {template!r}; declare the URL "
                    "parameter in Experiment(url_params=...) (igym check finds these)"
                )
            parts.append(quote(str(values[field]), safe=""))
    return "".join(parts)
