"""What a stranger gets from the wheels: the client and data files, a description, a working install.

- The wheels (built once per session with ``uv build --all-packages``: each sdist, then each wheel
  from its sdist, as a stranger or PyPI would) carry the browser client, the example files and
  their README as their description.
- A build of igym-core that cannot include the client fails and says how to fix it; in a checkout
  without a built client, the build makes it.
- The wheels installed with ``uv pip`` into a fresh venv outside the repository serve the flagship
  study (Slime Volleyball against the trained bot) to headless Chromium; the records and the
  snapshot appear in the data directory; ``igym --version`` names every package; a plugin
  author's tests run there with ``igym-core[test]``; without its client, the installation says
  how to get one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "igym-core": ROOT / "igym_core",
    "igym-cogrid": ROOT / "plugins" / "igym_cogrid",
    "igym-onnx": ROOT / "plugins" / "igym_onnx",
    "igym-parquet": ROOT / "plugins" / "igym_parquet",
    "igym-pyodide-p2p": ROOT / "plugins" / "igym_pyodide_p2p",
    "igym-slime": ROOT / "plugins" / "igym_slime",
    "igym-unity": ROOT / "plugins" / "igym_unity",
}
VS_AI = "igym_slime.examples.vs_ai:experiment"
#: The interpreter behind this venv: what a stranger's fresh venv is made from.
BASE_PYTHON = os.path.realpath(sys.executable)


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in $UV
    if found is None:
        pytest.fail("uv is not on PATH; `make test` installs it")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that points into this repository or its venv."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT", "UV_PROJECT")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("IGYM_", "PYTEST"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if str(ROOT) not in p)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return {**env, **extra}


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every package's wheel, each built from its sdist (``uv build --all-packages``)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [uv(), "build", "--python", BASE_PYTHON, "--all-packages", "-o", str(out), "-q"],
        cwd=ROOT,
        env=clean_env(),
        check=True,
        timeout=300,
    )
    built = {}
    for name in PACKAGES:
        (wheel,) = out.glob(f"{name.replace('-', '_')}-*.whl")
        built[name] = wheel
    return built


def sdist_names(wheels: dict[str, Path], name: str) -> set[str]:
    (sdist,) = wheels[name].parent.glob(f"{name.replace('-', '_')}-*.tar.gz")
    with tarfile.open(sdist) as archive:
        return {n.partition("/")[2] for n in archive.getnames()}


def test_igym_core_wheel_ships_the_client_and_example_files(wheels: dict[str, Path]) -> None:
    wheel = wheels["igym-core"]
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "igym_core/client/igym.js",
        "igym_core/client/igym.css",
        "igym_core/client/admin.js",  # the admin dashboard (docs/admin.md)
        "igym_core/client/admin.css",
        "igym_core/examples/survey_study_consent.md",
        "igym_core/py.typed",
        "igym_core/hookspecs.py",
    ):
        assert required in names, f"{required} is missing from {wheel.name}"
    assert any(n.startswith("igym_core/client/chunks/") and n.endswith(".js") for n in names)
    # The sdist carries the built client (and the hook), so a wheel builds from it without node.
    assert {"src/igym_core/client/igym.js", "hatch_build.py"} <= sdist_names(wheels, "igym-core")
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "igym = igym_core.cli:main" in text
    assert "igym = igym_core.testing.pytest_plugin" in text


def test_igym_unity_wheel_ships_the_page_module_the_bridge_and_the_fake_build_sources(
    wheels: dict[str, Path],
) -> None:
    names = set(zipfile.ZipFile(wheels["igym-unity"]).namelist())
    for required in (
        "igym_unity/static/igym_unity.js",
        "igym_unity/unity/Igym.jslib",
        "igym_unity/unity/Igym.cs",
        "igym_unity/fake/fake.loader.js",
        "igym_unity/fake/framework.template.js",
        "igym_unity/py.typed",
    ):
        assert required in names, f"{required} is missing from the igym-unity wheel"


def test_igym_cogrid_wheel_ships_the_cloned_chef_and_its_trainer(wheels: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(wheels["igym-cogrid"]).namelist())
    for required in (
        "igym_cogrid/models/cogrid_cramped_room.onnx",
        "igym_cogrid/models/cogrid_asymmetric_advantages.onnx",
        "igym_cogrid/train.py",
    ):
        assert required in names, f"{required} is missing from the igym-cogrid wheel"
    assert "src/igym_cogrid/models/cogrid_cramped_room.onnx" in sdist_names(wheels, "igym-cogrid")


def test_igym_onnx_wheel_ships_onnxruntime_web(wheels: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(wheels["igym-onnx"]).namelist())
    for name in ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm", "VERSION"):
        assert f"igym_onnx/static/ort/{name}" in names, f"{name} is missing from the igym-onnx wheel"
    assert "src/igym_onnx/static/ort/ort-wasm-simd-threaded.wasm" in sdist_names(wheels, "igym-onnx")


def test_an_igym_onnx_wheel_copies_onnxruntime_web_or_says_how(tmp_path: Path) -> None:
    source = ROOT / "plugins" / "igym_onnx"
    if not (source / "frontend" / "node_modules").is_dir():
        pytest.fail("plugins/igym_onnx/frontend/node_modules is missing: run `make setup` first")
    onnx = tmp_path / "igym_onnx"
    shutil.copytree(
        source, onnx, ignore=shutil.ignore_patterns("ort", "tests", "node_modules", "__pycache__")
    )
    (onnx / "frontend" / "node_modules").symlink_to(source / "frontend" / "node_modules")
    no_npm = clean_env(PATH=os.pathsep.join([str(Path(uv()).parent), "/usr/local/sbin", "/sbin"]))
    build = [uv(), "build", "--python", BASE_PYTHON, "--wheel", str(onnx)]
    refused = subprocess.run(
        [*build, "-o", str(tmp_path / "out1")], cwd=tmp_path, env=no_npm, capture_output=True, text=True
    )
    assert refused.returncode != 0, "an igym-onnx wheel without onnxruntime-web was built"
    assert "npm is not on PATH" in refused.stderr and "npm ci && npm run build" in refused.stderr
    subprocess.run(
        [*build, "-o", str(tmp_path / "out2")], cwd=tmp_path, env=clean_env(), check=True, capture_output=True
    )
    (wheel,) = (tmp_path / "out2").glob("igym_onnx-*.whl")
    assert "igym_onnx/static/ort/ort-wasm-simd-threaded.wasm" in zipfile.ZipFile(wheel).namelist()


def test_igym_pyodide_p2p_wheel_ships_pyodide_and_micropip(wheels: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(wheels["igym-pyodide-p2p"]).namelist())
    for name in (
        "pyodide.mjs",
        "pyodide.asm.mjs",
        "pyodide.asm.wasm",
        "python_stdlib.zip",
        "pyodide-lock.json",
        "micropip-0.11.1-py3-none-any.whl",
        "VERSION",
    ):
        assert f"igym_pyodide_p2p/static/pyodide/{name}" in names, f"{name} is missing from the wheel"
    assert "src/igym_pyodide_p2p/static/pyodide/pyodide.asm.wasm" in sdist_names(wheels, "igym-pyodide-p2p")
    # npm's and the build's own files stay out.
    assert not any("node_modules" in n or n.endswith("package.json") for n in names)


def test_an_igym_pyodide_p2p_wheel_without_pyodide_says_how_to_get_it(tmp_path: Path) -> None:
    plugin = tmp_path / "igym_pyodide_p2p"
    shutil.copytree(
        ROOT / "plugins" / "igym_pyodide_p2p",
        plugin,
        ignore=shutil.ignore_patterns("pyodide", "tests", "node_modules", "__pycache__"),
    )
    no_npm = clean_env(PATH=os.pathsep.join([str(Path(uv()).parent), "/usr/local/sbin", "/sbin"]))
    refused = subprocess.run(
        [uv(), "build", "--python", BASE_PYTHON, "--wheel", str(plugin), "-o", str(tmp_path / "out")],
        cwd=tmp_path,
        env=no_npm,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0, "an igym-pyodide-p2p wheel without Pyodide's files was built"
    assert "npm is not on PATH" in refused.stderr and "npm ci && npm run build" in refused.stderr
    assert not list((tmp_path / "out").glob("*.whl"))


def test_each_wheel_describes_itself_with_its_readme(wheels: dict[str, Path]) -> None:
    for name, wheel in wheels.items():
        with zipfile.ZipFile(wheel) as archive:
            (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
            message = Parser().parsestr(archive.read(metadata_name).decode())
        readme = (PACKAGES[name] / "README.md").read_text()
        assert message["Description-Content-Type"] == "text/markdown", name
        assert message.get_payload().strip() == readme.strip(), f"{name}: the description is not its README"
        words = re.findall(r"[a-z]{3,}", readme.lower())
        assert len(words) > 150, f"{name}: the README has {len(words)} words; describe the package"
        assert message["Summary"] and len(message["Summary"]) > 40, name
    extras = Parser().parsestr(
        zipfile.ZipFile(wheels["igym-core"])
        .read(next(n for n in zipfile.ZipFile(wheels["igym-core"]).namelist() if n.endswith("METADATA")))
        .decode()
    )
    assert "test" in extras.get_all("Provides-Extra")
    requires = extras.get_all("Requires-Dist")
    for needed in ("pytest", "hypothesis"):
        assert any(r.startswith(needed) and re.search(r"extra == .test.", r) for r in requires), needed


def copy_core_source(directory: Path, *, with_frontend: bool) -> Path:
    """igym-core's source tree without its built client, and optionally the frontend next to it."""
    core = directory / "igym_core"
    shutil.copytree(
        ROOT / "igym_core",
        core,
        ignore=shutil.ignore_patterns("client", "tests", "__pycache__", "*.egg-info", "dist"),
    )
    if with_frontend:
        frontend = directory / "frontend"
        shutil.copytree(ROOT / "frontend", frontend, ignore=shutil.ignore_patterns("node_modules", "dist"))
        (frontend / "node_modules").symlink_to(ROOT / "frontend" / "node_modules")
    return core


def test_a_wheel_without_the_client_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    core = copy_core_source(tmp_path, with_frontend=False)
    assert not (core / "src" / "igym_core" / "client").exists()
    result = subprocess.run(
        [uv(), "build", "--python", BASE_PYTHON, "--wheel", "-o", str(tmp_path / "out"), str(core)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0, "a wheel without the browser client was built"
    assert "the browser client (src/igym_core/client/igym.js) is missing" in result.stderr
    assert "`uv build --package igym-core`" in result.stderr
    assert not list((tmp_path / "out").glob("*.whl"))


def test_a_wheel_built_in_a_checkout_without_the_client_builds_it(tmp_path: Path) -> None:
    if not (ROOT / "frontend" / "node_modules").is_dir():
        pytest.fail("frontend/node_modules is missing: run `make setup` first")
    core = copy_core_source(tmp_path, with_frontend=True)
    subprocess.run(
        [uv(), "build", "--python", BASE_PYTHON, "--wheel", "-o", str(tmp_path / "out"), str(core)],
        cwd=tmp_path,
        env=clean_env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = (tmp_path / "out").glob("igym_core-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"igym_core/client/igym.js", "igym_core/client/igym.css"} <= names
    # Without npm, the same checkout fails and names the command.
    shutil.rmtree(core / "src" / "igym_core" / "client")
    no_npm = clean_env(PATH=os.pathsep.join([str(Path(uv()).parent), "/usr/local/sbin", "/sbin"]))
    result = subprocess.run(
        [uv(), "build", "--python", BASE_PYTHON, "--wheel", "-o", str(tmp_path / "out2"), str(core)],
        cwd=tmp_path,
        env=no_npm,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "npm is not on PATH" in result.stderr and "npm ci && npm run build" in result.stderr


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


# --- a stranger's install -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stranger_venv(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the repository with the four wheels (and igym-core's test extra)."""
    home = tmp_path_factory.mktemp("stranger")
    venv = home / "venv"
    subprocess.run(
        [uv(), "venv", "-q", "--python", BASE_PYTHON, str(venv)], cwd=home, env=clean_env(), check=True
    )
    requirements = [f"igym-core[test] @ {wheels['igym-core'].as_uri()}"]
    requirements += [str(wheel) for name, wheel in wheels.items() if name != "igym-core"]
    subprocess.run(
        [uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *requirements],
        cwd=home,
        env=clean_env(),
        check=True,
        timeout=300,
    )
    return venv


def venv_env(venv: Path) -> dict[str, str]:
    return clean_env(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{clean_env()['PATH']}")


def in_venv(venv: Path, code: str, cwd: Path) -> str:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=cwd,
        env=venv_env(venv),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_the_stranger_venv_runs_the_wheels_and_igym_version_names_them(
    stranger_venv: Path, tmp_path: Path
) -> None:
    where = in_venv(
        stranger_venv,
        "import igym_core, igym_onnx, igym_parquet, igym_slime as s; print(s.__file__)",
        tmp_path,
    )
    assert where.startswith(str(stranger_venv)) and str(ROOT) not in where, where
    # igym_core.__version__ (in /health and the snapshot) is the version pip installed.
    same = "import igym_core, importlib.metadata as m; print(igym_core.__version__ == m.version('igym-core'))"
    assert in_venv(stranger_venv, same, tmp_path) == "True"
    version = subprocess.run(
        [str(stranger_venv / "bin" / "igym"), "--version"],
        cwd=tmp_path,
        env=venv_env(stranger_venv),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.splitlines() == [
        "igym-core 0.1.0",
        "igym-cogrid 0.1.0",
        "igym-onnx 0.1.0",
        "igym-parquet 0.1.0",
        "igym-pyodide-p2p 0.1.0",
        "igym-slime 0.1.0",
        "igym-unity 0.1.0",
    ]


def test_a_stranger_installs_the_wheels_and_plays_the_flagship_study(
    stranger_venv: Path, live_server: Any, new_page: Any, shots: Any, tmp_path: Path
) -> None:
    from tests.e2e.test_slime_browser import check_slimes_drawn, enter_game, hold, objects, wait_phase
    from tests.e2e.test_survey_browser import poll, wait_records

    cwd = tmp_path / "study"
    cwd.mkdir()
    igym = str(stranger_venv / "bin" / "igym")
    server = live_server(VS_AI, command=[igym], cwd=cwd, env=venv_env(stranger_venv))
    page = new_page()
    pid = enter_game(page, server.url, "stranger", "slime")
    wait_phase(page, "playing")
    start_x = objects(page)["left_slime"]["x"]
    hold(page, "ArrowRight", ms=400)
    poll(lambda: objects(page)["left_slime"]["x"] > start_x + 30, page=page, what="the slime to move right")
    check_slimes_drawn(page, shots(page, "playing").with_name("canvas.png"))
    assert not page.errors, page.errors
    steps = wait_records(
        server,
        "slime_vs_ai",
        "steps",
        lambda rows: any(r["participant_id"] == pid and r["keys_held"] == ["ArrowRight"] for r in rows),
    )
    assert {r["agent"] for r in steps} == {"left", "right"}
    (snapshot_path,) = (server.data_dir / "slime_vs_ai" / "snapshots").glob("*.json")
    packages = json.loads(snapshot_path.read_text())["packages"]
    for name in ("igym-core", "igym-onnx", "igym-parquet", "igym-slime", "numpy", "gymnasium", "onnxruntime"):
        assert name in packages, f"{name} is missing from the snapshot's packages {sorted(packages)}"
    assert "pyarrow" in packages  # igym-parquet's requirement, installed and recorded


def test_a_plugin_authors_tests_run_with_the_test_extra_of_the_wheel(
    stranger_venv: Path, tmp_path: Path
) -> None:
    package = write_plugin_package(tmp_path / "colour-quiz")
    result = run_plugin_tests(str(stranger_venv / "bin" / "python"), package, venv_env(stranger_venv))
    assert result.returncode == 0 and "3 passed" in result.stdout, result.stdout[-4000:] + result.stderr


def test_an_installation_without_its_client_says_how_to_get_one(
    stranger_venv: Path, live_server: Any, tmp_path: Path
) -> None:
    installed = Path(in_venv(stranger_venv, "import igym_core; print(igym_core.__file__)", tmp_path)).parent
    client, hidden = installed / "client", installed / "client-hidden-by-test"
    client.rename(hidden)  # put back below: the session's other tests share this venv
    try:
        server = live_server(
            "igym_core.examples.survey_study:experiment",
            command=[str(stranger_venv / "bin" / "igym")],
            cwd=tmp_path,
            env=venv_env(stranger_venv),
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.url}/", timeout=10)
        assert refused.value.code == 503
        page = refused.value.read().decode()
        for advice in (page, server.log()):
            assert "This installation of igym-core has no browser client" in advice
            assert "uv build --package igym-core" in advice
            assert "make build" not in advice  # a pip user has no Makefile
        assert str(installed) not in page and str(installed / "client" / "igym.js") in server.log()
    finally:
        hidden.rename(client)


def test_the_snapshot_records_what_the_study_and_its_env_import(live_server: Any, tmp_path: Path) -> None:
    """Besides igym's own requirements: the scientific stack, and the distribution of any module the
    experiment's code imported (here ``sortedcontainers``, which nothing in igym requires)."""
    (tmp_path / "study.py").write_text(
        "import sortedcontainers  # a library this study's own code uses\n"
        "from igym_core.examples.mountain_car import experiment\n"
    )
    server = live_server("study.py:experiment", cwd=tmp_path)
    (snapshot,) = (server.data_dir / "mountain_car_demo").glob("snapshots/*.json")
    packages = json.loads(snapshot.read_text())["packages"]
    from importlib import metadata

    for name in (
        "sortedcontainers",
        "numpy",
        "gymnasium",
        "pettingzoo",
        "onnxruntime",
        "pyarrow",
        "litestar",
    ):
        assert packages.get(name) == metadata.version(name), (name, sorted(packages))
    assert packages["igym-core"] == "0.1.0" and packages["igym-slime"] == "0.1.0"
    assert "pytest" not in packages  # installed here, but neither required nor imported by the server
