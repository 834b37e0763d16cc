"""What the browser needs to know about a game scene: :class:`GameSpec`, plain JSON on the wire.

The server builds it from the prepared scene (``igym_pyodide_p2p.game_spec.browser_game_spec``)
and sends it to the page, which hands it to the worker; :meth:`GameSpec.from_json` reads it back
in the browser and checks it, so a malformed spec fails at load with a message naming the field.
Code is named by ``"module:attribute"`` references that the browser imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["BOT_KINDS", "BotSpec", "GameSpec", "SpecError"]

#: Bot kinds the browser can play. ``onnx`` bots act in JavaScript (igym_onnx's browser module);
#: the others in Python.
BOT_KINDS = ("random", "python", "constant", "onnx")


class SpecError(ValueError):
    """A game spec that the browser cannot use; the message names the field and what was found."""


def _need(data: Mapping[str, Any], name: str, types: type | tuple[type, ...], where: str) -> Any:
    if name not in data:
        raise SpecError(f"{where}: {name!r} is missing.")
    value = data[name]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        raise SpecError(f"{where}: {name!r} has the wrong type: {type(value).__name__} {value!r}.")
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _ref(value: Any, name: str, where: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or ":" not in value or value.startswith(":") or value.endswith(":"):
        raise SpecError(f"{where}: {name!r} must be a 'module:attribute' reference; got {value!r}.")
    return value


@attrs.frozen(kw_only=True)
class BotSpec:
    """One bot seat: which policy, and the seat options of ``igym_core``'s ``Bot``."""

    kind: str
    act_every: int = 1
    between: str = "repeat"
    target: str | None = None
    """``python``: the policy's ``module:attribute`` (a function, a class or an object with ``act``)."""
    n: int | None = None
    """``random``: the size of the seat's ``Discrete`` action space."""
    start: int = 0
    """``random``: the start of the seat's ``Discrete`` action space."""
    seed: int | None = None
    """``random``: the config's seed, for draws before the first episode."""
    action: Any = None
    """``constant``: the action."""
    onnx: Mapping[str, Any] | None = None
    """``onnx``: ``{"model_url", "config"}`` for igym_onnx's ``createPolicy`` (used in JavaScript)."""

    @classmethod
    def from_json(cls, data: Any, where: str) -> BotSpec:
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: expected a table; got {data!r}.")
        kind = _need(data, "kind", str, where)
        if kind not in BOT_KINDS:
            raise SpecError(
                f"{where}: bot kind {kind!r} cannot play in the browser; kinds: {', '.join(BOT_KINDS)}."
            )
        act_every = data.get("act_every", 1)
        if isinstance(act_every, bool) or not isinstance(act_every, int) or act_every < 1:
            raise SpecError(f"{where}: 'act_every' must be a whole number of at least 1; got {act_every!r}.")
        between = data.get("between", "repeat")
        if between not in ("repeat", "default"):
            raise SpecError(f"{where}: 'between' must be 'repeat' or 'default'; got {between!r}.")
        spec = cls(
            kind=kind,
            act_every=act_every,
            between=between,
            target=_ref(data.get("target"), "target", where) if kind == "python" else None,
            n=_need(data, "n", int, where) if kind == "random" else None,
            start=int(data.get("start", 0)),
            seed=data.get("seed"),
            action=data.get("action"),
            onnx=_need(data, "onnx", Mapping, where) if kind == "onnx" else None,
        )
        return spec


@attrs.frozen(kw_only=True)
class GameSpec:
    """A game scene as the browser runs it (one participant; the other seats are bots)."""

    scene_id: str
    env_factory: str
    env_kwargs: Mapping[str, Any]
    render_fn: str | None
    hud: str | None
    agents: tuple[str, ...]
    """The env's possible agents as strings, in the env's order."""
    human_seat: str
    action_mapping: Mapping[str, Any]
    default_action: Any
    input_mode: str
    fps: int
    num_episodes: int
    max_steps: int | None
    bots: Mapping[str, BotSpec]
    action_spaces: Mapping[str, tuple[int, int]]
    """Agent → ``(n, start)`` of its ``Discrete`` action space (bots' actions are checked against it)."""
    hash_every: int = 30
    """A state hash after the reset, every ``hash_every`` steps and at the episode's last step."""
    record_observations: bool = False
    batch_interval_ms: int = 500
    """The page sends the steps made so far this often (and at each episode's end)."""

    @classmethod
    def from_json(cls, data: Any) -> GameSpec:
        where = "the game spec"
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: expected a table; got {type(data).__name__}.")
        agents = tuple(str(a) for a in _need(data, "agents", (list, tuple), where))
        human = _need(data, "human_seat", str, where)
        if human not in agents:
            raise SpecError(f"{where}: human_seat {human!r} is not one of the agents {list(agents)}.")
        bots_data = data.get("bots", {})
        if not isinstance(bots_data, Mapping):
            raise SpecError(f"{where}: 'bots' must be a table of agent -> bot; got {bots_data!r}.")
        bots = {str(k): BotSpec.from_json(v, f"{where}: bot {k!r}") for k, v in bots_data.items()}
        for name in bots:
            if name not in agents or name == human:
                raise SpecError(f"{where}: bot seat {name!r} is not a non-human agent of {list(agents)}.")
        spaces: dict[str, tuple[int, int]] = {}
        for name, space in dict(data.get("action_spaces") or {}).items():
            if not (
                isinstance(space, (list, tuple))
                and len(space) == 2
                and all(isinstance(v, int) for v in space)
            ):
                raise SpecError(f"{where}: action_spaces[{name!r}] must be [n, start]; got {space!r}.")
            spaces[str(name)] = (int(space[0]), int(space[1]))
        input_mode = data.get("input_mode", "held")
        if input_mode not in ("held", "press"):
            raise SpecError(f"{where}: 'input_mode' must be 'held' or 'press'; got {input_mode!r}.")
        max_steps = data.get("max_steps")
        if max_steps is not None and (
            isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1
        ):
            raise SpecError(
                f"{where}: 'max_steps' must be a whole number of at least 1 or null; got {max_steps!r}."
            )
        hash_every = data.get("hash_every", 30)
        if isinstance(hash_every, bool) or not isinstance(hash_every, int) or hash_every < 1:
            raise SpecError(
                f"{where}: 'hash_every' must be a whole number of at least 1; got {hash_every!r}."
            )
        interval = data.get("batch_interval_ms", 500)
        if isinstance(interval, bool) or not isinstance(interval, int) or not 50 <= interval <= 1000:
            raise SpecError(f"{where}: 'batch_interval_ms' must be 50 to 1000; got {interval!r}.")
        return cls(
            scene_id=_need(data, "scene_id", str, where),
            env_factory=_ref(data.get("env_factory"), "env_factory", where) or "",
            env_kwargs=dict(data.get("env_kwargs") or {}),
            render_fn=_ref(data.get("render_fn"), "render_fn", where, optional=True),
            hud=_ref(data.get("hud"), "hud", where, optional=True),
            agents=agents,
            human_seat=human,
            action_mapping=dict(_need(data, "action_mapping", Mapping, where)),
            default_action=data.get("default_action"),
            input_mode=input_mode,
            fps=_need(data, "fps", int, where),
            num_episodes=_need(data, "num_episodes", int, where),
            max_steps=max_steps,
            bots=bots,
            action_spaces=spaces,
            hash_every=hash_every,
            record_observations=bool(data.get("record_observations", False)),
            batch_interval_ms=interval,
        )

    def js_bots(self) -> dict[str, Mapping[str, Any]]:
        """The seats whose bots act in JavaScript (ONNX): agent → ``{"model_url", "config"}``."""
        return {
            name: bot.onnx for name, bot in self.bots.items() if bot.kind == "onnx" and bot.onnx is not None
        }
