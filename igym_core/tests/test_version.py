"""``igym_core.__version__`` is the installed distribution's version, not a second copy of it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import igym_core


def test_version_is_the_installed_distributions() -> None:
    assert igym_core.__version__ == importlib.metadata.version("igym-core")


def test_version_follows_the_metadata_that_is_installed(tmp_path: Path) -> None:
    """Metadata first on the path (as after ``pip install`` of another release) names the version:
    a literal in the package would still say the old one."""
    dist_info = tmp_path / "igym_core-9.8.7.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: igym-core\nVersion: 9.8.7\n")
    result = subprocess.run(
        [sys.executable, "-c", "import igym_core; print(igym_core.__version__)"],
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "9.8.7"
