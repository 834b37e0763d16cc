"""The JSON Schema of experiment files (TOML or JSON), generated from the config classes.

The schema describes what the app's cattrs converter (:func:`igym_core.config.converter.make_converter`,
built after plugins load) structures into an :class:`~igym_core.config.experiment.Experiment`: every
attrs class becomes a definition whose properties are its fields (no others: the converter forbids
extra keys), and every ``kind``-tagged union (scenes and stager elements, survey questions, data
sinks, policies, and whatever plugins add) becomes a definition that picks the member by ``kind``.
Field descriptions come from the classes' attribute docstrings (see :mod:`.fielddocs`), constraints
from their validators (``positive``, ``slug``, ``attrs.validators.le``, ...).

What a schema cannot say is still checked when the experiment loads (``igym check``): cross-field
rules (a spritesheet needs frame sizes), whether files exist, whether a ``module:attr`` imports.
The schema is never stricter than the converter: every experiment igym accepts validates.

``igym schema`` prints it for the installed plugins; ``docs/experiment.schema.json`` is the one for
the built-ins and this workspace's plugins, and ``docs/experiment-schema.md`` its reference page.
"""

from __future__ import annotations

import collections.abc
import enum
import json
import pathlib
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

import attrs
import cattrs

from igym_core.config import validators as igym_validators
from igym_core.config.converter import tagged_union_of
from igym_core.docs.fielddocs import class_summary, field_docs

__all__ = ["SchemaBuilder", "experiment_schema", "schema_json"]

DRAFT = "http://json-schema.org/draft-07/schema#"

#: A reference to Python code: ``package.module:attribute`` or ``path/to/file.py:attribute``.
CODE_REFERENCE: dict[str, Any] = {
    "type": "string",
    "pattern": "^[^:]+:[^:]+$",
    "description": "A reference to Python code: 'package.module:attribute' or 'path/to/file.py:attribute'.",
}


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# Types the converter structures from more than their fields (hooks registered by the scene types
# that use them), by qualified name: core code does not import the built-in plugins.
def _string_or_table(builder: SchemaBuilder, cls: type, table: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [{"type": "string", "minLength": 1, "description": "The value (and label)."}, table]}


def _pair_or_table(builder: SchemaBuilder, cls: type, table: dict[str, Any]) -> dict[str, Any]:
    fields = attrs.fields(cls)
    items = [builder.type_schema(builder.hints(cls)[f.name]) for f in fields]
    pair = {"type": "array", "items": items, "minItems": len(items), "maxItems": len(items)}
    return {"anyOf": [pair, table]}


SHAPES: dict[str, Callable[[SchemaBuilder, type, dict[str, Any]], dict[str, Any]]] = {
    "igym_core.builtin.questions.Choice": _string_or_table,
    "igym_core.builtin.questions.OptionBox": _string_or_table,
    "igym_core.builtin.questions.ScaleLabel": _pair_or_table,
}


def _policy(builder: SchemaBuilder) -> dict[str, Any]:
    from igym_core.policies.interface import PolicyConfig

    kinds = builder.union_kinds(PolicyConfig)
    return {
        "anyOf": [
            {
                "type": "string",
                "description": "An installed policy kind that needs no settings "
                f"({', '.join(repr(k) for k in kinds)}), or 'module:attribute' naming a Python policy.",
            },
            builder.type_schema(PolicyConfig),
        ]
    }


def _policy_or_bot(builder: SchemaBuilder) -> dict[str, Any]:
    """A value of ``policies``: a policy, or a bot table with frame skip (``Bot`` in Python)."""
    policy = _policy(builder)
    bot = {
        "type": "object",
        "description": "A bot with frame skip: it chooses an action every `act_every` ticks and in "
        "between repeats its last action (`repeat`) or plays the scene's `default_action` (`default`).",
        "properties": {
            "policy": policy,
            "act_every": {"type": "integer", "minimum": 1, "default": 1},
            "between": {"enum": ["repeat", "default"], "default": "repeat"},
        },
        "required": ["policy"],
        "additionalProperties": False,
    }
    return {"anyOf": [*policy["anyOf"], bot]}


# Fields typed ``Any`` (they also take Python objects) whose file form is known.
FIELD_SCHEMAS: dict[str, Callable[[SchemaBuilder], dict[str, Any]]] = {
    "igym_core.builtin.scene_gym.GymScene.env_factory": lambda b: dict(CODE_REFERENCE),
    "igym_core.builtin.scene_gym.GymScene.render_fn": lambda b: dict(CODE_REFERENCE),
    "igym_core.builtin.scene_gym.GymScene.hud": lambda b: dict(CODE_REFERENCE),
    "igym_core.builtin.scene_gym.GymScene.on_episode_start": lambda b: dict(CODE_REFERENCE),
    "igym_core.builtin.scene_gym.GymScene.on_episode_end": lambda b: dict(CODE_REFERENCE),
    "igym_core.builtin.scene_gym.GymScene.on_game_end": lambda b: dict(CODE_REFERENCE),
    "igym_core.builtin.scene_gym.GymScene.partner_policy": _policy,
    "igym_core.builtin.scene_gym.GymScene.policies": lambda b: {
        "type": "object",
        "additionalProperties": _policy_or_bot(b),
    },
}

#: String fields of scene types that name an installed plugin kind: the schema lists the kinds
#: installed when it was made as ``examples`` (editors offer them; others are not refused, since a
#: study may be served where more plugins are installed).
KIND_FIELDS = {"runtime": "runtimes", "renderer": "renderers", "matchmaker": "matchmakers"}


class SchemaBuilder:
    """Builds JSON Schema definitions for the types a converter structures."""

    def __init__(self, converter: cattrs.Converter, registry: Any = None) -> None:
        self.converter = converter
        self.registry = registry
        self.definitions: dict[str, dict[str, Any]] = {}
        self._names: dict[tuple[type, str | None], str] = {}

    # --- names and references -------------------------------------------------------------------
    def _name_for(self, cls: type, kind: str | None) -> str:
        key = (cls, kind)
        if key in self._names:
            return self._names[key]
        name = cls.__name__.lstrip("_")
        taken = set(self._names.values())
        if name in taken:
            name = _qualified(cls).replace(".", "_")
        self._names[key] = name
        return name

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": f"#/definitions/{name}"}

    @staticmethod
    def hints(cls: type) -> dict[str, Any]:
        try:
            return typing.get_type_hints(cls)
        except Exception:
            return {}

    def union_kinds(self, base: type) -> list[str]:
        union = tagged_union_of(self.converter, base)
        return sorted(union[1]) if union else []

    # --- types ----------------------------------------------------------------------------------
    def type_schema(self, tp: Any) -> dict[str, Any]:
        """The schema of a value of annotation ``tp`` as the converter structures it."""
        if tp is Any or tp is object:
            return {}
        if tp is type(None) or tp is None:
            return {"type": "null"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if tp is str:
            return {"type": "string"}
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is Literal:
            return {"enum": list(args)}
        if origin in (typing.Union, types.UnionType):
            options: list[dict[str, Any]] = []
            for arg in args:
                schema = self.type_schema(arg) if self._representable(arg) else None
                if schema is not None and schema not in options:
                    options.append(schema)
            if not options:
                return {}
            if {} in options:
                return {}
            if {"type": "string"} in options:  # any string: a more specific string adds nothing
                options = [o for o in options if o == {"type": "string"} or o.get("type") != "string"]
            return options[0] if len(options) == 1 else {"anyOf": options}
        if origin in (tuple,) and len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": self.type_schema(args[0])}
        if origin is tuple and args:
            items = [self.type_schema(a) for a in args]
            return {"type": "array", "items": items, "minItems": len(items), "maxItems": len(items)}
        if origin in (list, set, frozenset, collections.abc.Sequence, collections.abc.Set):
            return {"type": "array", "items": self.type_schema(args[0]) if args else {}}
        if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
            value = self.type_schema(args[1]) if len(args) == 2 else {}
            return {"type": "object", "additionalProperties": value}
        if origin is collections.abc.Callable or tp is collections.abc.Callable:
            return dict(CODE_REFERENCE)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):  # cattrs structures an enum by value
            return {"enum": [member.value for member in tp]}
        if isinstance(tp, type) and issubclass(tp, pathlib.PurePath):
            return {"type": "string"}
        if isinstance(tp, type):
            union = tagged_union_of(self.converter, tp)
            if union is not None:
                return self.ref(self._union(tp, *union))
            if attrs.has(tp):
                return self.ref(self._class(tp))
        return {}

    @staticmethod
    def _representable(tp: Any) -> bool:
        """False for what a data file cannot hold: Protocols (objects with methods)."""
        return not (isinstance(tp, type) and getattr(tp, "_is_protocol", False))

    def _union(self, base: type, label: str, kinds: dict[str, type]) -> str:
        name = self._name_for(base, None)
        if name in self.definitions:
            return name
        self.definitions[name] = {}  # reserve: unions nest (a RepeatScene holds a scene)
        branches = []
        for kind in sorted(kinds):
            member = self._class(kinds[kind], kind=kind)
            branches.append(
                {
                    "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                    "then": self.ref(member),
                }
            )
        self.definitions[name] = {
            "description": f"A {label}: a table whose 'kind' names its type "
            f"({', '.join(repr(k) for k in sorted(kinds))}).",
            "type": "object",
            "required": ["kind"],
            "properties": {"kind": {"enum": sorted(kinds)}},
            "allOf": branches,
        }
        return name

    def _class(self, cls: type, *, kind: str | None = None) -> str:
        name = self._name_for(cls, kind)
        if name in self.definitions:
            return name
        self.definitions[name] = {}  # reserve against recursion
        self.definitions[name] = self.class_schema(cls, kind=kind)
        return name

    def class_schema(self, cls: type, *, kind: str | None = None) -> dict[str, Any]:
        """The table form of an attrs class: its fields, no others (``kind`` first for unions)."""
        hints = self.hints(cls)
        docs = field_docs(cls)
        properties: dict[str, Any] = {}
        required: list[str] = []
        if kind is not None:
            properties["kind"] = {"const": kind}
            required.append("kind")
        for field in attrs.fields(cls):
            if not field.init:
                continue
            schema = self.field_schema(cls, field, hints.get(field.name, Any))
            if field.name in docs:  # the field's own words before its type's
                rest = {k: v for k, v in schema.items() if k != "description"}
                schema = {"description": docs[field.name], **rest}
            has_default, default = self._default(field)
            if has_default:
                if default is not _NO_JSON:
                    schema["default"] = default
            else:
                required.append(field.name)
            properties[field.name] = schema
        table: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            table["required"] = required
        summary = class_summary(cls)
        if summary:
            table = {"description": summary, **table}
        shape = SHAPES.get(_qualified(cls))
        if shape is not None:
            described = {"description": table.pop("description")} if "description" in table else {}
            return {**described, **shape(self, cls, table)}
        return table

    def field_schema(self, cls: type, field: attrs.Attribute, annotation: Any) -> dict[str, Any]:
        override = None
        for klass in cls.__mro__:
            override = FIELD_SCHEMAS.get(f"{_qualified(klass)}.{field.name}")
            if override is not None:
                break
        schema = override(self) if override is not None else self.type_schema(annotation)
        schema = _constrained(schema, field.validator)
        if (
            self.registry is not None
            and field.name in KIND_FIELDS
            and schema.get("type") == "string"
            and _is_scene(cls)
        ):
            schema["examples"] = sorted(getattr(self.registry, KIND_FIELDS[field.name]).kinds())
        if field.default is None and schema and schema.get("type") != "null":
            schema = _nullable(schema)
        return schema

    def _default(self, field: attrs.Attribute) -> tuple[bool, Any]:
        default = field.default
        if default is attrs.NOTHING:
            return False, None
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            if default.takes_self:
                return True, _NO_JSON
            default = default.factory()
        try:
            value = self.converter.unstructure(default)
            json.dumps(value)
        except Exception:
            return True, _NO_JSON
        return True, value


_NO_JSON = object()  # a default with no JSON form (left out of the schema)


def _is_scene(cls: type) -> bool:
    from igym_core.scenes.interface import SceneConfig

    return issubclass(cls, SceneConfig)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in schema:
        if {"type": "null"} in schema["anyOf"]:
            return schema
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    described = {k: schema[k] for k in ("description", "default") if k in schema}
    rest = {k: v for k, v in schema.items() if k not in described}
    return {**described, "anyOf": [rest, {"type": "null"}]}


def _validators(validator: Any) -> list[Any]:
    """The validators inside ``validator`` (attrs' and/optional wrappers unpacked)."""
    if validator is None:
        return []
    inner = getattr(validator, "_validators", None)
    if inner is not None:  # attrs.validators.and_ (a list of validators)
        return [v for part in inner for v in _validators(part)]
    if type(validator).__name__ == "_OptionalValidator":
        return _validators(validator.validator)
    return [validator]


_SLUG_PATTERN = "^[a-z0-9][a-z0-9_\\-]{0,63}$"


def _constraints(validator: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v in _validators(validator):
        if v is igym_validators.positive:
            out["exclusiveMinimum"] = 0
        elif v is igym_validators.non_negative:
            out["minimum"] = 0
        elif v is igym_validators.slug:
            out["pattern"] = _SLUG_PATTERN
        elif v is igym_validators.non_empty:
            out["minLength"] = 1
        elif type(v).__name__ == "_NumberValidator":
            keyword = {"<": "exclusiveMaximum", "<=": "maximum", ">=": "minimum", ">": "exclusiveMinimum"}
            out[keyword[v.compare_op]] = v.bound
        elif type(v).__name__ == "_MinLengthValidator":
            out["minLength"] = v.min_length
        elif type(v).__name__ == "_MaxLengthValidator":
            out["maxLength"] = v.max_length
        elif type(v).__name__ == "_InValidator":
            out["enum"] = list(v.options)
    return out


_FOR_TYPE = {
    "integer": {"exclusiveMinimum", "minimum", "maximum", "exclusiveMaximum", "enum"},
    "number": {"exclusiveMinimum", "minimum", "maximum", "exclusiveMaximum", "enum"},
    "string": {"pattern", "minLength", "maxLength", "enum"},
    "array": {"minLength"},
}


def _constrained(schema: dict[str, Any], validator: Any) -> dict[str, Any]:
    constraints = _constraints(validator)
    if not constraints:
        return schema

    def apply(part: dict[str, Any]) -> dict[str, Any]:
        allowed = _FOR_TYPE.get(part.get("type", ""), set())
        extra = {k: v for k, v in constraints.items() if k in allowed}
        if part.get("type") == "array" and "minLength" in extra:
            extra = {"minItems": extra.pop("minLength")}
        if "enum" in part:
            extra.pop("enum", None)
        return {**part, **extra}

    if "anyOf" in schema:
        return {**schema, "anyOf": [apply(p) for p in schema["anyOf"]]}
    return apply(schema)


def experiment_schema(converter: cattrs.Converter, registry: Any = None) -> dict[str, Any]:
    """The JSON Schema of an experiment file for the kinds ``converter`` knows."""
    from igym_core.config.experiment import SCHEMA_VERSION, Experiment

    builder = SchemaBuilder(converter, registry)
    root = builder._class(Experiment)
    definition = builder.definitions[root]
    definition["properties"] = {
        "$schema": {
            "type": "string",
            "description": "The schema this file follows, for editors (igym ignores it).",
        },
        **definition["properties"],
    }
    return {
        "$schema": DRAFT,
        "$id": "https://igym.invalid/experiment.schema.json",
        "title": "igym experiment",
        "description": "An igym experiment file (TOML or JSON), schema_version "
        f"{SCHEMA_VERSION}. Generated by `igym schema` from the config classes; "
        "`igym check` also checks what a schema cannot (files, imports, cross-field rules).",
        "allOf": [builder.ref(root)],
        "definitions": dict(sorted(builder.definitions.items())),
    }


def schema_json(schema: dict[str, Any]) -> str:
    """The schema as the committed file holds it: indented, keys in order, a final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def installed_schema(
    *, autoload: bool = True, blocked: tuple[str, ...] = (), extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The schema for the built-ins and the plugins a plugin manager loads."""
    from igym_core.config.converter import make_converter
    from igym_core.plugins.manager import create_plugin_manager

    plugins = create_plugin_manager(blocked=blocked, autoload=autoload, extra=extra, quiet=True)
    return experiment_schema(make_converter(plugins.registry), plugins.registry)
