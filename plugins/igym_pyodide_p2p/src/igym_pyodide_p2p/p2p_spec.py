"""The browser's view of a ``pyodide_p2p`` game scene: the pyodide runtime's game spec
(:mod:`igym_pyodide_p2p.game_spec`) with both human seats and the partner policy each page plays
for a partner who left (``on_partner_left="bot"``)."""

from __future__ import annotations

import contextlib
from typing import Any

from igym_core.errors import ConfigError
from igym_pyodide_p2p.game_spec import bot_spec, build_spec, discrete_range

__all__ = ["p2p_game_spec", "p2p_spec_problems", "partner_policy_problems"]


def _partner_specs(prepared: Any, problems: list[str]) -> dict[str, Any]:
    """Human seat → the browser spec of the policy that plays it once its player left."""
    partner = getattr(prepared, "partner", None)
    if partner is None:
        problems.append(
            "$.partner_policy: on_partner_left='bot' needs a partner_policy that can play in the browser."
        )
        return {}
    config, bot = partner
    env, _raw = prepared.make_env()
    try:
        spaces = {str(agent): discrete_range(env.action_space(agent)) for agent in prepared.agents}
    finally:
        with contextlib.suppress(Exception):
            env.close()
    specs: dict[str, Any] = {}
    for seat in prepared.human_seats:
        found: list[str] = []
        spec = bot_spec(seat, config, bot, spaces.get(seat), prepared.base_dir, found)
        problems.extend(
            p.replace(f"$.policies.{seat}", "$.partner_policy")
            + " (on_partner_left='bot' plays it in the page)"
            for p in found
        )
        if spec is not None and spec.get("kind") == "onnx":
            # The P2P page's worker loads no onnxruntime-web: refuse here rather than at the moment
            # a partner leaves mid-game.
            problems.append(
                "$.partner_policy: a pyodide_p2p page cannot play an ONNX policy for a partner who left "
                "(its worker loads no ONNX runtime). Use a Python policy (for example "
                "'igym_slime.bots:scripted_policy'), 'random', or on_partner_left='end'."
            )
            break
        if spec is not None:
            specs[seat] = spec
    return specs


def partner_policy_problems(prepared: Any) -> list[str]:
    """Why the scene's ``partner_policy`` cannot play a seat in the browser (empty: it can)."""
    problems: list[str] = []
    _partner_specs(prepared, problems)
    return sorted(set(problems))


def p2p_spec_problems(prepared: Any, options: Any) -> list[str]:
    """What of the scene (renderer, code by import path) the browser cannot run, with the scene's
    options (``P2POptions``: the hash and batch intervals the spec is built with)."""
    _spec, problems = build_spec(prepared, options.hash_every_frames, options.batch_interval_ms)
    return problems


def p2p_game_spec(prepared: Any, options: Any) -> dict[str, Any]:
    """The spec both pages' workers run; msgpack-ready. Raises :class:`ConfigError` for a scene
    that cannot run in the browser (``igym check`` lists the same problems)."""
    spec, problems = build_spec(prepared, options.hash_every_frames, options.batch_interval_ms)
    partners: dict[str, Any] = {}
    if prepared.scene.on_partner_left == "bot":
        partners = _partner_specs(prepared, problems)
    if problems:
        raise ConfigError(
            [f"scene {prepared.scene.scene_id!r}: {p}" for p in problems],
            title=f"Game scene {prepared.scene.scene_id!r} cannot run in the browser",
        )
    spec["human_seat"] = None
    spec["human_seats"] = list(prepared.human_seats)
    spec["partner_policies"] = partners
    spec["on_partner_left"] = prepared.scene.on_partner_left
    return spec
