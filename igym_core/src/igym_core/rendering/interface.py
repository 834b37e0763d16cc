"""The renderer interface: turns an environment's state into data the browser draws."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

__all__ = ["Renderer"]


class Renderer(ABC):
    """Turns an environment into a render payload (object contexts or an image) for one frame."""

    kind: ClassVar[str]

    @abstractmethod
    def render(self, env: Any) -> Any:
        """Return this frame's payload for ``env``."""
