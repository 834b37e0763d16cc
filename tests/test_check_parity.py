"""`igym check` refuses exactly what `igym run` refuses, with the same error and message.

Each file under tests/broken_studies/ breaks one thing. Every one goes through `igym check` (a real
process, as a researcher runs it) and through `create_app` (what `igym run` builds before it
serves); both must fail with the same error class and the same text, naming the path of the
problem and how to fix it, and neither may write anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from igym_core.errors import ConfigError, IgymError
from igym_core.server.app import create_app
from igym_core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "tests" / "broken_studies"

#: study file → the error class and what its message must say (each with the path and the fix).
CASES: dict[str, tuple[type[IgymError], list[str]]] = {
    "sink_not_installed.py": (
        ConfigError,
        ["$.sinks[0]: no data sink of kind 'sqlite' is installed; installed: jsonl"],
    ),
    "sink_dict_typo.py": (
        ConfigError,
        ["$.sinks[0]: unknown data sink kind 'jsonll'", "Did you mean 'jsonl'?"],
    ),
    "sink_not_a_config.py": (ConfigError, ["$.sinks[0]: expected a data sink config", "got 'jsonl' (str)"]),
    "redirect_typo.py": (
        ConfigError,
        ["$.scenes[1].redirect_url: unknown placeholder {completion_cod}", "Did you mean {completion_code}?"],
    ),
    "undeclared_param.py": (
        ConfigError,
        ["unknown placeholder {PROLIFIC_PID}", "declare it: Experiment(url_params=(..., 'PROLIFIC_PID'))"],
    ),
    "runtime_missing.py": (
        ConfigError,
        ["$.scenes[1]: scene 'game': runtime 'pyodide_p2pp' is not installed"],
    ),
    "policy_unknown.py": (ConfigError, ["policy for 'right'", "'onnxx'"]),
    "matchmaker_missing.py": (
        ConfigError,
        ["matchmaker 'by_team' is not installed; installed: by_condition, fifo"],
    ),
    "env_draws_nothing.py": (
        ConfigError,
        ["env.render() raised NotImplementedError: this env does not draw itself", "render_fn=", "rgb_array"],
    ),
    "keys_on_a_box.py": (
        ConfigError,
        ["not in the action space of 'agent_0', Box(", "an array of shape (1,)", "default_action=[0.0]"],
    ),
    "missing_body_file.py": (ConfigError, ["$.scenes[0]: body_file 'nope.md' could not be read"]),
    "unknown_scene_kind.toml": (
        ConfigError,
        ["$.scenes[1]: unknown scene kind 'surveys'", "Did you mean 'survey'?", "static, survey"],
    ),
}


def test_every_broken_study_is_in_the_table() -> None:
    files = {p.name for p in BROKEN.iterdir() if p.suffix in (".py", ".toml") and not p.name.startswith("_")}
    assert files == set(CASES)


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """`igym check FILE` for every case, run side by side (each is a process that loads the plugins)."""
    data = tmp_path_factory.mktemp("check-data")
    env = {**os.environ, "IGYM_DATA_DIR": str(data)}
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "igym_core.cli", "check", str(BROKEN / name)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in CASES
    }
    out = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=120)
        out[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert not any(data.iterdir()), "igym check wrote data"
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_fails_exactly_as_run_does(name: str, checked: dict, tmp_path: Path) -> None:
    error_class, fragments = CASES[name]
    target = str(BROKEN / name)
    with pytest.raises(IgymError) as raised:
        create_app(Settings.from_env(data_dir=tmp_path / "data", log_format="json"), target)
    assert type(raised.value) is error_class
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message
    assert ".." not in message.replace("...", "")
    assert not (tmp_path / "data").exists(), "a refused experiment must not create its data directory"

    result = checked[name]
    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    # The same error, with the same text: `igym check` prints "error: <message>".
    assert result.stderr.splitlines()[-len(message.splitlines()) :] == f"error: {message}".splitlines()
