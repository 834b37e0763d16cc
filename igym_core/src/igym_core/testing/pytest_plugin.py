"""pytest fixtures for igym and its plugins (loaded through the ``pytest11`` entry point ``igym``).

A plugin's test registers the plugin, then meets it as a participant::

    import my_plugin.plugin

    def test_my_scene(register_plugin, participant):
        register_plugin(my_plugin.plugin)        # before the first participant() call
        p = participant({"PROLIFIC_PID": "abc"})  # builds the app, with the plugin, on first call
        ...

``participant`` builds the app (``igym_app``, ``igym_client``) only when a test first calls it,
so plugins registered before that call are part of it. Registering after the app is built fails
with a message saying so. A plugin every test of a module needs can instead come from an override
of ``igym_plugins`` (a list), which ``igym_pm`` registers when it is made; a test that asks for
``igym_app`` or ``igym_client`` as arguments (built before the test body runs) must use that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def igym_plugins() -> list[object]:
    """Plugins (modules, classes or objects of hookimpls) ``igym_pm`` registers; override to add yours."""
    return []


@pytest.fixture
def igym_pm(igym_plugins: list[object]) -> Any:
    """A fresh plugin manager: built-ins and ``igym_plugins``, no entry points; failing hooks raise."""
    from igym_core.plugins.manager import create_plugin_manager

    return create_plugin_manager(autoload=False, extra=igym_plugins, strict=True)


@pytest.fixture
def register_plugin(igym_pm: Any) -> Iterator[Callable[..., str]]:
    """Register a throwaway plugin (module, class or object of hookimpls) on ``igym_pm`` for one test.

    Call it before the first ``participant()`` call (which builds the app from ``igym_pm``).
    """
    from igym_core.errors import PluginError

    names: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        try:
            registered = igym_pm.register(plugin, name=name)
        except PluginError as exc:
            raise PluginError(
                f"register_plugin({plugin!r}) came after the app was built from igym_pm, so the app "
                "would not see it. Call register_plugin before the first participant() call; in a test "
                "that asks for igym_app or igym_client as arguments, override the igym_plugins fixture "
                "to return the plugin instead."
            ) from exc
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
def participant(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """A factory of connected :class:`ScriptedParticipant`; all are closed after the test.

    The first call builds the app and its client (``igym_client``), so ``register_plugin`` calls
    made before it take effect.
    """
    from igym_core.testing.participant import ScriptedParticipant

    made: list[ScriptedParticipant] = []

    def close_all() -> None:
        for p in made:
            p.close()

    def make(params: dict[str, str] | None = None, token: str | None = None) -> ScriptedParticipant:
        client = request.getfixturevalue("igym_client")  # built on the first call
        if not made:
            # Registered after the client's teardown, so it runs before it: sockets close before the app.
            request.node.addfinalizer(close_all)
        p = ScriptedParticipant(client, params=params, token=token).connect()
        made.append(p)
        return p

    yield make
    close_all()
