"""The `igym` command as a researcher runs it: real processes, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def igym(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "igym_core.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


BROKEN_TOML = """
experiment_id = "broken"
[[scenes]]
kind = "start"
scene_id = "consent"
[[scenes]]
kind = "static"
scene_id = "intro"
body = "hi"
[[scenes]]
kind = "survey"
scene_id = "about"
[[scenes.questions]]
kind = "choice"
id = "colour"
prompt = "Colour?"
choices = ["red"]
[[scenes]]
kind = "end"
scene_id = "end"
"""


def test_check_names_the_path_of_a_problem_and_how_to_fix_it(tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(BROKEN_TOML)
    result = igym("check", str(study))
    assert result.returncode == 2
    assert "$.scenes[2].questions[0].choices: needs at least 2 entries; got 1" in result.stderr
    assert "Add choices" in result.stderr


def test_check_reports_the_line_of_a_python_experiment_that_fails(tmp_path: Path) -> None:
    (tmp_path / "my_study.py").write_text(
        "from igym_core import ChoiceQuestion\n"
        "\n"
        "question = ChoiceQuestion(id='q', prompt='?', choices=['only'])\n"
    )
    result = igym("check", "my_study:experiment", cwd=tmp_path)
    assert result.returncode == 2
    assert "my_study.py:3" in result.stderr
    assert "choices: needs at least 2 entries" in result.stderr


def test_check_accepts_the_example_and_a_module_in_the_working_directory(tmp_path: Path) -> None:
    result = igym("check", "igym_core.examples.survey_study:experiment")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: demo_survey: 7 scenes")
    (tmp_path / "my_study.py").write_text(
        "from igym_core import EndScene, Experiment, StartScene\n"
        "experiment = Experiment(experiment_id='mine', scenes=(StartScene(scene_id='c', body='x'),"
        " EndScene(scene_id='e')))\n"
    )
    result = igym("check", "my_study:experiment", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "OK: mine: 2 scenes (end, start)" in result.stdout


def test_check_and_run_take_a_file_without_attribute_when_it_holds_one_experiment(tmp_path: Path) -> None:
    study = tmp_path / "study.py"
    study.write_text(
        "from igym_core import EndScene, Experiment, StartScene\n"
        "pilot = Experiment(experiment_id='pilot', scenes=(StartScene(scene_id='c', body='Hi'),"
        " EndScene(scene_id='e')))\n",
        encoding="utf-8",
    )
    result = igym("check", str(study))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: pilot:")
    study.write_text(study.read_text() + "other = Experiment(experiment_id='other', scenes=pilot.scenes)\n")
    result = igym("check", str(study))
    assert result.returncode == 2
    assert "defines 2 experiments (pilot, other)" in result.stderr
    assert f"{study}:pilot, {study}:other" in result.stderr


def test_check_explains_a_wrong_target() -> None:
    result = igym("check", "no_such_module:experiment")
    assert result.returncode == 2
    assert "No module named 'no_such_module'" in result.stderr
    result = igym("check", "igym_core.examples.survey_study:nothing")
    assert result.returncode == 2
    assert "has no attribute 'nothing'" in result.stderr and "It defines: experiment" in result.stderr


def test_plugins_lists_each_plugin_with_distribution_version_and_registrations() -> None:
    result = igym("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["igym.scenes_static"]["distribution"] == "igym-core"
    assert plugins["igym.scenes_static"]["registers"]["scene_types"] == ["start", "static", "survey", "end"]
    assert plugins["igym.sink_jsonl"]["registers"]["data_sinks"] == ["jsonl"]
    text = igym("plugins").stdout
    assert "igym.sink_jsonl  (igym-core 0.1.0)" in text
    assert "data_sinks: jsonl" in text
    blocked = json.loads(igym("plugins", "--json", "--block", "igym.sink_jsonl").stdout)
    assert "igym.sink_jsonl" not in {p["name"] for p in blocked}


def test_run_serves_health_page_and_writes_a_snapshot(live_server, tmp_path: Path) -> None:
    server = live_server("igym_core.examples.survey_study:experiment")
    with urllib.request.urlopen(f"{server.url}/health") as response:
        health = json.load(response)
    assert health["status"] == "ok" and health["experiment_id"] == "demo_survey"
    with urllib.request.urlopen(f"{server.url}/") as response:
        page = response.read().decode()
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert '<script type="module" src="/client/igym.js"></script>' in page
    assert '"experiment_id": "demo_survey"' in page
    snapshots = list((server.data_dir / "demo_survey" / "snapshots").glob("*.json"))
    assert len(snapshots) == 1
    snapshot = json.loads(snapshots[0].read_text())
    assert snapshot["experiment"]["experiment_id"] == "demo_survey"
    assert [s["kind"] for s in snapshot["experiment"]["scenes"]][:3] == ["start", "static", "survey"]
    assert {
        "name": "igym.sink_jsonl",
        "distribution": "igym-core",
        "version": "0.1.0",
        "registers": {"data_sinks": ["jsonl"]},
    } in snapshot["plugins"]
    assert snapshot["git_commit"] is None or len(snapshot["git_commit"]) >= 40


def test_run_uses_igym_data_dir_from_the_environment(tmp_path: Path) -> None:
    from tests.conftest import free_port

    target = tmp_path / "elsewhere"
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "igym_core.cli",
            "run",
            "igym_core.examples.survey_study:experiment",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env={**os.environ, "IGYM_DATA_DIR": str(target)},
        stdout=log,
        stderr=log,
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        assert len(list((target / "demo_survey" / "snapshots").glob("*.json"))) == 1
        assert not (tmp_path / "data").exists()
    finally:
        process.terminate()
        process.wait(10)
        log.close()
