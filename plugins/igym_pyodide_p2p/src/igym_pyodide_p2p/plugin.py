"""Hook implementations of igym-pyodide-p2p (and nothing else)."""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING, Any

from igym_core.plugins.assets import ClientAssets
from igym_core.plugins.markers import hookimpl
from igym_core.recruitment import Outcome

if TYPE_CHECKING:
    from igym_core.commands import Command
    from igym_core.runtime.interface import Runtime
    from igym_core.settings import Settings


# --- the pyodide runtime, server side (runtime.py, ingest.py) and `igym verify` (verify.py) -----
@hookimpl
def igym_register_runtimes() -> list[type[Runtime]]:
    from igym_pyodide_p2p.p2p_runtime import P2PRuntime
    from igym_pyodide_p2p.runtime import PyodideRuntime

    return [PyodideRuntime, P2PRuntime]


@hookimpl
def igym_register_commands() -> list[type[Command]]:
    from igym_pyodide_p2p.verify import VerifyCommand

    return [VerifyCommand]


# --- packages: Pyodide, micropip and the browser's wheels, served by igym (packages.py, index.py) ---


@hookimpl
def igym_register_routes(settings: Settings) -> list[Any]:
    # The manifest, Pyodide's files, the runtime's files and igym's package index, under
    # /plugins/pyodide_p2p/. Built on first use: a study without browser-run games costs nothing.
    # The P2P workers' relay sockets (p2p_relay_socket.py).
    from igym_pyodide_p2p.index import package_routes
    from igym_pyodide_p2p.p2p_relay_socket import relay_socket

    return [package_routes(), relay_socket]


# --- the pyodide runtime, page side (static/page/: runtime.js, worker.js, loader.js) -----------------
@hookimpl
def igym_register_client_assets() -> list[ClientAssets]:
    # No entry module at boot: a game page imports /plugins/pyodide/runtime.js (the runtime's client
    # module) when its scene runs under `pyodide`; the worker and the loader are beside it. Pyodide's
    # own files (static/pyodide/) are served only under content-hashed URLs (index.py).
    return [ClientAssets(plugin="pyodide", directory=files("igym_pyodide_p2p") / "static" / "page")]


# --- outcomes ----------------------------------------------------------------------------------------
@hookimpl
def igym_register_outcomes() -> list[Outcome]:
    # runtime_load_failed is core's (any browser-run runtime's); this one is the browser runtimes' own.
    return [
        Outcome(
            name="episodes_cut_short",
            platform="completed",
            meaning="A browser-run game's page ended episodes before the env did; they finished the study.",
        )
    ]
