"""Hook implementations of igym-unity (and nothing else)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from igym_core.commands import Command
from igym_core.plugins.assets import ClientAssets
from igym_core.plugins.markers import hookimpl
from igym_core.recruitment import Outcome
from igym_core.runtime.interface import Runtime
from igym_core.scenes.interface import SceneConfig


@hookimpl
def igym_register_scene_types() -> list[type[SceneConfig]]:
    from igym_unity.config import UnityScene

    return [UnityScene]


@hookimpl
def igym_register_runtimes() -> list[type[Runtime]]:
    from igym_unity.runtime import UnityRuntime

    return [UnityRuntime]


@hookimpl
def igym_register_routes(settings: Any) -> list[Any]:
    from igym_unity.serving import unity_file, unity_streaming_asset

    return [unity_file, unity_streaming_asset]


@hookimpl
def igym_register_client_assets() -> list[ClientAssets]:
    # The entry registers the "unity" scene renderer in the page's registry at boot.
    return [ClientAssets(plugin="unity", directory=files("igym_unity") / "static", entry="igym_unity.js")]


@hookimpl
def igym_register_commands() -> list[type[Command]]:
    from igym_unity.command import UnityCommand

    return [UnityCommand]


@hookimpl
def igym_register_outcomes() -> list[Outcome]:
    from igym_unity.config import UNITY_OUTCOMES

    return list(UNITY_OUTCOMES)
