"""The generated reference docs match the code, and the experiment schema says what igym accepts.

- The committed ``docs/experiment.schema.json``, ``docs/experiment-schema.md`` and
  ``docs/render-objects.md`` equal what the generators write from the classes now (regenerate with
  ``make docs``).
- Every TOML/JSON experiment in the docs and the examples validates against the schema, and igym
  itself loads it; ``igym schema`` prints the schema, plugins' kinds included.
- Broken experiments fail the schema, and igym refuses them too: the schema is a faithful
  description of the converter, not a looser or stricter guess.
"""

from __future__ import annotations

import copy
import enum
import functools
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

import attrs
import jsonschema
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from igym_core.config.converter import make_converter, structure_or_raise
from igym_core.config.experiment import Experiment, experiment_problems
from igym_core.config.loader import load_experiment
from igym_core.config.validators import non_negative, positive
from igym_core.docs.render_objects import render_objects_markdown
from igym_core.docs.schema import DRAFT, FIELD_SCHEMAS, SHAPES, SchemaBuilder, installed_schema, schema_json
from igym_core.docs.schema_reference import experiment_reference
from igym_core.errors import ConfigError
from igym_core.plugins.manager import create_plugin_manager

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
WORKSPACE_PLUGINS = ("igym_onnx", "igym_parquet", "igym_slime")

needs_workspace = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in WORKSPACE_PLUGINS),
    reason="the committed schema covers this workspace's plugins; they are not all installed",
)

REGENERATE = "The committed file is out of date with the code: run `make docs` and commit the result."


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return installed_schema()


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    committed = json.loads((DOCS / "experiment.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(committed)
    return jsonschema.Draft7Validator(committed)


@pytest.fixture(scope="module")
def converter() -> Any:
    return make_converter(create_plugin_manager(quiet=True).registry)


# --- drift -------------------------------------------------------------------------------------


@needs_workspace
def test_committed_schema_is_what_the_generator_writes(schema: dict[str, Any]) -> None:
    committed = (DOCS / "experiment.schema.json").read_text(encoding="utf-8")
    assert committed == schema_json(schema), REGENERATE


@needs_workspace
def test_committed_schema_reference_is_what_the_generator_writes(schema: dict[str, Any]) -> None:
    committed = (DOCS / "experiment-schema.md").read_text(encoding="utf-8")
    assert committed == experiment_reference(schema), REGENERATE


def test_committed_render_objects_page_is_what_the_generator_writes() -> None:
    committed = (DOCS / "render-objects.md").read_text(encoding="utf-8")
    assert committed == render_objects_markdown(), REGENERATE


def test_every_render_object_field_is_documented_and_pictured() -> None:
    from igym_core.docs.fielddocs import field_docs
    from igym_core.rendering.objects import OBJECT_TYPES

    for object_type, cls in OBJECT_TYPES.items():
        undocumented = [f.name for f in cls.__attrs_attrs__ if f.name not in field_docs(cls)]
        assert not undocumented, f"{cls.__name__}: add an attribute docstring to {undocumented}"
        picture = DOCS / "images" / "render-objects" / f"{object_type}.png"
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{picture} is missing: run `make docs`"


def test_schema_overrides_name_fields_that_exist() -> None:
    """The schema's table of special cases names classes and fields by string (core code does not
    import the built-in plugins): a renamed field must not leave a silently unused entry."""
    for qualified in SHAPES:
        module_name, class_name = qualified.rsplit(".", 1)
        assert hasattr(importlib.import_module(module_name), class_name), qualified
    for qualified in FIELD_SCHEMAS:
        module_name, class_name, field = qualified.rsplit(".", 2)
        cls = getattr(importlib.import_module(module_name), class_name)
        assert field in {f.name for f in cls.__attrs_attrs__}, qualified


# --- the examples validate, and igym loads them ------------------------------------------------

FENCE = re.compile(r"```(toml|json)\n(.*?)```", re.DOTALL)


def _documented_experiments() -> list[tuple[str, str, str]]:
    """(where, format, text) of every TOML/JSON experiment in the docs and the examples."""
    found: list[tuple[str, str, str]] = []
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md")), *sorted(ROOT.glob("plugins/*/README.md"))]:
        for match in FENCE.finditer(page.read_text(encoding="utf-8")):
            text = match.group(2)
            if "experiment_id" in text:  # an experiment, not a pyproject or a protocol message
                line = page.read_text(encoding="utf-8")[: match.start()].count("\n") + 1
                found.append((f"{page.relative_to(ROOT)}:{line}", match.group(1), text))
    for folder in (ROOT / "examples", ROOT / "igym_core/src/igym_core/examples"):
        for path in sorted([*folder.glob("*.toml"), *folder.glob("*.json")]):
            found.append((str(path.relative_to(ROOT)), path.suffix[1:], path.read_text(encoding="utf-8")))
    return found


DOCUMENTED = _documented_experiments()


def _parse(fmt: str, text: str) -> Any:
    return tomllib.loads(text) if fmt == "toml" else json.loads(text)


def test_the_docs_and_examples_hold_experiment_files() -> None:
    where = [w for w, _, _ in DOCUMENTED]
    assert any(w.startswith("docs/") for w in where), where
    assert any(w.startswith("examples/") and w.endswith(".toml") for w in where), where
    assert any(w.startswith("examples/") and w.endswith(".json") for w in where), where


@pytest.mark.parametrize(("where", "fmt", "text"), DOCUMENTED, ids=[w for w, _, _ in DOCUMENTED])
def test_documented_experiment_validates_and_loads(
    where: str, fmt: str, text: str, validator: jsonschema.Draft7Validator, converter: Any, tmp_path: Path
) -> None:
    """Each experiment file in the docs and examples validates against the committed schema and
    loads in igym (an editor's ``$schema`` key included)."""
    data = _parse(fmt, text)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors, f"{where} does not validate against docs/experiment.schema.json: {errors}"
    # And igym loads it from a file, as `igym run study.toml` does.
    path = tmp_path / f"study.{fmt}"
    path.write_text(text, encoding="utf-8")
    load_experiment(str(path), converter)


def test_doc_example_is_the_example_file() -> None:
    (text,) = [t for w, _, t in DOCUMENTED if w.startswith("docs/experiment-schema.md")]
    assert text == (ROOT / "examples" / "survey_study.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "module",
    [
        "igym_core.examples.mountain_car",
        "igym_core.examples.survey_study",
        "igym_slime.examples.vs_ai",
        "igym_slime.examples.vs_human",
    ],
)
def test_python_examples_written_as_data_validate(
    module: str, validator: jsonschema.Draft7Validator, converter: Any
) -> None:
    """A Python experiment as igym writes it to its config snapshot is a valid experiment file."""
    experiment = importlib.import_module(module).experiment
    data = json.loads(json.dumps(converter.unstructure(experiment)))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors


@needs_workspace
def test_igym_schema_prints_the_schema_with_plugins_kinds() -> None:
    def igym_schema(*args: str) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-m", "igym_core.cli", "schema", *args],
            cwd=ROOT,
            env={**os.environ, "IGYM_DISABLE_PLUGIN_AUTOLOAD": ""},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    printed = igym_schema()
    assert printed == json.loads((DOCS / "experiment.schema.json").read_text(encoding="utf-8"))
    assert "onnx" in printed["definitions"]["PolicyConfig"]["properties"]["kind"]["enum"]
    assert "parquet" in printed["definitions"]["SinkConfig"]["properties"]["kind"]["enum"]
    # A plugin's scene type joins the scene union with its own fields.
    with_plugin = igym_schema("--plugin", "tests.e2e.colour_plugin.plugin")
    scene_kinds = with_plugin["definitions"]["StagerNode"]["properties"]["kind"]["enum"]
    assert "colour_pick" in scene_kinds
    (colour,) = [
        d
        for d in with_plugin["definitions"].values()
        if d.get("properties", {}).get("kind") == {"const": "colour_pick"}
    ]
    assert "prompt" in colour["required"]
    # A blocked plugin's kinds are gone.
    without_parquet = igym_schema("--block", "parquet")
    assert "parquet" not in without_parquet["definitions"]["SinkConfig"]["properties"]["kind"]["enum"]


# --- broken experiments fail the schema, and igym refuses them too ---------------------------

VALID: dict[str, Any] = _parse("json", (ROOT / "examples" / "mountain_car.json").read_text(encoding="utf-8"))
VALID.pop("$schema")
SURVEY: dict[str, Any] = _parse("toml", (ROOT / "examples" / "survey_study.toml").read_text(encoding="utf-8"))


def _refused_by_igym(data: Any, converter: Any) -> bool:
    try:
        experiment = structure_or_raise(converter, data, Experiment, title="test")
    except ConfigError:
        return True
    return bool(experiment_problems(experiment))


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(data)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


_DELETE = object()

BROKEN = {
    "unknown scene kind": ((("scenes", 1, "kind"), "gym_scene")),
    "misspelt field": ((("scenes", 1, "max_step"), 600)),
    "missing experiment_id": ((("experiment_id",), _DELETE)),
    "experiment_id not a slug": ((("experiment_id",), "My Study")),
    "fps as a string": ((("scenes", 1, "fps"), "30")),
    "fps of 0": ((("scenes", 1, "fps"), 0)),
    "fps over 120": ((("scenes", 1, "fps"), 240)),
    "unknown input mode": ((("scenes", 1, "input_mode"), "hold")),
    "question without prompt": ((("scenes", 2, "questions", 0, "prompt"), _DELETE)),
    "unknown question kind": ((("scenes", 2, "questions", 1, "kind"), "essay")),
    "unknown sink kind": ((("sinks",), [{"kind": "csv"}])),
    "negative countdown": ((("scenes", 1, "countdown_s"), -1)),
    "policy table without kind": ((("scenes", 1, "policies"), {"bot": {"path": "bot.onnx"}})),
    "boolean as a string": ((("scenes", 1, "record_observations"), "no")),
}


@pytest.mark.parametrize(("path", "value"), BROKEN.values(), ids=list(BROKEN))
def test_broken_experiment_fails_the_schema_and_igym(
    path: tuple[Any, ...], value: Any, validator: jsonschema.Draft7Validator, converter: Any
) -> None:
    broken = _set(VALID, path, value)
    assert not validator.is_valid(broken)
    if path[-1] != "policies":  # igym checks bot tables when it prepares the game, not when it loads
        assert _refused_by_igym(broken, converter)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("scenes", 1, "questions", 0, "choices", 2), {"value": "both", "lable": "Either"}),
        (("scenes", 1, "questions", 1, "labels", 0), {"value": 1, "label": "Bad", "colour": "red"}),
    ],
    ids=["misspelt key in a choice table", "unknown key in a scale label table"],
)
def test_unknown_key_in_a_nested_table_fails_the_schema_and_igym(
    path: tuple[Any, ...], value: Any, validator: jsonschema.Draft7Validator, converter: Any
) -> None:
    """Choice, option and scale-label tables are structured by hooks of their own; a misspelt key
    there is refused like anywhere else, not silently dropped."""
    broken = _set(SURVEY, path, value)
    assert not validator.is_valid(broken)
    assert _refused_by_igym(broken, converter)


def _positions(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    out = [(path, data)]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _positions(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += _positions(value, (*path, index))
    return out


def _where(data: dict[str, Any]) -> dict[str, list[Any]]:
    positions = _positions(data)
    return {
        "tables": [p for p, v in positions if isinstance(v, dict) and "action_mapping" not in p],
        "scalars": [
            (p, v)
            for p, v in positions
            if isinstance(v, str | bool | int | float)
            and p
            and p[-1] != "kind"
            and "action_mapping" not in p
            and "default_action" not in p
        ],
        "keys": [p for p, _ in positions if p and isinstance(p[-1], str)],
        "arrays": [p for p, v in positions if isinstance(v, list) and "action_mapping" not in p],
    }


EXAMPLES = {"mountain_car.json": (VALID, _where(VALID)), "survey_study.toml": (SURVEY, _where(SURVEY))}
_WRONG = {str: [3, True, [], {}], bool: ["yes", 1, []], int: ["7", 2.5, True, []], float: ["1.5", True, []]}


def _mistakes() -> list[tuple[str, str, tuple[Any, ...], Any, bool]]:
    """(example, mistake, path, broken experiment, structural) for every position of both examples:
    each scalar replaced by values of other types, an unknown field added to each table, and each
    field removed."""
    out = []
    for name, (valid, where) in EXAMPLES.items():
        for path, value in where["scalars"]:
            for wrong in _WRONG[type(value)]:
                # A number for another number (2.5 for 1) may be right or wrong depending on the field.
                structural = (
                    not isinstance(wrong, int | float) or isinstance(wrong, bool) or isinstance(value, str)
                )
                out.append((name, f"wrong type {wrong!r}", path, _set(valid, path, wrong), structural))
        for path in where["tables"]:
            out.append((name, "unknown field", path, _set(valid, (*path, "colour_scheme"), "dark"), True))
        for path in where["keys"]:
            out.append((name, "missing field", path, _set(valid, path, _DELETE), True))
        for path in where["arrays"]:
            for wrong in ("left", {"a": 1}):
                out.append((name, f"array as {wrong!r}", path, _set(valid, path, wrong), True))
    return out


def test_schema_and_igym_agree_on_structural_mistakes(
    validator: jsonschema.Draft7Validator, converter: Any
) -> None:
    """Anywhere in a valid experiment (every position of both examples, exhaustively): a value of
    the wrong type, a string or table where an array belongs, an unknown field, or a missing
    required field is refused by the schema and by igym alike, and the schema never refuses what
    igym accepts."""
    disagreements = []
    cases = _mistakes()
    for name, mistake, path, broken, structural in cases:
        schema_accepts = validator.is_valid(broken)
        igym_accepts = not _refused_by_igym(broken, converter)
        wrong = (
            (igym_accepts and not schema_accepts)  # the schema must never be stricter than igym
            # an optional field (the schema has a default) may go; a required one may not, for either
            or (mistake == "missing field" and schema_accepts != igym_accepts)
            or (mistake != "missing field" and structural and schema_accepts)
        )
        if wrong:
            disagreements.append(
                f"{name} {mistake} at {list(path)}: schema {schema_accepts}, igym {igym_accepts}"
            )
    assert len(cases) > 200
    assert not disagreements, "\n".join(disagreements)


# --- completion codes ----------------------------------------------------------------------------


def _end_scenes(text: str) -> list[str]:
    """The source of every ``EndScene(...)`` call in ``text``, comments left out."""
    code = "\n".join(line.split("#", 1)[0] if "#" in line else line for line in text.splitlines())
    found = []
    for match in re.finditer(r"EndScene\(", code):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(code)):
            depth += {"(": 1, ")": -1}.get(code[end], 0)
            if depth == 0:
                break
        found.append(code[match.start() : end + 1])
    return found


def test_no_example_sends_a_fresh_code_to_prolific() -> None:
    """Prolific accepts only the completion codes configured in the study, so an end scene that
    redirects to Prolific's completion URL must give that fixed code, never ``"auto"``."""
    sources = [
        ROOT / "README.md",
        *DOCS.glob("*.md"),
        *ROOT.glob("plugins/*/README.md"),
        *ROOT.glob("igym_core/src/igym_core/examples/*.py"),
        *ROOT.glob("plugins/*/src/*/examples/*.py"),
        *ROOT.glob("examples/*.py"),
    ]
    checked = 0
    for path in sources:
        for call in _end_scenes(path.read_text(encoding="utf-8")):
            checked += 1
            if "prolific.com" in call:
                assert not re.search(r"completion_code\s*=\s*[\"']auto[\"']", call), (path, call)
    for where, fmt, text in DOCUMENTED:
        for scene in _parse(fmt, text).get("scenes", []):
            if isinstance(scene, dict) and "prolific.com" in str(scene.get("redirect_url", "")):
                assert scene.get("completion_code") != "auto", where
    assert checked >= 5


# --- the generator on a plugin's own config types ----------------------------------------------


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@attrs.frozen(kw_only=True)
class Corner:
    x: int
    y: int = 0


@attrs.frozen(kw_only=True)
class Knobs:
    """A made-up plugin config with every kind of field the generator has to describe."""

    name: str = attrs.field(validator=attrs.validators.min_len(1))
    count: int = attrs.field(default=1, validator=positive)
    ratio: float = attrs.field(default=0.5, validator=[non_negative, attrs.validators.le(1)])
    mode: Literal["fast", "slow"] = "fast"
    tags: tuple[str, ...] = ()
    limits: dict[str, float] = attrs.field(factory=dict)
    corner: Corner | None = None
    folder: Path | None = None
    colour: Colour = Colour.RED
    pair: tuple[int, str] | None = None
    flag: bool = False


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-2, 2, allow_nan=False)
    | st.sampled_from(["", "red", "fast", "x", "slow"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["x", "y", "z"]), inner, max_size=3)
    ),
    max_leaves=6,
)
GOOD_VALUES = {
    "name": st.text(min_size=1, max_size=3),
    "count": st.integers(1, 5),
    "ratio": st.floats(0, 1),
    "mode": st.sampled_from(["fast", "slow"]),
    "tags": st.lists(st.text(max_size=2), max_size=2),
    "limits": st.dictionaries(st.text(max_size=2), st.floats(-1, 1), max_size=2),
    "corner": st.none()
    | st.fixed_dictionaries({"x": st.integers(-2, 2)}, optional={"y": st.integers(-2, 2)}),
    "folder": st.none() | st.text(min_size=1, max_size=3),
    "colour": st.sampled_from(["red", "green"]),
    "pair": st.none() | st.tuples(st.integers(-2, 2), st.text(max_size=2)).map(list),
    "flag": st.booleans(),
}


@st.composite
def knob_tables(draw: st.DrawFn) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for name, good in GOOD_VALUES.items():
        choice = draw(st.sampled_from(["omit", "good", "good", "any"]))
        if choice == "good":
            table[name] = draw(good)
        elif choice == "any":
            table[name] = draw(JSON_VALUES)
    if draw(st.booleans()) and draw(st.booleans()):
        table["colour_scheme"] = "dark"  # an unknown field
    return table


@functools.cache
def _knobs() -> tuple[Any, jsonschema.Draft7Validator]:
    """The app's converter and the generated schema of ``Knobs`` (not fixtures: hypothesis would
    print their long reprs with every example)."""
    converter = make_converter(create_plugin_manager(quiet=True).registry)
    builder = SchemaBuilder(converter)
    root = builder.type_schema(Knobs)
    schema = {"$schema": DRAFT, "allOf": [root], "definitions": builder.definitions}
    jsonschema.Draft7Validator.check_schema(schema)
    return converter, jsonschema.Draft7Validator(schema)


def _integral_float_for_int(table: dict[str, Any]) -> bool:
    """JSON Schema counts 2.0 as an integer; igym, like Python, does not (a data file that writes
    ``count = 2.0`` is told to write a whole number). The one place the schema is looser."""
    corner = table.get("corner")
    values = [table.get("count"), *(corner.values() if isinstance(corner, dict) else ())]
    pair = table.get("pair")
    if isinstance(pair, list) and pair:
        values.append(pair[0])
    return any(isinstance(v, float) and v.is_integer() for v in values)


@settings(max_examples=300, deadline=None)
@given(table=knob_tables())
@example(table={"name": "x", "tags": "ab"})  # a string is not an array of its characters
@example(table={"name": "x", "tags": {"a": 1}})  # nor is a table an array of its keys
@example(table={"name": "x", "count": 0, "colour": "blue", "folder": 3})
def test_generated_schema_of_a_plugin_config_agrees_with_the_converter(table: dict[str, Any]) -> None:
    """For a plugin's config class with enums, paths, literals, optional nested tables, fixed pairs,
    mappings and validators, the generated schema accepts a table exactly when igym's converter
    (strict types, no unknown keys) structures it."""
    converter, knobs_validator = _knobs()
    schema_accepts = knobs_validator.is_valid(table)
    try:
        converter.structure(table, Knobs)
        converter_accepts = True
    except Exception:
        converter_accepts = False
    if _integral_float_for_int(table):
        assert converter_accepts <= schema_accepts
    else:
        assert schema_accepts == converter_accepts, [e.message for e in knobs_validator.iter_errors(table)]
