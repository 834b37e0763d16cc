"""``igym check`` on browser-run scenes: the packages the browser would need and where each comes from,
and a refusal naming a package that is not pure Python with the setting that fixes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

STUDIES = Path(__file__).resolve().parent / "studies"


def igym_check(study: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "check", f"{STUDIES / study}:experiment"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("IGYM_")}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_igym_check_lists_what_the_browser_installs_and_where_it_comes_from() -> None:
    result = igym_check("packages_slime.py")
    assert result.returncode == 0, result.stderr
    notes = [
        line for line in result.stdout.splitlines() if line.startswith("note: $.scenes[1] (slime): browser")
    ]
    text = "\n".join(notes)
    assert "browser package attrs: igym's index: built from installed attrs" in text
    assert "browser package igym-core: igym's index: igym's lean browser build of igym-core" in text
    assert "browser package igym-slime: igym's index: built from the source tree of igym-slime" in text
    assert "Pyodide's own" in text
    assert (
        "browser download on a first visit: Pyodide 6.4 MB (13.6 MB unpacked), micropip and igym's wheels"
        in text
    )


def test_igym_check_refuses_an_env_that_imports_numpy_naming_it_and_the_setting() -> None:
    result = igym_check("packages_numpy_study.py")
    assert result.returncode != 0
    assert "$.scenes[0]: scene 'slime' (runtime 'pyodide'): the browser needs numpy" in result.stderr
    assert "not pure Python" in result.stderr and "Set IGYM_PYODIDE_EXTRA_INDEX_URL" in result.stderr
    # With an extra index set, it passes and says where numpy will come from.
    result = igym_check("packages_numpy_study.py", IGYM_PYODIDE_EXTRA_INDEX_URL="https://pypi.org/simple")
    assert result.returncode == 0, result.stderr
    assert "browser package numpy: the extra index (IGYM_PYODIDE_EXTRA_INDEX_URL)" in result.stdout
