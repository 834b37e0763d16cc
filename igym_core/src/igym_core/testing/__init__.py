"""Public helpers for testing igym and igym plugins.

- :class:`ScriptedParticipant`: a participant driven over the WebSocket (Litestar's test client).
- :func:`make_test_app`: an app for one experiment with a temporary data directory.
- :func:`read_records`: the records a JSONL sink wrote.
- :func:`check_env_contract`: does an environment meet the environment contract, determinism included?
- The pytest plugin (``igym_core.testing.pytest_plugin``, loaded automatically through the
  ``pytest11`` entry point) provides the fixtures ``igym_pm``, ``register_plugin``, ``igym_app``,
  ``igym_client`` and ``participant``.
"""

from igym_core.testing.env_contract import EnvContractReport, check_env_contract
from igym_core.testing.participant import ScriptedParticipant
from igym_core.testing.support import make_test_app, read_records

__all__ = ["EnvContractReport", "ScriptedParticipant", "check_env_contract", "make_test_app", "read_records"]
