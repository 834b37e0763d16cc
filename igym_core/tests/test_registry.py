"""Registries: ``kind`` → implementation, one per plugin type; clashes name both providers."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import pytest
from litestar.testing import TestClient

from igym_core import EndScene, Experiment, SceneConfig, StartScene, hookimpl
from igym_core.config.converter import make_converter
from igym_core.config.experiment import experiment_problems
from igym_core.data.interface import DataSink
from igym_core.errors import DuplicatePluginNameError, PluginError, PluginNotFoundError
from igym_core.plugins.registry import KindRegistry
from igym_core.testing import ScriptedParticipant, make_test_app, read_records


@attrs.frozen(kw_only=True)
class QuizScene(SceneConfig):
    """A throwaway scene type: one question with a fixed right answer."""

    kind: ClassVar[str] = "quiz"
    question: str = "2 + 2?"
    answer: str = "4"

    def validate_response(self, answers: Any) -> dict[str, str]:
        if answers.get("answer") != self.answer:
            return {"answer": "Wrong."}
        return {}


@attrs.frozen(kw_only=True)
class OtherQuizScene(SceneConfig):
    kind: ClassVar[str] = "quiz"


class QuizPlugin:
    @hookimpl
    def igym_register_scene_types(self) -> list[type[SceneConfig]]:
        return [QuizScene]


class OtherQuizPlugin:
    @hookimpl
    def igym_register_scene_types(self) -> list[type[SceneConfig]]:
        return [OtherQuizScene]


def test_duplicate_kinds_name_both_providers_and_both_classes(igym_pm, register_plugin):
    register_plugin(QuizPlugin(), name="quiz-one")
    register_plugin(OtherQuizPlugin(), name="quiz-two")
    with pytest.raises(DuplicatePluginNameError) as info:
        _ = igym_pm.registry
    message = str(info.value)
    assert "'quiz'" in message
    assert "'quiz-one'" in message and "'quiz-two'" in message
    assert f"{__name__}.QuizScene" in message
    assert f"{__name__}.OtherQuizScene" in message
    assert "IGYM_BLOCKED_PLUGINS=" in message  # says how to fix it


def test_a_plugin_cannot_take_a_builtin_kind(igym_pm, register_plugin):
    @attrs.frozen(kw_only=True)
    class MySurvey(SceneConfig):
        kind: ClassVar[str] = "survey"

    class Plugin:
        @hookimpl
        def igym_register_scene_types(self) -> list[type[SceneConfig]]:
            return [MySurvey]

    register_plugin(Plugin(), name="my-surveys")
    with pytest.raises(DuplicatePluginNameError) as info:
        _ = igym_pm.registry
    assert "'igym.scenes_static'" in str(info.value) and "'my-surveys'" in str(info.value)
    assert "igym_core.builtin.scenes_static.SurveyScene" in str(info.value)


def test_duplicate_kinds_are_fine_once_one_provider_is_blocked():
    from igym_core.plugins.manager import IgymPluginManager

    manager = IgymPluginManager()
    manager.pm.set_blocked("quiz-two")
    manager.register(QuizPlugin(), name="quiz-one")
    manager.register(OtherQuizPlugin(), name="quiz-two")
    assert manager.registry.scene_types.get("quiz") is QuizScene


def test_unknown_kind_lists_the_installed_kinds(igym_pm):
    with pytest.raises(PluginNotFoundError) as info:
        igym_pm.registry.scene_types.get("quizz")
    message = str(info.value)
    assert "'quizz'" in message
    for kind in ("start", "static", "survey", "end"):
        assert kind in message
    assert isinstance(info.value, LookupError)
    with pytest.raises(PluginNotFoundError, match="installed: by_condition, fifo"):
        igym_pm.registry.matchmakers.get("fifi")


def test_registering_a_non_subclass_is_rejected(igym_pm, register_plugin):
    @attrs.frozen(kw_only=True)
    class NotAScene:
        kind: ClassVar[str] = "not_a_scene"

    class Plugin:
        @hookimpl
        def igym_register_scene_types(self) -> list[Any]:
            return [NotAScene]

    register_plugin(Plugin(), name="confused")
    with pytest.raises(PluginError) as info:
        _ = igym_pm.registry
    message = str(info.value)
    assert "'confused'" in message
    assert "igym_core.scenes.interface.SceneConfig" in message
    assert "not a subclass" in message


def test_registering_an_instance_instead_of_a_class_is_rejected():
    registry: KindRegistry[Any] = KindRegistry("scene type", SceneConfig)
    with pytest.raises(PluginError, match="not a subclass"):
        registry.add(StartScene(scene_id="consent"), provider="confused")
    assert len(registry) == 0


def test_a_class_without_its_own_kind_is_rejected(igym_pm, register_plugin):
    @attrs.frozen(kw_only=True)
    class Nameless(SceneConfig):
        pass

    class Plugin:
        @hookimpl
        def igym_register_scene_types(self) -> list[Any]:
            return [Nameless]

    register_plugin(Plugin(), name="nameless")
    with pytest.raises(PluginError) as info:
        _ = igym_pm.registry
    assert "'nameless'" in str(info.value)
    assert "kind of its own" in str(info.value)


@pytest.mark.parametrize("kind", ["", None, 3])
def test_a_class_with_an_unusable_kind_is_rejected(kind):
    registry: KindRegistry[Any] = KindRegistry("data sink", DataSink)
    sink = type("OddSink", (DataSink,), {"kind": kind})
    with pytest.raises(PluginError, match="without a 'kind'"):
        registry.add(sink, provider="odd")


def test_register_hook_must_return_a_list(igym_pm, register_plugin):
    class Plugin:
        @hookimpl
        def igym_register_scene_types(self) -> Any:
            return QuizScene  # forgot the list

    register_plugin(Plugin(), name="listless")
    with pytest.raises(PluginError, match="must return a list"):
        _ = igym_pm.registry


def test_no_plugin_may_register_after_the_registry_is_built(igym_pm):
    _ = igym_pm.registry
    with pytest.raises(PluginError, match="before the registry is built"):
        igym_pm.register(QuizPlugin(), name="late")


def test_a_throwaway_scene_type_is_registered_and_reported(igym_pm, register_plugin):
    name = register_plugin(QuizPlugin(), name="quiz-plugin")
    assert name == "quiz-plugin"
    registry = igym_pm.registry
    assert registry.scene_types.get("quiz") is QuizScene
    assert registry.scene_types.provider("quiz") == "quiz-plugin"
    assert registry.scene_types.provider("survey") == "igym.scenes_static"
    info = {i.name: i for i in igym_pm.plugin_info()}
    assert info["quiz-plugin"].registers == {"scene_types": ["quiz"]}
    assert sorted(info["igym.scenes_static"].registers["scene_types"]) == [
        "end",
        "start",
        "static",
        "survey",
    ]
    assert info["igym.sink_jsonl"].registers == {"data_sinks": ["jsonl"]}
    assert info["igym.sink_jsonl"].distribution == "igym-core"


def test_a_throwaway_scene_type_is_selected_by_kind_and_served(igym_pm, register_plugin, tmp_path):
    register_plugin(QuizPlugin(), name="quiz-plugin")
    converter = make_converter(igym_pm.registry)
    experiment = converter.structure(
        {
            "experiment_id": "quiz_study",
            "scenes": [
                {"kind": "start", "scene_id": "consent"},
                {"kind": "quiz", "scene_id": "q1", "question": "3 + 3?", "answer": "6"},
                {"kind": "end", "scene_id": "done"},
            ],
        },
        Experiment,
    )
    assert experiment.scenes[1] == QuizScene(scene_id="q1", question="3 + 3?", answer="6")
    assert experiment_problems(experiment) == []

    app = make_test_app(experiment, tmp_path / "data", plugins=igym_pm)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        scene = p.submit({"agree": True})
        assert scene["scene"] == {"kind": "quiz", "scene_id": "q1", "question": "3 + 3?", "answer": "6"}
        rejected = p.submit({"answer": "5"})
        assert rejected["type"] == "rejected" and rejected["errors"] == {"answer": "Wrong."}
        assert p.submit({"answer": "6"})["scene"]["kind"] == "end"
        rows = read_records(tmp_path / "data", "quiz_study", "responses")
    assert [(r["scene_id"], r["scene_kind"], r["question_id"], r["value"]) for r in rows] == [
        ("consent", "start", "agree", True),
        ("q1", "quiz", "answer", "6"),
    ]


def test_scene_type_may_not_take_a_stager_kind(igym_pm, register_plugin):
    @attrs.frozen(kw_only=True)
    class Repeat(SceneConfig):
        kind: ClassVar[str] = "repeat"

    class Plugin:
        @hookimpl
        def igym_register_scene_types(self) -> list[Any]:
            return [Repeat]

    register_plugin(Plugin(), name="repeater")
    with pytest.raises(Exception, match="reserved for a stager element") as info:
        make_converter(igym_pm.registry)
    assert "'repeater'" in str(info.value)


def test_experiment_scenes_still_validate_with_a_new_scene_type(igym_pm, register_plugin):
    register_plugin(QuizPlugin(), name="quiz-plugin")
    experiment = Experiment(
        experiment_id="x",
        scenes=(QuizScene(scene_id="q"), StartScene(scene_id="q"), EndScene(scene_id="done")),
    )
    problems = experiment_problems(experiment)
    assert any(p.startswith("$.scenes[1].scene_id") for p in problems)
