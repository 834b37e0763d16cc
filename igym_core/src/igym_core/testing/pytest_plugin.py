"""pytest fixtures for igym and its plugins (loaded through the ``pytest11`` entry point ``igym``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def igym_pm() -> Any:
    """A fresh plugin manager: built-ins only (no entry points), notification failures raise."""
    from igym_core.plugins.manager import create_plugin_manager

    return create_plugin_manager(autoload=False, strict=True)


@pytest.fixture
def register_plugin(igym_pm: Any) -> Iterator[Callable[..., str]]:
    """Register a throwaway plugin (module, class or object of hookimpls) on ``igym_pm`` for one test."""
    names: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        registered = igym_pm.register(plugin, name=name)
        names.append(registered)
        return registered

    yield register
    for name in names:
        if igym_pm.pm.has_plugin(name):
            igym_pm.unregister(name)


@pytest.fixture
def igym_experiment() -> Any:
    """The experiment ``igym_app`` serves; override this fixture to serve your own."""
    from igym_core.examples.survey_study import experiment

    return experiment


@pytest.fixture
def igym_app(igym_experiment: Any, igym_pm: Any, tmp_path: Any) -> Any:
    """An app serving ``igym_experiment`` with ``igym_pm``, data under ``tmp_path / 'data'``."""
    from igym_core.testing.support import make_test_app

    return make_test_app(igym_experiment, tmp_path / "data", plugins=igym_pm)


@pytest.fixture
def igym_client(igym_app: Any) -> Iterator[Any]:
    """Litestar's test client for ``igym_app``, with the app's lifespan running."""
    from litestar.testing import TestClient

    with TestClient(app=igym_app) as client:
        yield client


@pytest.fixture
def participant(igym_client: Any) -> Callable[..., Any]:
    """A factory of connected :class:`ScriptedParticipant`; all are closed after the test."""
    from igym_core.testing.participant import ScriptedParticipant

    made: list[ScriptedParticipant] = []

    def make(params: dict[str, str] | None = None, token: str | None = None) -> ScriptedParticipant:
        p = ScriptedParticipant(igym_client, params=params, token=token).connect()
        made.append(p)
        return p

    yield make  # type: ignore[misc]
    for p in made:
        p.close()
