"""What the server tells the browser about a game scene (igym_pyodide_p2p.game_spec), and what
``igym check`` / ``igym run`` refuse because the browser could not run it."""

from __future__ import annotations

import textwrap

import pytest

from igym_core import EndScene, Experiment, GymScene
from igym_core.errors import ConfigError
from igym_core.plugins.manager import create_plugin_manager
from igym_core.serving import validate_for_serving
from igym_core.settings import Settings
from igym_pyodide_p2p import plugin as pyodide_plugin
from igym_pyodide_p2p.browser.spec import GameSpec
from igym_slime.env import make_env
from igym_slime.render import draw


def _plan(target: object) -> object:
    plugins = create_plugin_manager(autoload=False, strict=True, extra=[pyodide_plugin])
    return validate_for_serving(target, plugins, Settings())


def _study(**overrides: object) -> Experiment:
    options: dict[str, object] = dict(
        scene_id="slime",
        runtime="pyodide",
        env_factory=make_env,
        human_seat="left",
        policies={"right": "random"},
        render_fn=draw,
        action_mapping={"ArrowLeft": 1},
        default_action=0,
    )
    options.update(overrides)
    return Experiment(experiment_id="spec", seed=1, scenes=(GymScene(**options), EndScene(scene_id="end")))


def test_the_scene_view_carries_the_game_spec_the_browser_reads():
    plan = _plan(_study())
    (view,) = [v for v in plan.views.values() if v.get("kind") == "gym"]
    assert view["runtime"] == "pyodide" and view["runtime_module"] == "/plugins/pyodide/runtime.js"
    spec = GameSpec.from_json(view["runtime_view"]["game"])
    assert spec.env_factory == "igym_slime.env:make_env" and spec.render_fn == "igym_slime.render:draw"
    assert spec.bots["right"].kind == "random" and spec.bots["right"].n == 6
    assert spec.human_seat == "left" and spec.batch_interval_ms == 500 and spec.hash_every == 30


def test_what_the_browser_cannot_run_is_refused_naming_the_field():
    with pytest.raises(ConfigError) as caught:
        _plan(_study(render_fn=lambda env: draw(env), hud=lambda view: "x"))
    text = str(caught.value)
    assert "$.scenes[0].render_fn:" in text and "cannot be imported by name in the browser" in text
    assert "$.scenes[0].hud:" in text


def test_a_function_in_a_study_file_is_named_by_the_files_stem(tmp_path):
    # The env lives in a file of its own (an experiment file imports igym_core's server classes,
    # which the browser build refuses), named by path: igym imports it under a private module name,
    # and the browser gets it as a module named by the file's stem.
    (tmp_path / "my_slime_env.py").write_text(
        textwrap.dedent(
            """
            from igym_slime.env import make_env as _make

            def make_env():
                return _make(lives=2)
            """
        )
    )
    study = tmp_path / "my_slime_study.py"
    study.write_text(
        textwrap.dedent(
            """
            from igym_core import EndScene, Experiment, GymScene
            from igym_slime.render import draw

            experiment = Experiment(experiment_id="file_spec", seed=1, scenes=(
                GymScene(scene_id="slime", runtime="pyodide", env_factory="my_slime_env.py:make_env",
                         human_seat="left", policies={"right": "random"}, render_fn=draw,
                         action_mapping={"ArrowLeft": 1}, default_action=0),
                EndScene(scene_id="end"),
            ))
            """
        )
    )
    plan = _plan(f"{study}:experiment")
    (view,) = [v for v in plan.views.values() if v.get("kind") == "gym"]
    assert view["runtime_view"]["game"]["env_factory"] == "my_slime_env:make_env"


def test_igym_check_accepts_the_browser_example():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "check", "igym_slime.examples.vs_ai_browser:experiment"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "runs in the participant's browser" in result.stdout
