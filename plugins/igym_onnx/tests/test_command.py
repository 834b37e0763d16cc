"""`igym onnx check model.onnx module:env_factory`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from igym_core.cli import main
from igym_onnx.testing import mlp_model, recurrent_model, save_model

ROOT = Path(__file__).resolve().parents[3]
CARTPOLE = "gymnasium.envs.classic_control.cartpole:CartPoleEnv"

TWO_SEATS = '''
import numpy as np
from gymnasium import spaces

class TwoSeats:
    """'small' sees 4 numbers and has 2 actions; 'big' sees a dict and has 3 actions."""
    possible_agents = ["small", "big"]

    def __init__(self):
        self.agents = []
        self.t = 0

    def observation_space(self, agent):
        if agent == "small":
            return spaces.Box(-1, 1, shape=(4,), dtype=np.float32)
        return spaces.Dict({"grid": spaces.Box(0, 1, shape=(2, 3), dtype=np.float32),
                            "action_mask": spaces.MultiBinary(3)})

    def action_space(self, agent):
        return spaces.Discrete(2 if agent == "small" else 3)

    def _obs(self):
        return {"small": np.full(4, 0.1 * self.t, np.float32),
                "big": {"grid": np.zeros((2, 3), np.float32), "action_mask": np.array([0, 1, 1], np.int8)}}

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.t = 0
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        done = self.t >= 3
        result = (self._obs(), {a: 1.0 for a in self.agents}, {a: done for a in self.agents},
                  {a: False for a in self.agents}, {a: {} for a in self.agents})
        if done:
            self.agents = []
        return result

def make():
    return TwoSeats()
'''


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    save_model(mlp_model(4, 2, seed=1, extra_outputs=("value",)), tmp_path / "cartpole.onnx")
    save_model(
        recurrent_model(6, 5, 3, seed=2, names=("obs", "h_in", "logits", "h_out")), tmp_path / "grid.onnx"
    )
    save_model(mlp_model(5, 2, seed=3), tmp_path / "five.onnx")
    (tmp_path / "two_seats.py").write_text(TWO_SEATS)
    monkeypatch.chdir(tmp_path)
    # In-process runs load this plugin alone (the real command below loads installed plugins).
    monkeypatch.setenv("IGYM_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("IGYM_PLUGINS", "igym_onnx.plugin")
    return tmp_path


def test_check_prints_roles_preprocessing_and_steps(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["onnx", "check", "cartpole.onnx", CARTPOLE, "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert f"model: {workdir / 'cartpole.onnx'}" in out
    assert "obs  float32 ['batch', 4]  <- observation: the only input that is not recurrent state" in out
    assert "logits  float32 ['batch', 2]  <- logits: its name contains 'logits'" in out
    assert "value  float32 ['batch', 1]  <- not used (ignored)" in out
    assert "batching: yes" in out
    assert "1. flatten the observation in C order: 4 numbers" in out and "2. cast to float32" in out
    assert "→ input 'obs' with shape [1, 4]" in out
    steps = [line for line in out.splitlines() if line.startswith("step ")]
    assert len(steps) == 4 and all("agent_0=" in s for s in steps)
    assert out.endswith("OK\n")


def test_check_uses_flags_and_config_and_skips_agents_that_do_not_fit(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "grid.json").write_text(json.dumps({"kind": "onnx", "action": "sample", "temperature": 0.5}))
    code = main(
        [
            "onnx",
            "check",
            "grid.onnx",
            "two_seats.py:make",
            "--config",
            "grid.json",
            "--keys",
            "grid",
            "--mean",
            "0.5",
            "--clip=-1,1",
            "--steps",
            "10",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "h_in  float32 ['batch', 5]  <- state pair 'h_in' → 'h_out'" in out
    assert "agent 'small'" in out and "does not fit" in out
    assert "1. take key(s) 'grid' of the dict observation (as declared), each flattened in C order" in out
    assert "subtract mean 0.5" in out and "clip to [-1, 1]" in out
    assert "sample from softmax(logits / 0.5)" in out
    steps = [line for line in out.splitlines() if line.startswith("step ")]
    assert len(steps) == 3 and "episode ended after step 3" in out
    assert all("small=" in s and "(random)" in s for s in steps)
    assert all("big=0" not in s for s in steps)  # the mask forbids action 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.onnx", CARTPOLE], "ONNX model file 'missing.onnx' not found"),
        (["grid.onnx", CARTPOLE], "The model fits none of the env's agents"),
        (["five.onnx", CARTPOLE], "takes 5 numbers per observation, but the preprocessed observation has 4"),
        (["cartpole.onnx", CARTPOLE, "--logits-output", "nope"], "logits_output names the output 'nope'"),
        (["cartpole.onnx", "no_such_module:make"], "no_such_module"),
        (["cartpole.onnx", CARTPOLE, "--std", "0"], "non-zero"),
        (["cartpole.onnx", CARTPOLE, "--agent", "zz"], "--agent ['zz'] not in the env's agents"),
    ],
)
def test_check_errors(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["onnx", "check", *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err, captured.err


def test_check_runs_as_a_real_command(workdir: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")
    command = (
        [uv, "run", "--frozen", "--project", str(ROOT), "igym"]
        if uv
        else [sys.executable, "-m", "igym_core.cli"]
    )
    env = {k: v for k, v in os.environ.items() if k not in ("IGYM_DISABLE_PLUGIN_AUTOLOAD", "IGYM_PLUGINS")}
    done = subprocess.run(
        [*command, "onnx", "check", "cartpole.onnx", CARTPOLE, "--steps", "2"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "batching: yes" in done.stdout and done.stdout.endswith("OK\n")
    help_text = subprocess.run(
        [*command, "--help"], cwd=workdir, capture_output=True, text=True, timeout=120, env=env
    ).stdout
    assert "onnx" in help_text
