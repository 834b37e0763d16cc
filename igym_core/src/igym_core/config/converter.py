"""The one cattrs converter of an app, built after plugins load.

Scenes and stager elements form a tagged union on ``kind`` (plugins add scene types), as do survey
questions and data-sink configs. Structuring errors become a :class:`ConfigError` whose lines name
the path of the problem (``$.scenes[2].questions[0].choices``) and say how to fix it.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import cattrs
from cattrs.errors import (
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn

from igym_core.config.validators import FieldError, did_you_mean, type_problem
from igym_core.errors import ConfigError, IgymError
from igym_core.plugins.registry import Registry
from igym_core.scenes.interface import StagerNode

__all__ = [
    "UnknownKindError",
    "exception_text",
    "make_converter",
    "problems_from_exception",
    "register_tagged_union",
    "sentence",
    "structure_or_raise",
    "tagged_union_of",
]


def _stager_kinds(registry: Registry) -> dict[str, type]:
    from igym_core.scenes.stager import ByCondition, RandomizeOrder, RepeatScene

    kinds: dict[str, type] = {cls.kind: cls for cls in (RandomizeOrder, RepeatScene, ByCondition)}
    for kind, cls, provider in registry.scene_types.items():
        if kind in kinds:
            raise IgymError(
                f"Plugin {provider!r} registers a scene type named {kind!r}, which is reserved for "
                "a stager element. Rename it."
            )
        kinds[kind] = cls
    return kinds


class UnknownKindError(ValueError):
    """A ``kind`` that no installed type has; its message is complete (no "expected <type>" prefix)."""


def register_tagged_union(
    converter: cattrs.Converter, base: type, kinds: Callable[[], Mapping[str, type]], label: str
) -> None:
    """Structure and unstructure ``base`` as a union of ``kinds()`` tagged by a ``kind`` key."""

    def structure(value: Any, _type: Any) -> Any:
        options = kinds()
        if isinstance(value, base):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"expected a table/object describing a {label} with a 'kind' key; got {value!r}")
        kind = value.get("kind")
        if kind not in options:
            raise UnknownKindError(
                f"unknown {label} kind {kind!r}; the installed {label} kinds are: "
                f"{', '.join(sorted(options)) or 'none'}."
                f"{did_you_mean(kind, options)} Check the spelling, or install the plugin that "
                "provides it (`igym plugins` lists what is loaded)."
            )
        data = {k: v for k, v in value.items() if k != "kind"}
        return converter.structure(data, options[kind])

    def unstructure(value: Any) -> Any:
        data = converter.unstructure(value, unstructure_as=type(value))
        return {"kind": type(value).kind, **data}

    # Read back by tagged_union_of (the JSON Schema of experiment files describes these unions).
    structure.igym_tagged_union = (label, kinds)  # type: ignore[attr-defined]
    converter.register_structure_hook_func(lambda t: t is base, structure)
    converter.register_unstructure_hook_func(lambda t: t is base, unstructure)


def tagged_union_of(converter: cattrs.Converter, cls: type) -> tuple[str, dict[str, type]] | None:
    """``(label, {kind: class})`` if ``converter`` structures ``cls`` as a tagged union, else None."""
    union = getattr(converter.get_structure_hook(cls), "igym_tagged_union", None)
    if union is None:
        return None
    label, kinds = union
    return label, dict(kinds())


def make_converter(registry: Registry) -> cattrs.Converter:
    """Build the app's converter. Call it after every plugin is registered."""
    from igym_core.data.interface import SinkConfig
    from igym_core.policies.interface import PolicyConfig

    converter = cattrs.Converter(forbid_extra_keys=True)
    _strict_scalars(converter)
    _strict_arrays(converter)
    stager_kinds = _stager_kinds(registry)
    register_tagged_union(converter, StagerNode, lambda: stager_kinds, "scene")
    sink_kinds = {sink.kind: sink.config_type for sink in registry.data_sinks.values()}
    register_tagged_union(converter, SinkConfig, lambda: sink_kinds, "data sink")
    policy_kinds = {loader.kind: loader.config_type for loader in registry.policy_loaders.values()}
    register_tagged_union(converter, PolicyConfig, lambda: policy_kinds, "policy")
    from igym_core.recruitment import Recruiter

    recruiter_kinds = {kind: cls for kind, cls, _provider in registry.recruiters.items()}
    register_tagged_union(converter, Recruiter, lambda: recruiter_kinds, "recruiter")
    _url_params(converter)
    for loader in registry.policy_loaders.values():
        loader.configure_converter(converter)
    for scene_type in registry.scene_types.values():
        scene_type.configure_converter(converter)
    return converter


def _url_params(converter: cattrs.Converter) -> None:
    """``url_params = ["PROLIFIC_PID", {name = "STUDY_ID", on_missing = "refuse"}]`` in a data file."""
    from igym_core.config.urls import UrlParam

    from_table = make_dict_structure_fn(UrlParam, converter, _cattrs_forbid_extra_keys=True)

    def structure(value: Any, _type: Any) -> UrlParam:
        if isinstance(value, str):
            return UrlParam(name=value)
        return from_table(value, UrlParam)

    converter.register_structure_hook(UrlParam, structure)


def _strict_scalars(converter: cattrs.Converter) -> None:
    """Numbers, booleans, strings and literals as they are written, never coerced (cattrs would
    otherwise call ``int("30")``, ``int(2.5)`` (2) and ``bool("false")`` (True!)), checked by the
    same rules and with the same messages as Python experiments (:func:`type_problem`)."""

    def strict(value: Any, type_: Any) -> Any:
        problem = type_problem(value, type_)
        if problem is not None:
            raise ValueError(problem)
        if type_ is float:
            return float(value)
        return int(value) if type_ is int else value

    for scalar in (int, float, bool, str):
        converter.register_structure_hook(scalar, strict)
    converter.register_structure_hook_func(lambda t: typing.get_origin(t) is Literal, strict)


def _strict_arrays(converter: cattrs.Converter) -> None:
    """Arrays as they are written: cattrs makes a tuple or list from any iterable, so a string
    (``human_seats = "left"``) became ``('l', 'e', 'f', 't')`` and a table its keys."""
    from cattrs.cols import homogenous_tuple_structure_factory, is_sequence, list_structure_factory

    def checked(base: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def structure(value: Any, type_: Any) -> Any:
            if not isinstance(value, list | tuple):
                raise ValueError(f"must be a list (an array); got {value!r} ({type(value).__name__}).")
            return base(value, type_)

        return structure

    def homogeneous(type_: Any) -> bool:
        args = typing.get_args(type_)
        return typing.get_origin(type_) is tuple and len(args) == 2 and args[1] is Ellipsis

    def fixed_tuple(type_: Any) -> bool:
        return typing.get_origin(type_) is tuple and not homogeneous(type_) and bool(typing.get_args(type_))

    converter.register_structure_hook_factory(
        homogeneous, lambda t: checked(homogenous_tuple_structure_factory(t, converter))
    )
    converter.register_structure_hook_factory(
        lambda t: is_sequence(t) and not homogeneous(t),
        lambda t: checked(list_structure_factory(t, converter)),
    )
    converter.register_structure_hook_func(fixed_tuple, checked(converter._structure_tuple))


def structure_or_raise(converter: cattrs.Converter, data: Any, cls: type, *, title: str) -> Any:
    """Structure ``data`` as ``cls``; raise :class:`ConfigError` listing every problem with its path."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        raise ConfigError(problems_from_exception(exc), title=title) from exc


def problems_from_exception(exc: BaseException, path: str = "$", expected: Any = None) -> list[str]:
    """Flatten cattrs' nested validation errors into ``$.a.b[2]: message`` lines.

    ``expected`` is the type cattrs was structuring at ``path``, named in wrong-type messages.
    """
    if isinstance(exc, ForbiddenExtraKeysError):
        names = ", ".join(sorted(exc.extra_fields))
        return [
            f"{path}: unknown field(s) {names} for {exc.cl.__name__}; remove them or check the "
            f"spelling (fields: {', '.join(a.name for a in attrs.fields(exc.cl))})."
        ]
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        out: list[str] = []
        for inner, note in with_notes:
            out.extend(problems_from_exception(inner, f"{path}.{note.name}", note.type))
        for inner in without:
            out.extend(problems_from_exception(inner, path))
        return out
    if isinstance(exc, IterableValidationError):
        with_notes, without = exc.group_exceptions()
        out = []
        for inner, note in with_notes:
            out.extend(problems_from_exception(inner, f"{path}[{note.index!r}]", note.type))
        for inner in without:
            out.extend(problems_from_exception(inner, path))
        return out
    if isinstance(exc, BaseValidationError):
        out = []
        for inner in exc.exceptions:
            out.extend(problems_from_exception(inner, path))
        return out
    if isinstance(exc, FieldError):
        return [f"{path}.{exc.field}: {exc.message}"]
    if isinstance(exc, KeyError):
        return [f"{path}: required field missing; add it."]
    if isinstance(exc, TypeError) and "required keyword-only argument" in str(exc):
        missing = str(exc).split(":")[-1].strip()
        return [f"{path}: missing required field {missing}; add it."]
    if isinstance(exc, UnknownKindError):
        return [f"{path}: {exc}"]
    wrong_type = isinstance(exc, ValueError | TypeError) and not str(exc).startswith(("expected", "must be"))
    if expected is not None and wrong_type:
        # A wrong type: int("soon") says only "invalid literal", not what the field wants.
        name = getattr(expected, "__name__", None) or str(expected).replace("typing.", "")
        return [sentence(f"{path}: expected {name}; {exc}", "Fix the value.")]
    return [sentence(f"{path}: {exc}")]


def exception_text(exc: BaseException) -> str:
    """``Name: message`` for an exception, or ``Name (with no message)``: never ``Name: ``."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else f"{type(exc).__name__} (with no message)"


def sentence(text: str, *more: str) -> str:
    """``text`` ended by one full stop (none added after ``.``, ``?``, ``!`` or ``)``-closed text
    that already ends one), followed by ``more`` sentences: messages built from other messages
    must not read "loaded).. Fix" or end in ": "."""
    text = text.rstrip()
    if text.endswith(":"):
        text = text[:-1].rstrip()
    if not text.endswith((".", "?", "!", ".)", ".'", '."')):
        text += "."
    return " ".join([text, *more])
