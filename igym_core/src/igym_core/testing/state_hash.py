"""``check_state_hash``: is an env's state complete enough for peer-to-peer rollback?

A ``pyodide_p2p`` game saves and restores the env every frame and compares ``state_hash()`` between
the two peers to find desyncs. That works only if ``get_state``/``set_state`` round-trip the whole
state (also through JSON, which is how a state travels to a partner) and the hash covers every part
of it: a field the hash skips is a desync nobody notices. Use it next to ``check_env_contract``::

    from igym_core.testing import check_state_hash

    def test_my_env_can_roll_back():
        check_state_hash(make_my_env)

It plays a few seeded steps, then checks (1) ``set_state(get_state())`` on a fresh env gives the same
``state_hash()`` and the same ``get_state()``, also after a JSON round trip when the state is JSON-able,
and steps on identically; (2) changing any one leaf of ``get_state()`` (a number, a bool, a string, an
item of a list, at any depth), loading that into an env, changes ``state_hash()``. Every violation is
collected into one :class:`~igym_core.errors.EnvContractError` naming the fields (``$.ball[2]``).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from igym_core.errors import EnvContractError

__all__ = ["StateHashReport", "check_state_hash"]

_METHODS = ("get_state", "set_state", "state_hash")


@attrs.frozen(kw_only=True)
class StateHashReport:
    """What :func:`check_state_hash` checked in an env that passed."""

    leaves_checked: int
    """Leaves of the state changed one at a time (each changed the hash)."""
    refused: tuple[str, ...]
    """Leaves whose changed value ``set_state`` refused (raised): they cannot go unhashed."""
    json_round_trip: bool
    """The state is JSON-able and round-tripped through JSON."""


def _leaves(value: Any, path: str) -> Iterator[tuple[str, tuple[Any, ...], Any]]:
    """``(path text, key path, leaf)`` of every leaf of a state."""
    yield from _walk(value, path, ())


def _walk(value: Any, text: str, keys: tuple[Any, ...]) -> Iterator[tuple[str, tuple[Any, ...], Any]]:
    if isinstance(value, Mapping):
        for key in value:
            yield from _walk(value[key], f"{text}.{key}", (*keys, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, f"{text}[{index}]", (*keys, index))
    else:
        yield text, keys, value


def _changed(leaf: Any) -> tuple[bool, Any]:
    """A different value of the same kind, or ``(False, None)`` for a leaf we cannot change."""
    if isinstance(leaf, bool):
        return True, not leaf
    if isinstance(leaf, int):
        return True, leaf + 1
    if isinstance(leaf, float):
        if not math.isfinite(leaf):
            return True, 0.0
        return True, leaf + max(0.5, abs(leaf) * 0.25)
    if isinstance(leaf, str):
        return True, leaf + "x"
    if leaf is None:
        return True, 1
    return False, None


def _replace(state: Any, keys: tuple[Any, ...], new: Any) -> Any:
    """A deep copy of ``state`` with the leaf at ``keys`` replaced (tuples stay tuples)."""
    if not keys:
        return new
    head, rest = keys[0], keys[1:]
    if isinstance(state, Mapping):
        out = {k: (v if k != head else _replace(v, rest, new)) for k, v in state.items()}
        return out
    items = [(_replace(v, rest, new) if i == head else v) for i, v in enumerate(state)]
    return tuple(items) if isinstance(state, tuple) else items


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_state_hash(
    env_factory: Callable[[], Any],
    *,
    seed: int = 0,
    steps: int = 25,
    actions: Callable[[int, str], Any] | None = None,
    max_leaves: int = 2000,
) -> StateHashReport:
    """Check that the env's state round-trips and that its hash covers all of it.

    Args:
        env_factory: builds a fresh PettingZoo-style parallel env with ``get_state``,
            ``set_state`` and ``state_hash`` on every call.
        seed: the reset seed.
        steps: steps played before the state is taken (so that it is not the initial state).
        actions: ``actions(step, agent)`` → the action to play; default: the agent's action space's
            ``sample()`` (seeded), or 0 without spaces.
        max_leaves: at most this many leaves are changed (the first ones, in ``get_state`` order).

    Raises:
        EnvContractError: listing each problem (a missing method, a round trip that loses
            something, each field the hash does not cover).
    """
    env = env_factory()
    missing = [name for name in _METHODS if not callable(getattr(env, name, None))]
    if missing:
        raise EnvContractError(
            f"The env lacks {', '.join(missing)}; a P2P (rollback) game needs get_state() (the full "
            "state, JSON-able), set_state(state) and state_hash() (a hash of all of get_state())."
        )
    choose = actions or _sampler(env, seed)
    env.reset(seed=seed)
    played: list[dict[str, Any]] = []
    for step in range(steps):
        if not env.agents:
            break
        chosen = {agent: choose(step, agent) for agent in env.agents}
        played.append(chosen)
        env.step(chosen)
    state = env.get_state()
    expected_hash = env.state_hash()
    problems: list[str] = []

    def load(candidate: Any, where: str) -> Any | None:
        other = env_factory()
        other.reset(seed=seed + 1)
        try:
            other.set_state(candidate)
        except Exception as exc:
            problems.append(f"set_state({where}) raised {type(exc).__name__}: {exc}.")
            return None
        return other

    restored = load(copy.deepcopy(state), "a copy of get_state()")
    if restored is not None:
        differing = _differences(_plain(state), _plain(restored.get_state()), "$")
        if restored.state_hash() != expected_hash or differing:
            named = f" (differing: {', '.join(differing[:10])})" if differing else ""
            problems.append(
                "set_state(get_state()) on a fresh env gave another state_hash() or get_state()"
                f"{named}: the state misses something the hash covers, or set_state does not "
                "restore it all."
            )
        elif env.agents:
            follow = {agent: choose(steps, agent) for agent in env.agents}
            env.step(copy.deepcopy(follow))
            restored.step(copy.deepcopy(follow))
            if restored.state_hash() != env.state_hash():
                problems.append(
                    "after set_state(get_state()) the next step gave another state_hash() than the "
                    "original env's: get_state() misses part of the state (a random generator, a counter)."
                )
            env.set_state(copy.deepcopy(state))
    json_ok = False
    try:
        text = json.dumps(state, allow_nan=False)
    except (TypeError, ValueError):
        text = None
    if text is not None:
        json_ok = True
        via_json = load(json.loads(text), "get_state() after a JSON round trip")
        if via_json is not None and via_json.state_hash() != expected_hash:
            json_ok = False
            problems.append(
                "set_state(json.loads(json.dumps(get_state()))) gave another state_hash(): after a JSON "
                "round trip (lists for tuples, str keys) the state does not load the same; accept both "
                "forms in set_state, or hash a canonical form."
            )
    checked = 0
    refused: list[str] = []
    uncovered: list[str] = []
    ignored: list[str] = []
    for number, (where, keys, leaf) in enumerate(_leaves(state, "$")):
        if number >= max_leaves:
            break
        ok, new = _changed(leaf)
        if not ok:
            continue
        other = env_factory()
        other.reset(seed=seed)
        try:
            other.set_state(_replace(copy.deepcopy(state), keys, new))
        except Exception:
            refused.append(where)
            continue
        checked += 1
        if other.state_hash() != expected_hash:
            continue
        try:
            applied = _at(_plain(other.get_state()), keys) == _plain(new)
        except (KeyError, IndexError, TypeError):
            applied = False
        if applied:
            uncovered.append(f"{where} (changed {_short(leaf)} to {_short(new)})")
        else:
            ignored.append(where)
    if uncovered:
        problems.append(
            "state_hash() did not change when these fields of get_state() changed, so a desync in "
            f"them goes unnoticed: {'; '.join(uncovered)}. Hash the whole of get_state() (e.g. sha256 "
            "of json.dumps(get_state(), sort_keys=True)), and make set_state restore every field."
        )
    if ignored:
        problems.append(
            f"set_state() did not restore these fields of get_state(): {', '.join(ignored)} (after "
            "set_state(state) with the field changed, get_state() still had the old value). Make "
            "set_state restore every field get_state returns."
        )
    if problems:
        lines = "\n".join(f"  - {line}" for line in problems)
        raise EnvContractError(
            f"The env's state is not fit for rollback ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n{lines}"
        )
    return StateHashReport(leaves_checked=checked, refused=tuple(refused), json_round_trip=json_ok)


def _at(state: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        state = state[key]
    return state


def _differences(left: Any, right: Any, path: str) -> list[str]:
    """Paths where two plain states differ."""
    if isinstance(left, dict) and isinstance(right, dict):
        out: list[str] = []
        for key in list(left) + [k for k in right if k not in left]:
            if key not in left or key not in right:
                out.append(f"{path}.{key}")
            else:
                out.extend(_differences(left[key], right[key], f"{path}.{key}"))
        return out
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [
            d
            for i, (x, y) in enumerate(zip(left, right, strict=True))
            for d in _differences(x, y, f"{path}[{i}]")
        ]
    return [] if left == right else [path]


def _plain(value: Any) -> Any:
    """Tuples as lists, for comparing states."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _sampler(env: Any, seed: int) -> Callable[[int, str], Any]:
    spaces: dict[str, Any] = {}

    def choose(step: int, agent: str) -> Any:
        space = spaces.get(agent)
        if space is None:
            getter = getattr(env, "action_space", None)
            if not callable(getter):
                return 0
            space = getter(agent)
            space.seed(seed + len(spaces))
            spaces[agent] = space
        return space.sample()

    return choose
