"""Which packages a browser-run scene needs, where each comes from, and the wheels igym builds.

The scenes here are prepared as the server prepares them (env built, bots loaded) and planned with
:func:`plan_scene_packages`, which imports their code in a fresh Python process: no stand-ins.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core import GymScene
from igym_core.config.converter import make_converter
from igym_core.plugins.manager import create_plugin_manager
from igym_core.scenes.interface import PrepareContext
from igym_core.settings import Settings
from igym_pyodide_p2p.packages import (
    build_wheels,
    check_scene_packages,
    lean_builds,
    make_wheel,
    normalize,
    plan_scene_packages,
)

STUDIES = Path(__file__).resolve().parent / "studies"
ATTRS_VERSION = importlib.metadata.version("attrs")


def slime_scene(**changes: Any) -> GymScene:
    from igym_slime.bots import ScriptedPolicy
    from igym_slime.env import make_env
    from igym_slime.render import draw

    scene = GymScene(
        scene_id="slime",
        env_factory=make_env,
        env_kwargs={"lives": 3},
        human_seat="left",
        policies={"right": ScriptedPolicy},
        render_fn=draw,
        action_mapping={"ArrowLeft": 1, "ArrowRight": 2},
        default_action=0,
    )
    return attrs.evolve(scene, **changes)


def prepare(scene: GymScene) -> Any:
    """``scene.prepare`` as igym run does it (the scene keeps the ``server`` runtime here: what the
    browser needs does not depend on which runtime is installed under the name ``pyodide``)."""
    plugins = create_plugin_manager()
    context = PrepareContext(
        base_dir=STUDIES,
        registry=plugins.registry,
        converter=make_converter(plugins.registry),
        experiment_seed=1,
    )
    return scene.prepare(context)


def test_the_slime_scene_needs_igym_slime_attrs_and_the_lean_igym_core() -> None:
    scene = slime_scene()
    plan = plan_scene_packages(scene, prepare(scene), Settings())
    assert plan.problems == ()
    sources = {p.project: (p.source, p.version) for p in plan.packages}
    assert sources == {
        "attrs": ("installed", ATTRS_VERSION),
        "igym-core": ("lean", importlib.metadata.version("igym-core")),
        "igym-slime": ("source", importlib.metadata.version("igym-slime")),
        # the runtime's own stepping code (igym_pyodide_p2p.browser), without its server parts
        "igym-pyodide-p2p": ("lean", importlib.metadata.version("igym-pyodide-p2p")),
    }
    # What the browser imports for each role, the Python bot's class included.
    assert plan.imports == {
        "env_factory": "igym_slime.env:make_env",
        "render_fn": "igym_slime.render:draw",
        "policy:right": "igym_slime.bots:ScriptedPolicy",
    }
    assert {"hashlib", "math"} <= set(plan.stdlib)
    notes = "\n".join(plan.notes())
    assert f"browser package attrs: igym's index: built from installed attrs {ATTRS_VERSION}" in notes
    assert "browser package igym-slime: igym's index: built from the source tree of igym-slime" in notes
    assert "browser package igym-core: igym's index: igym's lean browser build" in notes
    assert "Pyodide's own" in plan.notes()[-1]


def test_the_lean_igym_core_holds_only_what_the_browser_imports_and_no_server_stack(tmp_path: Path) -> None:
    version, files = lean_builds()["igym-core"]
    modules = {name for name in files if name.endswith(".py")}
    assert {
        "igym_core/__init__.py",
        "igym_core/errors.py",
        "igym_core/config/validators.py",
        "igym_core/rendering/objects.py",
        "igym_core/rendering/delta.py",
        "igym_core/rendering/interface.py",
        "igym_core/builtin/gym_keys.py",
    } <= modules
    for heavy in ("server/", "session/", "protocol/", "data/", "config/experiment.py", "hookspecs.py"):
        assert not any(heavy in name for name in modules), (
            f"{heavy} is in the browser build: {sorted(modules)}"
        )
    # The build's own top-level __init__ imports nothing (the real one imports the server's config).
    assert b"import" not in files["igym_core/__init__.py"].replace(b"__future__", b"")
    wheel = make_wheel(
        "igym-core", version, files, f"Metadata-Version: 2.1\nName: igym-core\nVersion: {version}\n"
    )
    zipfile.ZipFile(io.BytesIO(wheel.data)).extractall(tmp_path)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import igym_core;"
        "import igym_core.rendering.delta, igym_core.rendering.objects, igym_core.builtin.gym_keys;"
        "assert igym_core.__file__.startswith(sys.argv[1]), igym_core.__file__;"
        "print(sorted(m for m in ('litestar', 'msgpack', 'structlog', 'cattrs', 'uvicorn', 'pluggy')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_an_env_that_imports_numpy_is_refused_naming_numpy_and_the_setting() -> None:
    scene = slime_scene(env_factory="packages_numpy_env.py:make_env")
    prepared = prepare(scene)
    problems, notes = check_scene_packages(scene, prepared, Settings())
    assert len(problems) == 1, problems
    assert "numpy" in problems[0] and "not pure Python" in problems[0]
    assert "IGYM_PYODIDE_EXTRA_INDEX_URL" in problems[0]
    assert "compiled code" in problems[0] or "tagged" in problems[0]
    # With an extra index, numpy comes from there; the rest still from igym's own index.
    problems, notes = check_scene_packages(
        scene, prepared, Settings(pyodide_extra_index_url="https://pypi.org/simple/")
    )
    assert problems == []
    text = "\n".join(notes)
    assert "browser package numpy: the extra index (IGYM_PYODIDE_EXTRA_INDEX_URL)" in text
    assert "browser extra index for packages that are not pure Python: https://pypi.org/simple" in text
    assert "igym-study-packages-numpy-env: igym's index: built from the study's source file" in text


def test_a_study_file_and_the_neighbour_it_imports_become_wheels_the_browser_imports(tmp_path: Path) -> None:
    scene = slime_scene(env_factory="packages_study_envs.py:make_env", env_kwargs={})
    plan = plan_scene_packages(scene, prepare(scene), Settings())
    assert plan.problems == ()
    assert plan.imports["env_factory"] == "packages_study_envs:make_env"
    study = {p.project: p for p in plan.packages if p.source == "study"}
    assert set(study) == {"igym-study-packages-study-envs", "igym-study-packages-study-helpers"}
    assert study["igym-study-packages-study-envs"].location == str(STUDIES / "packages_study_envs.py")
    wheels = {w.project: w for w in build_wheels(plan)}
    for wheel in wheels.values():
        zipfile.ZipFile(io.BytesIO(wheel.data)).extractall(tmp_path)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import packages_study_envs as m;"
        "env = m.make_env(); env.reset(seed=1); print(env.lives_per_episode)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "2"


def test_browser_code_that_imports_the_server_part_of_igym_core_is_refused() -> None:
    scene = slime_scene(render_fn="packages_server_render.py:draw")
    problems, _notes = check_scene_packages(scene, prepare(scene), Settings())
    assert len(problems) == 1, problems
    assert "render_fn (packages_server_render:draw) imports 'igym_core.data" in problems[0]
    assert "not part of igym's browser build" in problems[0]


def _record_ok(archive: zipfile.ZipFile) -> None:
    (record_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
    rows = list(csv.reader(io.StringIO(archive.read(record_name).decode())))
    assert {row[0] for row in rows} == set(archive.namelist())
    for name, digest, size in rows:
        if name == record_name:
            continue
        data = archive.read(name)
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert digest == f"sha256={expected}" and int(size) == len(data), name


def test_wheels_are_pure_reproducible_and_carry_no_requirements() -> None:
    scene = slime_scene()
    prepared = prepare(scene)
    first = build_wheels(plan_scene_packages(scene, prepared, Settings()))
    second = build_wheels(plan_scene_packages(scene, prepared, Settings()))
    assert [w.sha256 for w in first] == [w.sha256 for w in second], "a rebuilt wheel changed"
    for wheel in first:
        assert wheel.filename.endswith("-py3-none-any.whl")
        assert hashlib.sha256(wheel.data).hexdigest() == wheel.sha256
        with zipfile.ZipFile(io.BytesIO(wheel.data)) as archive:
            _record_ok(archive)
            names = archive.namelist()
            metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
            assert "Requires-Dist" not in metadata, wheel.project
            assert normalize(metadata.split("Name: ")[1].splitlines()[0]) == normalize(wheel.project)
            assert not any("__pycache__" in n or n.endswith((".pyc", ".so")) for n in names)
    slime = next(w for w in first if w.project == "igym-slime")
    names = zipfile.ZipFile(io.BytesIO(slime.data)).namelist()
    assert "igym_slime/env.py" in names and "igym_slime/render.py" in names


_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}(/[a-z][a-z0-9_]{0,8}){0,2}\.py", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(
    files=st.dictionaries(_names, st.binary(max_size=200), min_size=1, max_size=6),
    version=st.sampled_from(["1.0", "0+abc123", "2.4.1"]),
)
def test_a_wheel_holds_exactly_its_files_with_a_valid_record(files: dict[str, bytes], version: str) -> None:
    text = f"Metadata-Version: 2.1\nName: some-project\nVersion: {version}\n"
    wheel = make_wheel("some-project", version, files, text)
    assert wheel.filename == f"some_project-{version}-py3-none-any.whl"
    with zipfile.ZipFile(io.BytesIO(wheel.data)) as archive:
        _record_ok(archive)
        assert {n: archive.read(n) for n in archive.namelist() if ".dist-info/" not in n} == files
    # The same files in another order are the same wheel, byte for byte (so the same URL).
    again = make_wheel("some-project", version, dict(reversed(list(files.items()))), text)
    assert again.data == wheel.data


@pytest.mark.parametrize(
    ("name", "expected"), [("Foo_Bar", "foo-bar"), ("a.b-c__d", "a-b-c-d"), ("attrs", "attrs")]
)
def test_project_names_are_compared_as_pep_503_says(name: str, expected: str) -> None:
    assert normalize(name) == expected


def test_a_checkout_without_pyodide_files_is_refused_with_the_command_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import igym_pyodide_p2p.assets as assets

    empty = tmp_path / "static"
    (empty / "pyodide").mkdir(parents=True)
    monkeypatch.setattr(assets, "static_dir", lambda: empty)
    scene = slime_scene()
    problems, _notes = check_scene_packages(scene, prepare(scene), Settings())
    assert len(problems) == 1, problems
    assert "Pyodide's files are missing" in problems[0] and "make build" in problems[0]


def test_a_hud_defined_in_the_experiment_file_is_refused_saying_to_move_it() -> None:
    scene = slime_scene(hud="packages_slime.py:hud")
    problems, _notes = check_scene_packages(scene, prepare(scene), Settings())
    assert len(problems) == 1, problems
    assert "hud (packages_slime:hud) imports from 'igym_core' what is (cannot import name" in problems[0]
    assert "move it into a module of its own" in problems[0]


def test_hidden_files_of_a_source_tree_stay_out_of_its_wheel(tmp_path: Path) -> None:
    from igym_pyodide_p2p.packages import _folder_files

    package = tmp_path / "envpkg"
    (package / ".git").mkdir(parents=True)
    (package / "__pycache__").mkdir()
    (package / "__init__.py").write_text("")
    (package / "levels.json").write_text("{}")
    (package / ".env").write_text("API_KEY=secret")
    (package / ".git" / "config").write_text("[core]")
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert sorted(_folder_files(package)) == ["envpkg/__init__.py", "envpkg/levels.json"]


def test_a_factory_the_browser_cannot_import_by_name_is_refused() -> None:
    import functools

    from igym_slime.env import make_env

    scene = slime_scene(env_factory=functools.partial(make_env, lives=2), env_kwargs={})
    problems, _notes = check_scene_packages(scene, prepare(scene), Settings())
    assert len(problems) == 1, problems
    assert problems[0].startswith("scene 'slime' (runtime 'pyodide'): env_factory: functools.partial(")
    assert "not reachable by its name" in problems[0]


def test_modules_found_through_the_servers_own_path_are_found_by_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PYTHONPATH, a user's site-packages or a folder igym added: the fresh process sees them too."""
    (tmp_path / "faraway_env.py").write_text(
        "from igym_slime.env import make_env as slime\n\n\ndef make_env():\n    return slime()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    scene = slime_scene(env_factory="faraway_env:make_env", env_kwargs={})
    plan = plan_scene_packages(scene, prepare(scene), Settings())
    assert plan.problems == ()
    assert plan.imports["env_factory"] == "faraway_env:make_env"
    assert "igym-study-faraway-env" in {p.project for p in plan.packages}


def test_a_lean_build_follows_module_level_imports_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from igym_pyodide_p2p.packages import lean_modules

    package = tmp_path / "leanpkg"
    (package / "browser").mkdir(parents=True)
    (package / "__init__.py").write_text("from leanpkg import server\n")  # replaced in a lean build
    (package / "browser" / "__init__.py").write_text("")
    (package / "browser" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "from ..util import helper\n"
        "if TYPE_CHECKING:\n    from leanpkg import typing_only\n"
        "try:\n    import leanpkg.optional\nexcept ImportError:\n    pass\n"
        "def later():\n    from leanpkg import server\n"
    )
    (package / "browser" / "b.py").write_text("X = 1\n")
    for name in ("util", "server", "typing_only", "optional"):
        (package / f"{name}.py").write_text("import json\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = lean_modules(["leanpkg.browser"], ["leanpkg"])
    assert sorted(found) == [
        "leanpkg",
        "leanpkg.browser",
        "leanpkg.browser.a",
        "leanpkg.browser.b",
        "leanpkg.optional",
        "leanpkg.util",
    ]


def test_without_a_python_to_import_in_the_imports_are_read_from_the_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fallback: the same packages for slime, the same refusal for numpy, and a note that says so."""
    scene = slime_scene()
    prepared = prepare(scene)
    imported = plan_scene_packages(scene, prepared, Settings())
    numpy_scene = slime_scene(env_factory="packages_numpy_env.py:make_env")
    numpy_prepared = prepare(numpy_scene)
    monkeypatch.setattr(sys, "executable", str(Path(sys.executable).parent / "no-such-python"))
    read = plan_scene_packages(scene, prepared, Settings())
    assert read.problems == ()
    assert {(p.project, p.source) for p in read.packages} == {
        (p.project, p.source) for p in imported.packages
    }
    assert read.imports == imported.imports
    assert "found by reading the code's imports, not by importing it" in read.notes()[-1]
    assert imported.fallback is None
    problems = plan_scene_packages(numpy_scene, numpy_prepared, Settings()).problems
    assert len(problems) == 1 and "the browser needs numpy" in problems[0]
