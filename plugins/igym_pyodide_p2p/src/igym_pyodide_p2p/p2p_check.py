"""What ``igym check`` asks of a ``pyodide_p2p`` game scene (:func:`scene_problems`): two human seats,
an env that can roll back with a state within ``max_state_bytes``, ICE servers, a partner policy and
code the browser can run, and the browser's package rules."""

from __future__ import annotations

import json
from typing import Any

import structlog

from igym_pyodide_p2p.p2p_options import P2POptions, check_ice_servers
from igym_pyodide_p2p.runtime_base import package_checks, seat_problems

__all__ = ["ROLLBACK_METHODS", "scene_problems"]

log = structlog.get_logger("igym_pyodide_p2p.p2p_runtime")


def options_of(prepared: Any) -> P2POptions:
    """The scene's options (``P2PRuntime.options_of``)."""
    from igym_pyodide_p2p.p2p_runtime import P2PRuntime

    return P2PRuntime.options_of(prepared)


#: The methods a rollback env must have (the issue's contract; ``igym_core.testing`` checks them).
ROLLBACK_METHODS = ("get_state", "set_state", "state_hash")


def _state_size_problems(env: Any, options: P2POptions, notes: list[str]) -> list[str]:
    """The env's state after a reset, as JSON, against ``max_state_bytes`` (the pages send it to each
    other for a desync repair or a reloading partner)."""
    try:
        env.reset(seed=0)
        size = len(json.dumps(env.get_state(), separators=(",", ":"), allow_nan=False).encode())
    except Exception as exc:
        return [
            f"$.env_factory: get_state() after reset(seed=0) must be JSON (the pages send it to each other); "
            f"it is not: {type(exc).__name__}: {str(exc)[:200]}. Return plain lists, dicts, numbers and "
            "strings."
        ]
    notes.append(f"env state after reset: {size} bytes as JSON (max_state_bytes {options.max_state_bytes})")
    if size > options.max_state_bytes:
        return [
            f"$.runtime_options.max_state_bytes: the env's state after reset is {size} bytes as JSON, more "
            f"than max_state_bytes={options.max_state_bytes} (the largest state the pages send each other "
            "for a desync repair or a reloading partner). Raise max_state_bytes (up to 1048576) or make "
            "get_state() smaller."
        ]
    return []


def scene_problems(scene: Any, prepared: Any, settings: Any) -> tuple[list[str], list[str]]:
    """What keeps ``pyodide_p2p`` from running ``scene``, and the notes ``igym check`` prints."""
    problems = seat_problems(
        scene,
        prepared,
        runtime="pyodide_p2p",
        seats=2,
        advice="Each plays in their own browser: give the scene human_seats=(seat_a, seat_b), or use "
        "runtime='pyodide' for one person.",
    )
    notes: list[str] = []
    if prepared.bot_seats:
        problems.append(
            f"$.policies: the 'pyodide_p2p' runtime has no bot seats for now (this scene has "
            f"{sorted(prepared.bot_seats)}); every agent must be one of the two human seats. Use "
            "runtime='server' for games with bots."
        )
    options = options_of(prepared)
    env, _raw = prepared.make_env()
    try:
        missing = [m for m in ROLLBACK_METHODS if not callable(getattr(env, m, None))]
        if missing:
            unwrapped = getattr(env, "unwrapped", None)
            if unwrapped is not None:
                missing = [m for m in missing if not callable(getattr(unwrapped, m, None))]
        else:
            problems.extend(_state_size_problems(env, options, notes))
    finally:
        try:
            env.close()
        except Exception:
            log.debug("env_close_failed", scene_id=scene.scene_id)
    if missing:
        problems.append(
            f"$.env_factory: the 'pyodide_p2p' runtime rolls the env back and compares its state, so the "
            f"env needs get_state(), set_state(state) and state_hash(); it lacks {', '.join(missing)}. "
            "Add them (get_state returns the full state, set_state restores it exactly, state_hash hashes "
            "all of it) and check them with igym_core.testing.check_env_contract and "
            "igym_core.testing.check_state_hash."
        )
    if settings is not None and getattr(settings, "p2p_ice_servers", None):
        try:
            check_ice_servers(settings.p2p_ice_servers, "IGYM_P2P_ICE_SERVERS")
        except Exception as exc:
            problems.append(f"IGYM_P2P_ICE_SERVERS: {exc}")
    if scene.on_partner_left == "bot":
        from igym_pyodide_p2p.p2p_spec import partner_policy_problems

        problems.extend(partner_policy_problems(prepared))
    notes.append(
        f"runs peer to peer in both players' browsers: input delay {options.input_delay}, prediction "
        f"window {options.prediction_window} frames, state hash every {options.hash_every_frames} frames, "
        f"route {options.route} (relay after {options.connect_timeout_s:g} s without a direct connection), "
        f"partner lost after {options.partner_lost_s:g} s, reload grace {options.reload_grace_s:g} s, "
        f"on partner left: {scene.on_partner_left}"
    )
    try:
        from igym_pyodide_p2p.p2p_spec import p2p_spec_problems

        problems.extend(p2p_spec_problems(prepared, options))
    except ImportError:
        pass
    package_checks(scene, prepared, settings, problems, notes)
    return problems, notes
