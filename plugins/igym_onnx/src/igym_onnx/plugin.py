"""Hook implementations of igym-onnx (and nothing else)."""

from __future__ import annotations

from importlib.resources import files

from igym_core.commands import Command
from igym_core.plugins.assets import ClientAssets
from igym_core.plugins.markers import hookimpl
from igym_core.policies.interface import PolicyLoader


@hookimpl
def igym_register_policy_loaders() -> list[type[PolicyLoader]]:
    from igym_onnx.policy import OnnxPolicyLoader

    return [OnnxPolicyLoader]


@hookimpl
def igym_register_client_assets() -> list[ClientAssets]:
    # No entry module: participant pages do not load ONNX code at boot; the in-browser runtime
    # imports /plugins/onnx/igym_onnx.js when a game needs it.
    return [ClientAssets(plugin="onnx", directory=files("igym_onnx") / "static")]


@hookimpl
def igym_register_commands() -> list[type[Command]]:
    from igym_onnx.command import OnnxCommand

    return [OnnxCommand]
