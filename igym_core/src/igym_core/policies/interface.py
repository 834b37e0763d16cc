"""Policies fill the seats that no human takes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol

__all__ = ["Policy", "PolicyLoader"]


class Policy(Protocol):
    """Chooses an action for one seat from that seat's observation."""

    def act(self, observation: Any) -> Any: ...


class PolicyLoader(ABC):
    """Builds policies of one ``kind`` (``random``, ``onnx``, …) from a spec."""

    kind: ClassVar[str]

    @abstractmethod
    def load(self, spec: Any, *, action_space: Any, observation_space: Any) -> Policy:
        """Return a policy for ``spec``."""
