"""Hook implementations of igym-pyodide-p2p (and nothing else)."""

from __future__ import annotations

from importlib.resources import files

from igym_core.plugins.assets import ClientAssets
from igym_core.plugins.markers import hookimpl


@hookimpl
def igym_register_client_assets() -> list[ClientAssets]:
    # No entry module at boot: a game page imports /plugins/pyodide/runtime.js (the runtime's client
    # module) when its scene runs under `pyodide`; the worker and the loader are beside it.
    return [ClientAssets(plugin="pyodide", directory=files("igym_pyodide_p2p") / "static")]
