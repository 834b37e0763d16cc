"""The runtime interface: where and how a game scene's environment steps."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

__all__ = ["Runtime"]


class Runtime(ABC):
    """Runs game scenes: on the server at a tick rate, in the browser, or peer to peer."""

    kind: ClassVar[str]

    @abstractmethod
    async def run(self, game: Any) -> None:
        """Run ``game`` to its end."""
