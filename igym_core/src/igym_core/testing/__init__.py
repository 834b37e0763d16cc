"""Public helpers for testing igym and igym plugins (``pip install 'igym-core[test]'``).

- :class:`ScriptedParticipant`: a participant driven over the WebSocket (Litestar's test client).
- :func:`make_test_app`: an app for one experiment with a temporary data directory.
- :func:`read_records`: the records a JSONL sink wrote.
- :func:`poll`: wait (bounded) until a check holds, with or without a Playwright page.
- :class:`LiveServer`: a real ``igym run`` server in a child process on a free loopback port
  (``plugins=``, ``env=``, ``cwd=``, extra ``args=``), for end-to-end and browser tests; see
  :mod:`igym_core.testing.live_server`.
- :func:`check_env_contract`: does an environment meet the environment contract, determinism included?
- :func:`check_state_hash`: does an env's state round-trip and its ``state_hash`` cover all of it
  (what a peer-to-peer rollback game needs)?
- :class:`SinkConformance`: the conformance suite every data sink passes, with the ``DataSink``
  contract stated as numbered rules (subclass it in a test module; see
  :mod:`igym_core.testing.sink_conformance`). Imported on first use: it needs pytest and hypothesis.
- The pytest plugin (``igym_core.testing.pytest_plugin``, loaded automatically through the
  ``pytest11`` entry point) provides the fixtures ``igym_experiment`` (override it to serve your
  own), ``igym_plugins``, ``igym_pm``, ``register_plugin``, ``igym_app``, ``igym_client`` and
  ``participant``.

Testing a plugin: register it, then meet it as a participant. ``participant`` builds the app on its
first call, so a ``register_plugin`` call before that is part of the app::

    import my_plugin.plugin

    def test_my_scene(register_plugin, participant):
        register_plugin(my_plugin.plugin)
        p = participant({"PROLIFIC_PID": "abc"})
        assert p.kind == "my_scene"
        p.submit({"colour": "blue"})

Registering after the app is built raises ``PluginError`` saying so. For every test of a module,
or in a test that takes ``igym_app`` or ``igym_client`` as arguments (built before the test body
runs), override the ``igym_plugins`` fixture instead::

    @pytest.fixture
    def igym_plugins():
        return [my_plugin.plugin]
"""

from typing import Any

from igym_core.testing.env_contract import EnvContractReport, check_env_contract
from igym_core.testing.live_server import LiveServer, free_port
from igym_core.testing.participant import ScriptedParticipant
from igym_core.testing.state_hash import StateHashReport, check_state_hash
from igym_core.testing.support import make_test_app, read_records
from igym_core.testing.waiting import poll

__all__ = [
    "EnvContractReport",
    "LiveServer",
    "ScriptedParticipant",
    "SinkConformance",
    "StateHashReport",
    "check_env_contract",
    "check_state_hash",
    "free_port",
    "make_test_app",
    "poll",
    "read_records",
]


def __getattr__(name: str) -> Any:
    if name == "SinkConformance":  # imports pytest and hypothesis, which only tests have
        from igym_core.testing.sink_conformance import SinkConformance

        return SinkConformance
    raise AttributeError(f"module 'igym_core.testing' has no attribute {name!r}")
