"""Browser code and files a plugin contributes."""

from __future__ import annotations

from importlib.resources.abc import Traversable
from pathlib import Path

import attrs

from igym_core.config.validators import slug

__all__ = ["ClientAssets"]


@attrs.frozen(kw_only=True)
class ClientAssets:
    """A directory served at ``/plugins/<plugin>/`` and, optionally, an ES module in it.

    The client imports ``entry`` at boot and calls its exported ``register(api)``.
    """

    plugin: str = attrs.field(validator=slug)
    directory: Path | Traversable
    entry: str | None = None
