"""``igym unity check`` and ``igym check`` on good and broken fake builds, in real processes."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

from igym_unity.testing import write_fake_build

IGYM = [sys.executable, "-m", "igym_core.cli"]


def igym(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IGYM, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_unity_check_prints_the_files_and_the_headers_a_server_must_send(tmp_path: Path) -> None:
    write_fake_build(tmp_path / "gz", compression="gzip", hashed_names=True)
    write_fake_build(tmp_path / "br", compression="brotli")
    done = igym("unity", "check", str(tmp_path / "gz"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "(hashed name)" in out and "OK: the build can be served." in out
    headers = [line.strip() for line in out.splitlines()]
    assert headers.count("Content-Encoding: gzip") == 3  # framework, code, data; never the loader
    assert "Content-Type: application/wasm" in out and "immutable" in out
    done = igym("unity", "check", str(tmp_path / "br"), cwd=tmp_path)
    assert done.returncode == 0
    assert [line.strip() for line in done.stdout.splitlines()].count("Content-Encoding: br") == 3
    assert "HTTPS" in done.stdout  # brotli needs HTTPS (or localhost)


def test_unity_check_flags_builds_that_will_fail(tmp_path: Path) -> None:
    build = write_fake_build(tmp_path / "bad", compression="gzip")
    (build / "fake.wasm.gz").write_bytes(gzip.decompress((build / "fake.wasm.gz").read_bytes()))
    done = igym("unity", "check", str(tmp_path / "bad"), cwd=tmp_path)
    assert done.returncode == 1
    assert "fake.wasm.gz ends in .gz but is not gzip data" in done.stderr
    assert "cannot be served" in done.stderr


def test_igym_check_refuses_a_study_whose_build_is_broken(tmp_path: Path) -> None:
    build = write_fake_build(tmp_path / "build")
    (build / "fake.framework.js").unlink()
    study = tmp_path / "study.py"
    study.write_text(
        "from igym_core import EndScene, Experiment\n"
        "from igym_unity import UnityScene\n"
        "experiment = Experiment(experiment_id='broken_unity', scenes=(\n"
        "    UnityScene(scene_id='game', build_dir='build'),\n"
        "    EndScene(scene_id='end'),\n"
        "))\n",
        encoding="utf-8",
    )
    done = igym("check", f"{study}:experiment", cwd=tmp_path)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "$.scenes[0].build_dir: no framework file" in message, message


def test_the_example_study_passes_igym_check(tmp_path: Path) -> None:
    done = igym("check", "igym_unity.examples.fake_game:experiment", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unity" in done.stdout


def test_igym_check_reads_the_unity_outcomes_from_the_plugins_declaration(tmp_path: Path) -> None:
    write_fake_build(tmp_path / "build")
    study = tmp_path / "study.py"
    study.write_text(
        "from igym_core import EndScene, Experiment, Prolific\n"
        "from igym_unity import UnityScene\n"
        "experiment = Experiment(experiment_id='outcomes_unity',\n"
        "    recruitment=Prolific(codes={'completed': 'C1'}), scenes=(\n"
        "    UnityScene(scene_id='game', build_dir='build', timeout_s=60),\n"
        "    EndScene(scene_id='end', codes_by_outcome=CODES),\n"
        "))\n",
        encoding="utf-8",
    )
    source = study.read_text(encoding="utf-8")
    # Reachable: unity_load_failed (Prolific's screened_out) and unity_timeout (timed_out), no code.
    study.write_text(source.replace("CODES", "{}"), encoding="utf-8")
    done = igym("check", f"{study}:experiment", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, done.stdout
    assert (
        "$.scenes[0] plays a Unity build, which may fail to load, but there is no code for 'screened_out'"
        in (warnings[0])
    )
    assert (
        "$.scenes[0] ends a Unity game after timeout_s=60, but there is no code for 'timed_out'"
        in warnings[1]
    )
    # A misspelt outcome would never get its code: refused, with the declared names.
    study.write_text(source.replace("CODES", "{'unity_load_fail': 'X1'}"), encoding="utf-8")
    done = igym("check", f"{study}:experiment", cwd=tmp_path)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "$.scenes[1].codes_by_outcome.unity_load_fail: no installed plugin declares the outcome" in message
    assert "Did you mean 'unity_load_failed'?" in message, message
