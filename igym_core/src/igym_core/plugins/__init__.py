"""Plugin machinery: the hook markers, the per-app plugin manager and the registries."""

from igym_core.plugins.markers import hookimpl, hookspec

__all__ = ["hookimpl", "hookspec"]
