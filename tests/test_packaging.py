"""The wheel carries the browser client and the example's files (the predecessor's wheel did not)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_igym_core_wheel_ships_the_client_and_example_files(tmp_path: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in $UV
    if uv is None:
        pytest.fail("uv is not on PATH; `make test` installs it")
    subprocess.run(
        [uv, "build", "--package", "igym-core", "--wheel", "-o", str(tmp_path), "-q"],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("igym_core-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "igym_core/client/igym.js",
        "igym_core/client/igym.css",
        "igym_core/examples/survey_study_consent.md",
        "igym_core/py.typed",
        "igym_core/hookspecs.py",
    ):
        assert required in names, f"{required} is missing from {wheel.name}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "igym = igym_core.cli:main" in text
    assert "igym = igym_core.testing.pytest_plugin" in text


# --- a plugin author's package, tested with only the public fixtures ----------------------------

PLUGIN_PYPROJECT = """\
[project]
name = "colour-quiz"
version = "0.0.1"
dependencies = ["igym-core[test]"]

[project.entry-points.igym]
colour_quiz = "colour_quiz.plugin"

[tool.pytest.ini_options]
pythonpath = ["src"]
addopts = ["-p", "no:cacheprovider"]
filterwarnings = ["error"]
"""

PLUGIN_MODULE = """\
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from igym_core import SceneConfig, hookimpl


@attrs.frozen(kw_only=True)
class ColourQuiz(SceneConfig):
    kind: ClassVar[str] = "colour_quiz"
    prompt: str

    def client_view(self, converter: Any, base_dir: Any) -> dict[str, Any]:
        return {"kind": self.kind, "scene_id": self.scene_id, "prompt": self.prompt}

    def validate_response(self, answers: Mapping[str, Any]) -> dict[str, str]:
        return {} if answers.get("colour") == "blue" else {"colour": "The sky is blue."}


@hookimpl
def igym_register_scene_types() -> list[type[SceneConfig]]:
    return [ColourQuiz]
"""

# register_plugin and participant in one test: the plugin's own scene, answered over the WebSocket.
PLUGIN_TEST_SCENE = """\
import time

import pytest

import colour_quiz.plugin
from colour_quiz.plugin import ColourQuiz
from igym_core import EndScene, Experiment
from igym_core.testing import read_records


@pytest.fixture
def igym_experiment():
    return Experiment(
        experiment_id="quiz",
        scenes=(ColourQuiz(scene_id="sky", prompt="What colour is the sky?"),
                EndScene(scene_id="end", completion_code="SKY1")),
    )


def test_a_participant_answers_the_plugins_scene(register_plugin, participant, tmp_path):
    register_plugin(colour_quiz.plugin)
    p = participant({"PROLIFIC_PID": "author"})
    assert p.kind == "colour_quiz" and p.scene["scene"]["prompt"] == "What colour is the sky?"
    rejected = p.submit({"colour": "green"})
    assert rejected["type"] == "rejected" and rejected["errors"] == {"colour": "The sky is blue."}
    p.submit({"colour": "blue"})
    assert p.kind == "end"
    deadline = time.monotonic() + 10
    while not (rows := read_records(tmp_path / "data", "quiz", "responses")):
        assert time.monotonic() < deadline, "the answer was never recorded"
        time.sleep(0.05)
    assert [(r["scene_id"], r["question_id"], r["value"]) for r in rows] == [("sky", "colour", "blue")]
"""

# The other two ways: a plugin for a whole module (igym_plugins), and registering too late.
PLUGIN_TEST_ORDER = """\
import pytest

import colour_quiz.plugin
from igym_core.errors import PluginError


@pytest.fixture
def igym_plugins():
    return [colour_quiz.plugin]


def test_igym_plugins_are_part_of_an_app_built_before_the_test(igym_app, igym_client):
    assert "colour_quiz" in igym_app.state.plugins.registry.scene_types
    assert igym_client.get("/health").json()["status"] == "ok"


def test_registering_after_the_first_participant_says_what_to_do(register_plugin, participant):
    participant({"PROLIFIC_PID": "late"})

    class Late:
        pass

    with pytest.raises(PluginError, match="before the first participant"):
        register_plugin(Late(), name="late")
"""


def write_plugin_package(directory: Path) -> Path:
    """A throwaway plugin package as its author would lay it out: src/, tests/, pyproject.toml."""
    (directory / "src" / "colour_quiz").mkdir(parents=True)
    (directory / "tests").mkdir()
    (directory / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (directory / "src" / "colour_quiz" / "__init__.py").write_text("")
    (directory / "src" / "colour_quiz" / "plugin.py").write_text(PLUGIN_MODULE)
    (directory / "tests" / "test_scene.py").write_text(PLUGIN_TEST_SCENE)
    (directory / "tests" / "test_order.py").write_text(PLUGIN_TEST_ORDER)
    return directory


def run_plugin_tests(python: str, package: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "pytest", "-q", "tests"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_plugin_authors_tests_register_the_plugin_and_meet_it_as_a_participant(tmp_path: Path) -> None:
    package = write_plugin_package(tmp_path / "colour-quiz")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "IGYM_"))}
    result = run_plugin_tests(sys.executable, package, env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout, result.stdout[-2000:]
