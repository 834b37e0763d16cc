"""The wheel carries the browser client and the example's files (the predecessor's wheel did not)."""

from __future__ import annotations

import os
import shutil
import subprocess
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
