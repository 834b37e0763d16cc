"""The snapshot's package list follows requirements with the extras each one asks for."""

from __future__ import annotations

import re
from importlib import metadata

from igym_core.server.provenance import _requirements, package_versions


def test_requirements_include_what_the_requested_extras_add() -> None:
    uvicorn = metadata.distribution("uvicorn")
    plain = {name for name, _extras in _requirements(uvicorn, frozenset())}
    standard = {name for name, _extras in _requirements(uvicorn, frozenset({"standard"}))}
    assert {"click", "h11"} <= plain
    assert not plain & {"uvloop", "httptools", "websockets", "watchfiles"}
    assert {"click", "h11", "uvloop", "httptools", "websockets", "watchfiles"} <= standard


def test_igym_cores_requirements_are_recorded_with_their_extras() -> None:
    packages = package_versions()
    # igym-core requires uvicorn[standard]: the server's event loop and HTTP parser are uvloop and
    # httptools, so their versions belong in the record of a run.
    for name in ("uvicorn", "uvloop", "httptools", "litestar", "msgspec", "numpy", "gymnasium"):
        assert packages[name] == metadata.version(name), name
    assert list(packages) == sorted(packages, key=lambda name: re.sub(r"[-_.]+", "-", name).lower())
