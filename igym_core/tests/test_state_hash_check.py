"""``igym_core.testing.check_state_hash``: a state that round-trips (also through JSON) and a hash
that covers every leaf pass; an env whose hash skips a field, whose set_state drops a field, or
whose state loses its tuples' meaning in JSON fails with a message naming the problem."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pytest

from igym_core.errors import EnvContractError
from igym_core.testing import check_state_hash
from igym_slime.env import make_env


class Walker:
    """A small env with nested state: numbers, bools, strings, lists of lists, None."""

    possible_agents = ["a", "b"]

    def __init__(self) -> None:
        self.agents: list[str] = []
        self.state: dict[str, Any] = {}

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        self.agents = list(self.possible_agents)
        self.state = {
            "pos": [[0, 0], [3, 1]],
            "speed": 0.5,
            "alive": True,
            "label": "start",
            "last": None,
            "meta": {"round": 1, "seed": seed or 0},
        }
        return {a: 0 for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: Mapping[str, Any]) -> tuple[Any, ...]:
        for index, agent in enumerate(self.possible_agents):
            self.state["pos"][index][0] += int(actions.get(agent, 0))
        self.state["meta"]["round"] += 1
        self.state["label"] = f"r{self.state['meta']['round']}"
        flags = {a: False for a in self.agents}
        return {a: 0 for a in self.agents}, {a: 0.0 for a in self.agents}, flags, dict(flags), {}

    def get_state(self) -> dict[str, Any]:
        return json.loads(json.dumps({"agents": self.agents, **self.state}))

    def set_state(self, state: Mapping[str, Any]) -> None:
        state = json.loads(json.dumps(state))
        self.agents = state.pop("agents")
        self.state = state

    def state_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.get_state(), sort_keys=True).encode()).hexdigest()


def _actions(step: int, agent: str) -> int:
    return (step + len(agent)) % 3


class HashSkipsNestedField(Walker):
    def state_hash(self) -> str:
        state = self.get_state()
        del state["meta"]["round"]
        state["pos"][1][1] = 0
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


class SetStateDropsLabel(Walker):
    def set_state(self, state: Mapping[str, Any]) -> None:
        label = self.state.get("label", "start")
        super().set_state(state)
        self.state["label"] = label


class TupleState(Walker):
    """Keeps a tuple whose JSON form (a list) set_state refuses to treat the same."""

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["shape"] = (2, 3)
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        state = dict(state)
        shape = state.pop("shape")
        super().set_state(state)
        self.state["kind"] = "tuple" if isinstance(shape, tuple) else "list"

    def state_hash(self) -> str:
        return hashlib.sha256(repr(sorted(self.get_state().items(), key=str)).encode()).hexdigest()


def test_the_slime_env_passes() -> None:
    report = check_state_hash(lambda: make_env(lives=2, max_steps=300))
    assert report.json_round_trip
    assert report.leaves_checked >= 20  # positions, velocities, lives, counters, rng, agents
    assert report.refused == ("$.version",)  # set_state refuses a state of another version


def test_a_small_env_with_nested_state_passes() -> None:
    report = check_state_hash(Walker, actions=_actions)
    assert report.leaves_checked == 10 + 2  # every leaf, the two agent names included


def test_a_hash_that_skips_fields_fails_naming_each_field() -> None:
    with pytest.raises(EnvContractError) as caught:
        check_state_hash(HashSkipsNestedField, actions=_actions)
    message = str(caught.value)
    assert "$.meta.round" in message and "$.pos[1][1]" in message
    assert "$.speed" not in message and "$.pos[0][0]" not in message
    assert "Hash the whole of get_state()" in message


def test_a_set_state_that_drops_a_field_fails() -> None:
    with pytest.raises(EnvContractError) as caught:
        check_state_hash(SetStateDropsLabel, actions=_actions)
    message = str(caught.value)
    assert "differing: $.label" in message
    assert "did not change" not in message  # not blamed on the hash


def test_a_state_that_does_not_survive_json_fails() -> None:
    with pytest.raises(EnvContractError, match="JSON round trip"):
        check_state_hash(TupleState, actions=_actions)


def test_an_env_without_the_methods_is_told_which_are_missing() -> None:
    class NoHash(Walker):
        state_hash = None  # type: ignore[assignment]

    with pytest.raises(EnvContractError, match="lacks state_hash"):
        check_state_hash(NoHash)
