"""The converter, the experiment loader and the experiment's cross-scene rules."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from igym_core import (
    ByCondition,
    ChoiceQuestion,
    EndScene,
    Experiment,
    GymScene,
    JsonlSinkConfig,
    OptionBox,
    OptionBoxes,
    RandomizeOrder,
    RepeatScene,
    ScaleLabel,
    ScaleQuestion,
    StartScene,
    StaticScene,
    SurveyScene,
    TextQuestion,
)
from igym_core.config.converter import make_converter, structure_or_raise
from igym_core.config.experiment import experiment_problems
from igym_core.config.loader import load_experiment
from igym_core.config.urls import UrlParam
from igym_core.errors import ConfigError, ExperimentLoadError
from igym_core.examples import survey_study as example_module
from igym_core.examples.survey_study import experiment as example_study
from igym_core.plugins.manager import create_plugin_manager


@pytest.fixture(scope="module")
def converter() -> Any:
    return make_converter(create_plugin_manager(autoload=False).registry)


@pytest.fixture
def isolated_imports(monkeypatch):
    """The loader adds the experiment's directory to sys.path and the module to sys.modules."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("igym_experiment_", "study_")):
            del sys.modules[name]


def _structure(converter: Any, data: Any) -> Experiment:
    return structure_or_raise(converter, data, Experiment, title="The experiment is invalid")


def _problems(converter: Any, data: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _structure(converter, data)
    problems = info.value.problems
    # Every line names a path and appears in the rendered message.
    for problem in problems:
        assert problem.startswith("$"), problem
        assert problem in str(info.value)
    return problems


# --- round trips --------------------------------------------------------------------------------


def test_example_study_round_trips(converter):
    data = converter.unstructure(example_study)
    assert data["scenes"][0]["kind"] == "start"
    assert data["scenes"][3]["kind"] == "randomize_order"
    assert _structure(converter, data) == example_study
    # Also through JSON text, as a .json experiment file would be.
    assert _structure(converter, json.loads(json.dumps(data))) == example_study


_texts = st.text(max_size=12)
_slugs = st.from_regex(r"[a-z0-9][a-z0-9_\-]{0,8}", fullmatch=True)
_values = st.text(min_size=1, max_size=8)


def _selection_bounds(draw: Any, n: int) -> dict[str, Any]:
    multiple = draw(st.booleans())
    if not multiple:
        return {"multiple": False}
    low = draw(st.none() | st.integers(0, n))
    high = draw(st.none() | st.integers(max(low or 0, 1), n))
    return {"multiple": True, "min_selected": low, "max_selected": high}


@st.composite
def questions(draw: Any, qid: str) -> Any:
    kind = draw(st.sampled_from(["text", "choice", "scale", "options"]))
    common = {"id": qid, "prompt": draw(_texts), "required": draw(st.booleans())}
    if kind == "text":
        low = draw(st.integers(0, 5))
        return TextQuestion(
            **common,
            min_length=low,
            max_length=draw(st.none() | st.integers(max(low, 1), 60)),
            multiline=draw(st.booleans()),
            placeholder=draw(_texts),
        )
    if kind == "choice":
        values = draw(st.lists(_values, min_size=2, max_size=5, unique=True))
        choices = [(v, draw(_texts)) for v in values]
        return ChoiceQuestion(**common, choices=choices, **_selection_bounds(draw, len(values)))
    if kind == "options":
        values = draw(st.lists(_values, min_size=2, max_size=4, unique=True))
        options = [OptionBox(v, draw(_texts), draw(_texts)) for v in values]
        return OptionBoxes(**common, options=options, **_selection_bounds(draw, len(values)))
    low = draw(st.integers(-5, 5))
    step = draw(st.sampled_from([0.25, 0.5, 1, 2]))
    points = draw(st.integers(1, 14))
    labelled = draw(st.lists(st.integers(0, points), unique=True, max_size=3))
    return ScaleQuestion(
        **common,
        min=low,
        max=low + step * points,
        step=step,
        style=draw(st.sampled_from(["likert", "slider"])),
        labels=[ScaleLabel(low + step * i, draw(_texts)) for i in labelled],
    )


@st.composite
def experiments(draw: Any) -> Experiment:
    counter = itertools.count()
    conditions = draw(st.lists(_slugs, unique=True, max_size=3))

    def scene() -> Any:
        scene_id = f"s{next(counter)}"
        kind = draw(st.sampled_from(["static", "survey", "survey"]))
        if kind == "static":
            return StaticScene(
                scene_id=scene_id,
                title=draw(_texts),
                body=draw(_texts),
                body_format=draw(st.sampled_from(["markdown", "html"])),
                min_duration_ms=draw(st.integers(0, 5000)),
            )
        ids = draw(st.lists(_slugs, min_size=1, max_size=4, unique=True))
        return SurveyScene(
            scene_id=scene_id,
            title=draw(_texts),
            intro=draw(_texts),
            questions=[draw(questions(qid)) for qid in ids],
            button_label=draw(_texts),
        )

    def node(depth: int) -> Any:
        options = ["scene", "scene", "randomize", "repeat"]
        if conditions:
            options.append("by_condition")
        kind = draw(st.sampled_from(options)) if depth < 3 else "scene"
        if kind == "scene":
            return scene()
        if kind == "randomize":
            children = [node(depth + 1) for _ in range(draw(st.integers(1, 3)))]
            return RandomizeOrder(
                scenes=children,
                keep_n=draw(st.none() | st.integers(1, len(children))),
                seed=draw(st.none() | st.integers(0, 2**31)),
            )
        if kind == "repeat":
            return RepeatScene(scene=node(depth + 1), times=draw(st.integers(1, 3)))
        return ByCondition(
            branches={c: tuple(node(depth + 1) for _ in range(draw(st.integers(0, 2)))) for c in conditions}
        )

    middle = [node(0) for _ in range(draw(st.integers(0, 4)))]
    code = draw(st.sampled_from([None, "auto", "C0DE42"]))
    end = EndScene(
        scene_id="end",
        completion_code=code,
        redirect_url=draw(
            st.sampled_from(
                [None, "https://example.org/done?p={PROLIFIC_PID}"]
                + ([] if code is None else ["https://example.org/done?cc={completion_code}&p={PROLIFIC_PID}"])
            )
        ),
        redirect_delay_ms=draw(st.integers(0, 10_000)),
    )
    return Experiment(
        experiment_id=draw(_slugs),
        title=draw(_texts),
        seed=draw(st.integers(0, 2**32)),
        conditions=conditions,
        sinks=draw(st.sampled_from([(), (JsonlSinkConfig(),)])),
        url_params=draw(
            st.sampled_from(
                [
                    ("PROLIFIC_PID",),
                    ("STUDY_ID", UrlParam(name="PROLIFIC_PID", on_missing="refuse", missing_value="X")),
                ]
            )
        ),
        scenes=(StartScene(scene_id="consent", body=draw(_texts)), *middle, end),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experiment=experiments())
def test_generated_experiments_round_trip(converter, experiment):
    data = converter.unstructure(experiment)
    assert _structure(converter, data) == experiment
    assert _structure(converter, json.loads(json.dumps(data))) == experiment
    # What the generator builds is a valid study.
    assert experiment_problems(experiment) == []


# --- structuring errors --------------------------------------------------------------------------

_START = {"kind": "start", "scene_id": "consent"}
_END = {"kind": "end", "scene_id": "done"}


def _study(*middle: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"experiment_id": "broken", "scenes": [_START, *middle, _END], **extra}


def test_a_choice_question_with_one_choice_names_its_path(converter):
    survey = {
        "kind": "survey",
        "scene_id": "q",
        "questions": [{"kind": "choice", "id": "colour", "prompt": "Colour?", "choices": ["red"]}],
    }
    problems = _problems(converter, _study({"kind": "static", "scene_id": "intro"}, survey))
    assert any(p.startswith("$.scenes[2].questions[0].choices") for p in problems), problems
    assert any("at least 2" in p for p in problems)


def test_unknown_scene_kind_lists_the_known_ones(converter):
    problems = _problems(converter, _study({"kind": "statik", "scene_id": "intro"}))
    assert len(problems) == 1
    assert problems[0].startswith("$.scenes[1]:")
    assert (
        "kind 'statik'; the installed scene kinds are: by_condition, end, gym, randomize_order" in problems[0]
    )
    assert "Did you mean 'static'?" in problems[0]
    assert ".." not in problems[0]
    assert "expected StagerNode" not in problems[0]


def test_unknown_question_kind_lists_the_known_ones(converter):
    survey = {"kind": "survey", "scene_id": "q", "questions": [{"kind": "slider", "id": "a", "prompt": "p"}]}
    problems = _problems(converter, _study(survey))
    assert problems[0].startswith("$.scenes[1].questions[0]")
    assert "the installed question kinds are: choice, options, scale, text." in problems[0]


def test_misspelled_key_lists_the_valid_fields(converter):
    problems = _problems(converter, _study({"kind": "static", "scene_id": "intro", "titel": "Hi"}))
    assert len(problems) == 1
    assert problems[0].startswith("$.scenes[1]")
    assert "titel" in problems[0]
    for field in ("title", "body", "button_label", "min_duration_ms"):
        assert field in problems[0]


def test_misspelled_key_at_the_top_level(converter):
    problems = _problems(converter, _study(sed=3))
    assert problems[0].startswith("$:")
    assert "sed" in problems[0] and "seed" in problems[0]


def test_missing_required_field_names_it(converter):
    problems = _problems(converter, _study({"kind": "survey", "scene_id": "q"}))
    assert problems == ["$.scenes[1].questions: required field missing; add it."]
    problems = _problems(converter, {"experiment_id": "x"})
    assert problems[0].startswith("$.scenes")


def test_missing_field_of_a_question(converter):
    survey = {"kind": "survey", "scene_id": "q", "questions": [{"kind": "text", "id": "a"}]}
    problems = _problems(converter, _study(survey))
    assert problems[0].startswith("$.scenes[1].questions[0].prompt")


@pytest.mark.parametrize(
    ("data", "path", "expected", "found"),
    [
        (
            _study({"kind": "static", "scene_id": "intro", "min_duration_ms": "soon"}),
            "$.scenes[1].min_duration_ms",
            "must be a whole number",
            "'soon'",
        ),
        (_study(seed="abc"), "$.seed", "must be a whole number", "'abc'"),
        (
            _study(
                {
                    "kind": "survey",
                    "scene_id": "q",
                    "questions": [{"kind": "scale", "id": "a", "prompt": "p", "step": "half"}],
                }
            ),
            "$.scenes[1].questions[0].step",
            "must be a number",
            "'half'",
        ),
        (
            _study(
                {
                    "kind": "survey",
                    "scene_id": "q",
                    "questions": [{"kind": "choice", "id": "a", "prompt": "p", "choices": ["x", 3]}],
                }
            ),
            "$.scenes[1].questions[0].choices[1]",
            "expected Choice",
            "",
        ),
        # A string where an array belongs is not taken apart into its characters.
        ({"experiment_id": "x", "scenes": "consent, done"}, "$.scenes", "must be a list", "'consent, done'"),
        (
            {"experiment_id": "x", "scenes": [], "conditions": {"a": 1}},
            "$.conditions",
            "must be a list",
            "{'a': 1}",
        ),
        (
            _study({"kind": "gym", "scene_id": "g", "env_factory": "a:b", "human_seats": "left"}),
            "$.scenes[1].human_seats",
            "must be a list",
            "'left'",
        ),
    ],
)
def test_wrong_type_names_the_path_what_was_expected_and_what_was_found(
    converter, data, path, expected, found
):
    problems = _problems(converter, data)
    line = next((p for p in problems if p.startswith(path)), None)
    assert line is not None, problems
    assert expected in line, f"{line!r} does not say what was expected ({expected})"
    assert found in line, f"{line!r} does not say what was found ({found})"


def test_invalid_field_value_names_its_path(converter):
    problems = _problems(converter, _study({"kind": "static", "scene_id": "Not A Slug"}))
    assert problems[0].startswith("$.scenes[1].scene_id:")
    assert "'Not A Slug'" in problems[0]


def test_several_problems_are_all_reported(converter):
    problems = _problems(
        converter,
        _study(
            {"kind": "static", "scene_id": "intro", "titel": "x"},
            {"kind": "nope", "scene_id": "b"},
        ),
    )
    assert {p.split(":")[0] for p in problems} >= {"$.scenes[1]", "$.scenes[2]"}


# --- loading files ------------------------------------------------------------------------------

_TOML = """
experiment_id = "toml_study"
title = "From TOML"
seed = 7
conditions = ["a", "b"]

[[scenes]]
kind = "start"
scene_id = "consent"
body_file = "consent.md"

[[scenes]]
kind = "survey"
scene_id = "colours"

[[scenes.questions]]
kind = "choice"
id = "colour"
prompt = "Favourite colour?"
choices = ["red", {value = "blue", label = "Blue!"}]

[[scenes.questions]]
kind = "scale"
id = "liking"
prompt = "How much?"
min = 1
max = 5
labels = [[1, "Not at all"], [5, "Very"]]

[[scenes]]
kind = "by_condition"
branches = {a = [{kind = "static", scene_id = "only_a"}], b = []}

[[scenes]]
kind = "end"
scene_id = "done"
completion_code = "auto"
"""


def _toml_equivalent(consent_body_file: str = "consent.md") -> Experiment:
    return Experiment(
        experiment_id="toml_study",
        title="From TOML",
        seed=7,
        conditions=("a", "b"),
        scenes=(
            StartScene(scene_id="consent", body_file=consent_body_file),
            SurveyScene(
                scene_id="colours",
                questions=(
                    ChoiceQuestion(
                        id="colour", prompt="Favourite colour?", choices=("red", ("blue", "Blue!"))
                    ),
                    ScaleQuestion(
                        id="liking", prompt="How much?", min=1, max=5, labels=((1, "Not at all"), (5, "Very"))
                    ),
                ),
            ),
            ByCondition(branches={"a": (StaticScene(scene_id="only_a"),), "b": ()}),
            EndScene(scene_id="done", completion_code="auto"),
        ),
    )


def test_load_experiment_from_toml(converter, tmp_path):
    (tmp_path / "consent.md").write_text("# Hello", encoding="utf-8")
    path = tmp_path / "study.toml"
    path.write_text(_TOML, encoding="utf-8")
    loaded = load_experiment(str(path), converter)
    assert loaded.experiment == _toml_equivalent()
    assert loaded.base_dir == tmp_path.resolve()
    # body_file is relative to the experiment file's directory.
    view = loaded.experiment.scenes[0].client_view(converter, loaded.base_dir)
    assert "<h1>Hello</h1>" in view["body_html"]


def test_load_experiment_from_json(converter, tmp_path):
    (tmp_path / "consent.md").write_text("Hello", encoding="utf-8")
    data = converter.unstructure(_toml_equivalent())
    path = tmp_path / "study.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_experiment(str(path), converter)
    assert loaded.experiment == _toml_equivalent()
    assert loaded.source == str(path)


def test_a_missing_body_file_is_reported_at_load_time(converter, tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(_TOML, encoding="utf-8")  # no consent.md next to it
    with pytest.raises(ConfigError) as info:
        load_experiment(str(path), converter)
    assert any(p.startswith("$.scenes[0]") and "consent.md" in p for p in info.value.problems)


def test_invalid_toml_and_json_name_the_file(converter, tmp_path):
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("experiment_id = \n", encoding="utf-8")
    with pytest.raises(ExperimentLoadError, match=r"bad\.toml is not valid TOML"):
        load_experiment(str(bad_toml), converter)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{", encoding="utf-8")
    with pytest.raises(ExperimentLoadError, match=r"bad\.json is not valid JSON"):
        load_experiment(str(bad_json), converter)
    with pytest.raises(ExperimentLoadError, match="Cannot read"):
        load_experiment(str(tmp_path / "missing.json"), converter)


def test_structuring_errors_from_a_file_name_the_file(converter, tmp_path):
    path = tmp_path / "study.json"
    path.write_text(json.dumps(_study({"kind": "statik", "scene_id": "x"})), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_experiment(str(path), converter)
    assert str(path) in str(info.value)
    assert info.value.problems[0].startswith("$.scenes[1]")


_PY_STUDY = """
from igym_core import EndScene, Experiment, StartScene

experiment = Experiment(
    experiment_id="py_study",
    scenes=(StartScene(scene_id="consent", body="Hi"), EndScene(scene_id="done")),
)
not_an_experiment = 42


def make():
    return experiment
"""


@pytest.mark.usefixtures("isolated_imports")
def test_load_experiment_from_a_python_file(converter, tmp_path):
    path = tmp_path / "study_file.py"
    path.write_text(_PY_STUDY, encoding="utf-8")
    loaded = load_experiment(f"{path}:experiment", converter)
    assert loaded.experiment.experiment_id == "py_study"
    assert loaded.base_dir == tmp_path.resolve()
    # A function returning an experiment works too.
    assert load_experiment(f"{path}:make", converter).experiment == loaded.experiment


@pytest.mark.usefixtures("isolated_imports")
def test_load_experiment_from_a_module_name(converter, tmp_path, monkeypatch):
    (tmp_path / "study_module.py").write_text(_PY_STUDY, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_experiment("study_module:experiment", converter).experiment.experiment_id == "py_study"
    with pytest.raises(ExperimentLoadError, match=r"no attribute 'experimnet'.*It defines: experiment"):
        load_experiment("study_module:experimnet", converter)
    with pytest.raises(ExperimentLoadError, match=r"is a int; expected an igym_core\.Experiment"):
        load_experiment("study_module:not_an_experiment", converter)
    with pytest.raises(ExperimentLoadError, match="No module named 'study_nowhere'"):
        load_experiment("study_nowhere:experiment", converter)
    # Without ":attribute", the module's one experiment is served.
    assert load_experiment("study_module", converter).source == "study_module:experiment"
    with pytest.raises(ExperimentLoadError, match="MODULE:ATTRIBUTE"):
        load_experiment("study_module:", converter)


@pytest.mark.usefixtures("isolated_imports")
def test_a_missing_import_inside_the_experiment_file_is_named_not_the_file(converter, tmp_path, monkeypatch):
    # The file exists; what is missing is a package it imports whose name starts its relative
    # path ("labstudy" for labstudy/broken.py): the message must name that import, not the file.
    (tmp_path / "labstudy").mkdir()
    (tmp_path / "labstudy" / "broken.py").write_text("import labstudy.helpers\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExperimentLoadError) as caught:
        load_experiment("labstudy/broken.py:experiment", converter)
    message = str(caught.value)
    assert message.startswith("Importing 'labstudy/broken.py' failed"), message
    assert "import labstudy.helpers" in message and "No module named 'labstudy" in message


_PY_TWO_STUDIES = """
from igym_core import EndScene, Experiment, StartScene

def _study(name):
    scenes = (StartScene(scene_id="c", body="Hi"), EndScene(scene_id="e"))
    return Experiment(experiment_id=name, scenes=scenes)

pilot = _study("pilot")
main_study = _study("main_study")
same_as_pilot = pilot
"""


@pytest.mark.usefixtures("isolated_imports")
def test_a_target_without_attribute_takes_the_only_experiment_or_lists_the_candidates(converter, tmp_path):
    one = tmp_path / "only_one.py"
    one.write_text(_PY_STUDY.replace("experiment =", "my_study =").replace("return experiment", "return 1"))
    loaded = load_experiment(str(one), converter)
    assert loaded.experiment.experiment_id == "py_study"
    assert loaded.source == f"{one}:my_study"

    two = tmp_path / "two_studies.py"
    two.write_text(_PY_TWO_STUDIES, encoding="utf-8")
    with pytest.raises(ExperimentLoadError) as info:
        load_experiment(str(two), converter)
    message = str(info.value)
    assert "defines 2 experiments (pilot, main_study)" in message  # an alias is not a second one
    assert f"{two}:pilot, {two}:main_study" in message
    assert load_experiment(f"{two}:main_study", converter).experiment.experiment_id == "main_study"

    none = tmp_path / "no_study.py"
    none.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(ExperimentLoadError, match=r"defines no igym_core\.Experiment at module level"):
        load_experiment(str(none), converter)


_PY_BROKEN = """
from igym_core import ChoiceQuestion, EndScene, Experiment, StartScene, SurveyScene

survey = SurveyScene(
    scene_id="q",
    questions=(ChoiceQuestion(id="a", prompt="p", choices=("only",)),),
)
experiment = Experiment(experiment_id="x", scenes=(StartScene(scene_id="c"), survey, EndScene(scene_id="e")))
"""


@pytest.mark.usefixtures("isolated_imports")
def test_a_module_whose_construction_raises_names_the_file_and_line(converter, tmp_path):
    path = tmp_path / "study_broken.py"
    path.write_text(_PY_BROKEN, encoding="utf-8")
    with pytest.raises(ExperimentLoadError) as info:
        load_experiment(f"{path}:experiment", converter)
    message = str(info.value)
    line = (
        _PY_BROKEN.splitlines().index(
            '    questions=(ChoiceQuestion(id="a", prompt="p", choices=("only",)),),'
        )
        + 1
    )
    assert f"{path}:{line}" in message, message
    assert "choices" in message and "at least 2" in message


@pytest.mark.usefixtures("isolated_imports")
def test_a_module_with_an_error_of_its_own_names_the_file_and_line(converter, tmp_path):
    path = tmp_path / "study_typo.py"
    path.write_text("x = 1\ny = undefined_name + 1\n", encoding="utf-8")
    with pytest.raises(ExperimentLoadError) as info:
        load_experiment(f"{path}:experiment", converter)
    assert f"{path}:2" in str(info.value)
    assert "NameError" in str(info.value)


# --- rules across scenes ----------------------------------------------------------------------------


def test_duplicate_scene_ids(converter):
    experiment = Experiment(
        experiment_id="x",
        scenes=(
            StartScene(scene_id="consent"),
            StaticScene(scene_id="page", body="one"),
            RandomizeOrder(scenes=(StaticScene(scene_id="page", body="two"), StaticScene(scene_id="b"))),
            EndScene(scene_id="done"),
        ),
    )
    problems = experiment_problems(experiment)
    assert len(problems) == 1
    assert problems[0].startswith("$.scenes[2].scenes[0].scene_id:")
    assert "$.scenes[1]" in problems[0]
    # The same scene shown twice is not a clash.
    page = StaticScene(scene_id="page")
    same = Experiment(
        experiment_id="x", scenes=(StartScene(scene_id="c"), page, page, EndScene(scene_id="done"))
    )
    assert experiment_problems(same) == []


def test_end_scene_not_last():
    experiment = Experiment(
        experiment_id="x",
        scenes=(
            StartScene(scene_id="c"),
            EndScene(scene_id="early"),
            StaticScene(scene_id="s"),
            EndScene(scene_id="done"),
        ),
    )
    problems = experiment_problems(experiment)
    assert len(problems) == 1 and problems[0].startswith("$.scenes[1]:")
    assert "'early'" in problems[0] and "last" in problems[0]


def test_end_scene_inside_a_shuffle_is_not_last():
    experiment = Experiment(
        experiment_id="x",
        scenes=(
            StartScene(scene_id="c"),
            RandomizeOrder(scenes=(StaticScene(scene_id="a"), EndScene(scene_id="e"))),
        ),
    )
    problems = experiment_problems(experiment)
    assert any(p.startswith("$.scenes[1].scenes[1]:") for p in problems)
    assert any(p.startswith("$.scenes[1]:") and "must end with an end scene" in p for p in problems)


def test_no_end_scene():
    experiment = Experiment(experiment_id="x", scenes=(StartScene(scene_id="c"), StaticScene(scene_id="s")))
    problems = experiment_problems(experiment)
    assert len(problems) == 1
    assert problems[0].startswith("$.scenes[1]:") and "EndScene" in problems[0]
    assert experiment_problems(Experiment(experiment_id="x", scenes=()))[0].startswith("$.scenes:")


def test_by_condition_branches_must_match_the_conditions():
    experiment = Experiment(
        experiment_id="x",
        conditions=("control", "treatment"),
        scenes=(
            StartScene(scene_id="c"),
            ByCondition(branches={"control": (), "treatmnet": ()}),
            EndScene(scene_id="done"),
        ),
    )
    problems = experiment_problems(experiment)
    assert any(p.startswith("$.scenes[1].branches:") and "'treatment'" in p for p in problems), problems
    assert any(p.startswith("$.scenes[1].branches:") and "'treatmnet'" in p for p in problems), problems
    assert len(problems) == 2


def test_by_condition_without_conditions():
    experiment = Experiment(
        experiment_id="x",
        scenes=(StartScene(scene_id="c"), ByCondition(branches={"a": ()}), EndScene(scene_id="done")),
    )
    problems = experiment_problems(experiment)
    assert len(problems) == 1
    assert problems[0].startswith("$.scenes[1]:") and "conditions=" in problems[0]


def test_by_condition_may_end_every_branch():
    experiment = Experiment(
        experiment_id="x",
        conditions=("a", "b"),
        scenes=(
            StartScene(scene_id="c"),
            ByCondition(branches={"a": (EndScene(scene_id="end_a"),), "b": (EndScene(scene_id="end_b"),)}),
        ),
    )
    assert experiment_problems(experiment) == []


def test_bad_condition_names():
    experiment = Experiment(
        experiment_id="x",
        conditions=("a", "a", "Bad"),
        scenes=(StartScene(scene_id="c"), EndScene(scene_id="d")),
    )
    problems = experiment_problems(experiment)
    assert "$.conditions: a condition is listed twice." in problems
    assert any(p.startswith("$.conditions[2]:") for p in problems)


def test_load_experiment_reports_cross_scene_problems(converter, tmp_path):
    path = tmp_path / "study.json"
    data = {
        "experiment_id": "x",
        "scenes": [_START, {"kind": "static", "scene_id": "consent"}, {"kind": "static", "scene_id": "s"}],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_experiment(str(path), converter)
    assert any(p.startswith("$.scenes[1].scene_id:") for p in info.value.problems)
    assert any(p.startswith("$.scenes[2]:") and "end scene" in p for p in info.value.problems)
    assert str(path) in str(info.value)


def test_example_study_loads_cleanly(converter):
    loaded = load_experiment("igym_core.examples.survey_study:experiment", converter)
    assert loaded.experiment is example_study
    assert loaded.source == "igym_core.examples.survey_study:experiment"
    assert loaded.base_dir == Path(example_module.__file__).resolve().parent


def test_every_body_scene_accepts_a_body_file(converter, tmp_path):
    (tmp_path / "page.md").write_text("# From a file", encoding="utf-8")
    for scene_type in (StartScene, StaticScene, EndScene):
        scene = scene_type(scene_id="page", body_file="page.md")
        assert "<h1>From a file</h1>" in scene.client_view(converter, tmp_path)["body_html"]
        assert converter.structure(converter.unstructure(scene), scene_type) == scene
    with pytest.raises(ValueError, match="either body or body_file"):
        EndScene(scene_id="done", body="Thanks!", body_file="page.md")


def test_conditions_given_as_a_single_string_are_refused_with_a_fix() -> None:
    import pytest

    from igym_core import EndScene, Experiment
    from igym_core.config.validators import FieldError

    with pytest.raises(FieldError, match=r"conditions=\('abc',\)"):
        Experiment(experiment_id="x", scenes=(EndScene(scene_id="end"),), conditions="abc")


_GYM = {"kind": "gym", "scene_id": "play", "env_factory": "my_envs:make", "action_mapping": {"ArrowLeft": 0}}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fps", "30", "must be a whole number; got '30' (str)."),
        ("num_episodes", 2.5, "must be a whole number; got 2.5 (float)."),
        ("max_steps", True, "must be a whole number; got True (bool)."),
        (
            "record_observations",
            "false",
            "must be true or false; got 'false' (str).",
        ),  # bool("false") is True
        ("countdown_s", "3", "must be a number; got '3' (str)."),
        ("header_html", 5, "must be a string; got 5 (int)."),
        ("input_mode", "tap", "must be one of 'held', 'press'; got 'tap'."),
    ],
)
def test_data_files_get_values_as_written_never_coerced(converter, field, value, message):
    problems = _problems(converter, _study({**_GYM, field: value}))
    assert f"$.scenes[1].{field}: {message}" in problems


def _python_problems(**gym: Any) -> list[str]:
    scene = GymScene(scene_id="play", env_factory="my_envs:make", action_mapping={"ArrowLeft": 0}, **gym)
    return experiment_problems(
        Experiment(
            experiment_id="x", scenes=(StartScene(scene_id="c", body="ok"), scene, EndScene(scene_id="e"))
        )
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_episodes", 2.5, "must be a whole number; got 2.5 (float)"),
        ("max_steps", 1.5, "must be a whole number; got 1.5 (float)"),
        ("canvas_width", 600.0, "must be a whole number; got 600.0 (float)"),
        ("record_observations", "yes", "must be true or false; got 'yes' (str)"),
        ("header_html", 5, "must be a string; got 5 (int)"),
        ("human_seats", ("a", 2), "each entry must be a string; got 2 (int)"),
    ],
)
def test_python_experiments_get_the_same_type_checks(field, value, message):
    assert _python_problems(**{field: value}) == [f"$.scenes[1].{field}: {message}."]


def test_python_values_that_fit_their_fields_pass():
    assert _python_problems(num_episodes=2, countdown_s=1, max_steps=None, record_observations=True) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fps", "30", "fps: must be a finite number greater than 0; got '30' (str)."),
        ("countdown_s", "3", "countdown_s: must be a finite number, 0 or more; got '3' (str)."),
        ("input_mode", "tap", "input_mode: must be one of 'held', 'press'; got 'tap'."),
    ],
)
def test_a_wrong_type_in_python_names_the_field_at_construction(field, value, message):
    with pytest.raises(ValueError) as info:
        GymScene(scene_id="play", env_factory="my_envs:make", **{field: value})
    assert str(info.value) == message


def test_url_params_in_a_data_file_are_names_or_tables(converter):
    data = _study(url_params=["PROLIFIC_PID", {"name": "STUDY_ID", "on_missing": "refuse"}])
    experiment = _structure(converter, data)
    assert experiment.url_params == (
        UrlParam(name="PROLIFIC_PID"),
        UrlParam(name="STUDY_ID", on_missing="refuse"),
    )
    problems = _problems(converter, _study(url_params=[{"name": "participant_id"}]))
    assert problems[0].startswith("$.url_params[0].name: 'participant_id' is filled by igym itself")
    problems = _problems(converter, _study(url_params=[{"name": "PID", "on_missing": "ask"}]))
    assert problems[0].startswith("$.url_params[0].on_missing: must be one of 'mark', 'refuse'")
    assert experiment_problems(attrs.evolve(experiment, url_params=("A", "A")))[0] == (
        "$.url_params[1]: 'A' is declared twice; remove one."
    )


@pytest.mark.usefixtures("isolated_imports")
def test_a_sink_written_as_a_dict_in_python_is_structured_like_one_in_a_file(converter, tmp_path):
    path = tmp_path / "dict_sink.py"
    path.write_text(
        _PY_STUDY.replace(
            'EndScene(scene_id="done")),', 'EndScene(scene_id="done")),\n    sinks=({"kind": "jsonl"},),'
        )
    )
    loaded = load_experiment(str(path), converter)
    assert loaded.experiment.sinks == (JsonlSinkConfig(),)
    path.write_text(
        _PY_STUDY.replace(
            'EndScene(scene_id="done")),',
            'EndScene(scene_id="done")),\n    sinks=({"kind": "jsonl", "rotate": 1},),',
        )
    )
    with pytest.raises(ConfigError) as info:
        load_experiment(str(path), converter)
    assert info.value.problems[0].startswith("$.sinks[0]: unknown field(s) rotate for JsonlSinkConfig")
