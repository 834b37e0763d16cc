"""Policies: the built-in random, Python and constant kinds, specs, loading, and the converter union."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import attrs
import gymnasium
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import igym_core.builtin.policies_basic as policies_basic
from igym_core import hookimpl
from igym_core.builtin.policies_basic import (
    ConstantPolicy,
    FunctionPolicy,
    PythonPolicy,
    RandomActions,
    RandomPolicy,
)
from igym_core.config.converter import make_converter, structure_or_raise
from igym_core.errors import ConfigError, PluginError, PluginNotFoundError
from igym_core.plugins.manager import BUILTIN_PLUGINS, create_plugin_manager
from igym_core.policies.interface import Policy, PolicyConfig, PolicyLoader, reset_policy
from igym_core.policies.spec import load_policy, policy_config_from


def _manager(**kwargs: Any) -> Any:
    extra = [] if "policies_basic" in BUILTIN_PLUGINS else [policies_basic]
    return create_plugin_manager(autoload=False, extra=[*extra, *kwargs.pop("extra", [])], **kwargs)


@pytest.fixture(scope="module")
def registry() -> Any:
    return _manager().registry


@pytest.fixture(scope="module")
def converter(registry: Any) -> Any:
    return make_converter(registry)


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("_igym_file_", "igym_test_")):
            del sys.modules[name]


SPACES = {
    "discrete": gymnasium.spaces.Discrete(5, start=2),
    "box": gymnasium.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32),
    "multi_discrete": gymnasium.spaces.MultiDiscrete([3, 4, 2]),
}
OBSERVATION_SPACE = gymnasium.spaces.Box(0.0, 1.0, shape=(2,))


def _load(config: PolicyConfig, registry: Any, action_space: Any = SPACES["discrete"], **kwargs: Any) -> Any:
    return load_policy(
        config,
        registry,
        agent=kwargs.pop("agent", "agent_1"),
        action_space=action_space,
        observation_space=OBSERVATION_SPACE,
        **kwargs,
    )


def _actions(policy: Any, n: int = 25) -> list[Any]:
    return [policy.act(None) for _ in range(n)]


def _same(left: list[Any], right: list[Any]) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(left, right, strict=True))


# --- random ------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(space_name=st.sampled_from(sorted(SPACES)), seed=st.integers(0, 2**31 - 1))
def test_random_policy_is_reproduced_by_its_seed_and_acts_within_the_space(
    registry: Any, space_name: str, seed: int
) -> None:
    space = SPACES[space_name]
    first, second = _load(RandomPolicy(), registry, space), _load(RandomPolicy(), registry, space)
    first.reset(seed=seed)
    actions = _actions(first)
    assert all(space.contains(a) for a in actions)
    second.reset(seed=seed)
    assert _same(actions, _actions(second))  # another bot with the recorded seed
    first.reset(seed=seed)
    assert _same(actions, _actions(first))  # the same bot, re-seeded
    first.reset(seed=seed + 1)
    assert not _same(actions, _actions(first))  # 25 draws never all coincide


def test_random_policy_seed_applies_before_the_first_reset(registry: Any) -> None:
    space = SPACES["box"]
    first = _actions(_load(RandomPolicy(seed=7), registry, space))
    assert _same(first, _actions(_load(RandomPolicy(seed=7), registry, space)))


def test_random_policy_leaves_the_envs_space_alone(registry: Any) -> None:
    space = gymnasium.spaces.Discrete(1000)
    space.seed(1)
    expected = [space.sample() for _ in range(10)]
    space.seed(1)
    policy = _load(RandomPolicy(), registry, space)
    policy.reset(seed=3)
    _actions(policy)
    assert [space.sample() for _ in range(10)] == expected


def test_random_policy_draws_only_allowed_actions_when_given_a_mask(registry: Any) -> None:
    policy = _load(RandomPolicy(seed=0), registry, gymnasium.spaces.Discrete(4))
    observation = {"observation": np.zeros(3), "action_mask": np.array([0, 0, 1, 0], dtype=np.int8)}
    assert {int(policy.act(observation)) for _ in range(30)} == {2}
    assert isinstance(policy, RandomActions) and isinstance(policy, Policy)


# --- python ------------------------------------------------------------------------------------


def greedy(observation: Any) -> int:
    return int(np.argmax(observation))


class SpaceAwareBot:
    """Takes only the arguments it names; re-seeds on reset."""

    def __init__(self, agent: str, action_space: Any) -> None:
        self.agent = agent
        self.action_space = action_space
        self.seeds: list[int] = []

    def act(self, observation: Any) -> Any:
        return self.action_space.start

    def reset(self, *, seed: int) -> None:
        self.seeds.append(seed)


class EverythingBot:
    def __init__(self, **context: Any) -> None:
        self.context = context

    def act(self, observation: Any) -> int:
        return 0


class PlainBot:
    def act(self, observation: Any) -> int:
        return 1


SHARED_BOT = PlainBot()


def test_a_function_is_wrapped(registry: Any) -> None:
    policy = _load(PythonPolicy(target=greedy), registry)
    assert isinstance(policy, FunctionPolicy) and policy.function is greedy
    assert policy.act(np.array([0.1, 0.9, 0.3])) == 1
    assert not hasattr(policy, "reset")
    reset_policy(policy, seed=1)  # nothing to reset: no error


def test_a_class_gets_the_keyword_arguments_it_accepts(registry: Any) -> None:
    space = SPACES["discrete"]
    bot = _load(PythonPolicy(target=SpaceAwareBot), registry, space, agent="player_1")
    assert isinstance(bot, SpaceAwareBot)
    assert bot.agent == "player_1" and bot.action_space is space and bot.act(None) == 2
    reset_policy(bot, seed=11)
    assert bot.seeds == [11]
    everything = _load(PythonPolicy(target=EverythingBot), registry, space)
    assert everything.context == {
        "agent": "agent_1",
        "action_space": space,
        "observation_space": OBSERVATION_SPACE,
    }
    assert isinstance(_load(PythonPolicy(target=PlainBot), registry), PlainBot)
    # One instance per seat.
    config = PythonPolicy(target=PlainBot)
    assert _load(config, registry) is not _load(config, registry)


def test_an_object_with_act_is_used_as_it_is(registry: Any) -> None:
    assert _load(PythonPolicy(target=SHARED_BOT), registry) is SHARED_BOT


def test_targets_can_be_named_by_module_or_file(
    registry: Any, tmp_path: Path, isolated_imports: None
) -> None:
    (tmp_path / "igym_test_bots.py").write_text(
        "class Bot:\n"
        "    def __init__(self, action_space): self.space = action_space\n"
        "    def act(self, observation): return self.space.n - 1\n"
        "def always_two(observation): return 2\n"
        "shared = Bot(action_space=None)\n"
    )
    sys.path.insert(0, str(tmp_path))
    assert _load(PythonPolicy(target="igym_test_bots:Bot"), registry).act(None) == 4
    by_file = _load(PythonPolicy(target="igym_test_bots.py:always_two"), registry, base_dir=tmp_path)
    assert isinstance(by_file, FunctionPolicy) and by_file.act(None) == 2
    module = sys.modules["igym_test_bots"]
    assert _load(PythonPolicy(target="igym_test_bots:shared"), registry) is module.shared


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "igym_test_missing_bots:greedy",
            r"the python policy for 'agent_1': no module named 'igym_test_missing_bots'",
        ),
        ("bots.py:SIZE", r"'bots\.py:SIZE' is of type int; expected a function observation -> action"),
        (
            "bots.py:NeedsMore",
            r"NeedsMore is instantiated with keyword arguments chosen from agent, action_space, "
            r"observation_space, but its __init__ also requires difficulty",
        ),
        ("bots.py:NoAct", r"instances of .*NoAct have no act\(observation\) method"),
        ("bots.py:Exploding", r"Exploding\(agent=\.\.\.\) raised RuntimeError: no model file"),
        (
            "bots.py:OldReset",
            r"OldReset\.reset is called at every episode start as reset\(seed=\.\.\.\), but it takes no seed",
        ),
    ],
)
def test_bad_python_targets_say_how_to_fix_them(
    registry: Any, tmp_path: Path, isolated_imports: None, target: str, expected: str
) -> None:
    (tmp_path / "bots.py").write_text(
        "SIZE = 3\n"
        "class NeedsMore:\n"
        "    def __init__(self, agent, difficulty): pass\n"
        "    def act(self, observation): return 0\n"
        "class NoAct:\n"
        "    pass\n"
        "class Exploding:\n"
        "    def __init__(self, agent): raise RuntimeError('no model file')\n"
        "class OldReset:\n"
        "    def act(self, observation): return 0\n"
        "    def reset(self): pass\n"
    )
    with pytest.raises(ConfigError, match=expected):
        _load(PythonPolicy(target=target), registry, base_dir=tmp_path)


@pytest.mark.parametrize("target", ["no_colon", ":attr", "module:", 3, None])
def test_python_policy_config_rejects_what_cannot_be_a_target(target: Any) -> None:
    with pytest.raises(ValueError, match="target"):
        PythonPolicy(target=target)


# --- constant ----------------------------------------------------------------------------------


def test_constant_policy_returns_its_action_in_the_spaces_form(registry: Any) -> None:
    assert _load(ConstantPolicy(action=3), registry).act(None) == 3
    policy = _load(ConstantPolicy(action=[0.5, 0, -1]), registry, SPACES["box"])
    action = policy.act(None)
    assert action.dtype == np.float32 and np.array_equal(action, [0.5, 0, -1])
    assert policy.act(None) is action
    with pytest.raises(ValueError, match="read-only"):
        action[0] = 1.0  # the env cannot change the action the bot repeats


@pytest.mark.parametrize(
    ("action", "space"),
    [
        (0, "discrete"),
        (7, "discrete"),
        ([2.0, 0, 0], "box"),
        ([0, 0], "multi_discrete"),
        ("left", "discrete"),
    ],
)
def test_constant_policy_rejects_actions_outside_the_space(registry: Any, action: Any, space: str) -> None:
    expected = r"The constant policy for 'agent_1' has action .* not in the seat's action space"
    with pytest.raises(ConfigError, match=expected):
        _load(ConstantPolicy(action=action), registry, SPACES[space])


# --- policy_config_from -------------------------------------------------------------------------


def test_specs_of_each_form_become_configs(registry: Any, converter: Any) -> None:
    config = ConstantPolicy(action=1)
    assert policy_config_from(config, registry) is config
    assert policy_config_from("random", registry) == RandomPolicy()
    assert policy_config_from(RandomPolicy, registry) == RandomPolicy()
    assert policy_config_from("my_study.bots:greedy", registry) == PythonPolicy(target="my_study.bots:greedy")
    assert policy_config_from("bots.py:Greedy", registry) == PythonPolicy(target="bots.py:Greedy")
    assert policy_config_from(greedy, registry) == PythonPolicy(target=greedy)
    assert policy_config_from(SpaceAwareBot, registry) == PythonPolicy(target=SpaceAwareBot)
    assert policy_config_from(SHARED_BOT, registry) == PythonPolicy(target=SHARED_BOT)
    tables = [
        ({"kind": "constant", "action": 2}, ConstantPolicy(action=2)),
        ({"kind": "random", "seed": 4}, RandomPolicy(seed=4)),
        ({"kind": "python", "target": "m:f"}, PythonPolicy(target="m:f")),
    ]
    for conv in (None, converter):
        for table, expected in tables:
            assert policy_config_from(table, registry, converter=conv) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("randm", r"Unknown policy 'randm'; expected .*policy kind \('constant', 'python', 'random'"),
        (
            "constant",
            r"The policy 'constant' needs action; write ConstantPolicy\(action=\.\.\.\) or a table "
            r"\{kind = 'constant', action = \.\.\.\}",
        ),
        (ConstantPolicy, r"The policy ConstantPolicy needs action"),
        (3, r"A policy must be a policy config such as RandomPolicy\(\), .*; got int 3"),
        ({"action": 1}, r"A policy table needs a 'kind' key naming the policy type \(constant, python"),
        (
            {"kind": "onnx", "path": "m.onnx"},
            r"Unknown policy kind 'onnx'; installed: constant, python, random.*install the plugin",
        ),
        ({"kind": "constant"}, r"policy\.action: required field missing; add it"),
        ({"kind": "random", "sed": 1}, r"unknown field\(s\) sed for RandomPolicy"),
        ({"kind": "python", "target": "nocolon"}, r"policy\.target: expected 'package\.module:attribute'"),
    ],
)
def test_bad_specs_say_how_to_fix_them(registry: Any, converter: Any, value: Any, expected: str) -> None:
    for conv in (None, converter):
        with pytest.raises(ConfigError, match=expected):
            policy_config_from(value, registry, converter=conv)


def test_python_specs_need_the_python_kind(registry: Any) -> None:
    blocked = _manager(blocked=["igym.policies_basic"], extra=[BlockedFallbackPlugin()]).registry
    assert "python" not in blocked.policy_loaders
    with pytest.raises(ConfigError, match=r"no policy loader of kind 'python' is installed.*Unblock it"):
        policy_config_from("my_study.bots:greedy", blocked)


# --- the converter ------------------------------------------------------------------------------


def test_policy_tables_round_trip_through_the_converter(converter: Any) -> None:
    config = structure_or_raise(converter, {"kind": "random"}, PolicyConfig, title="bad")
    assert config == RandomPolicy()
    data = converter.unstructure(config, unstructure_as=PolicyConfig)
    assert data == {"kind": "random", "seed": None}
    assert converter.structure(data, PolicyConfig) == config
    for table in ({"kind": "constant", "action": [1, 2]}, {"kind": "python", "target": "m.bots:greedy"}):
        config = converter.structure(table, PolicyConfig)
        assert converter.unstructure(config, unstructure_as=PolicyConfig) == table


def test_a_callable_target_is_recorded_by_reference(converter: Any) -> None:
    data = converter.unstructure(PythonPolicy(target=greedy), unstructure_as=PolicyConfig)
    assert data == {"kind": "python", "target": f"{__name__}:greedy"}


def test_policy_table_errors_name_the_path(converter: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        structure_or_raise(converter, {"kind": "python", "target": 3}, PolicyConfig, title="Invalid bots")
    assert caught.value.problems == [
        "$.target: expected a 'module:attribute' string naming a policy function or class; got 3."
    ]


# --- plugins and load_policy -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ScriptedPolicy(PolicyConfig):
    kind: ClassVar[str] = "scripted"
    moves: tuple[int, ...] = (0,)


class ScriptedActions:
    def __init__(self, moves: tuple[int, ...]) -> None:
        self.moves = moves
        self.step = 0

    def act(self, observation: Any) -> int:
        move = self.moves[self.step % len(self.moves)]
        self.step += 1
        return move

    def reset(self, *, seed: int) -> None:
        self.step = 0


class ScriptedLoader(PolicyLoader):
    kind: ClassVar[str] = "scripted"
    config_type: ClassVar[type[PolicyConfig]] = ScriptedPolicy

    def load(self, config: Any, **context: Any) -> Any:
        return ScriptedActions(config.moves)


class ScriptedPlugin:
    @hookimpl
    def igym_register_policy_loaders(self) -> list[type[PolicyLoader]]:
        return [ScriptedLoader]


@attrs.frozen(kw_only=True)
class BrokenPolicy(PolicyConfig):
    kind: ClassVar[str] = "broken"


class BrokenLoader(PolicyLoader):
    kind: ClassVar[str] = "broken"
    config_type: ClassVar[type[PolicyConfig]] = BrokenPolicy

    def load(self, config: Any, **context: Any) -> Any:
        return object()


class BrokenPlugin:
    @hookimpl
    def igym_register_policy_loaders(self) -> list[type[PolicyLoader]]:
        return [BrokenLoader]


class BlockedFallbackPlugin:
    """Only the random kind, so that the registry is not empty when the built-ins are blocked."""

    @hookimpl
    def igym_register_policy_loaders(self) -> list[type[PolicyLoader]]:
        return [policies_basic.RandomPolicyLoader]


def test_a_plugin_policy_kind_joins_specs_and_the_converter() -> None:
    registry = _manager(extra=[ScriptedPlugin(), BrokenPlugin()]).registry
    converter = make_converter(registry)
    config = policy_config_from({"kind": "scripted", "moves": [2, 1]}, registry, converter=converter)
    assert config == ScriptedPolicy(moves=(2, 1))
    assert converter.unstructure(config, unstructure_as=PolicyConfig) == {"kind": "scripted", "moves": [2, 1]}
    policy = _load(config, registry)
    assert [policy.act(None) for _ in range(3)] == [2, 1, 2]
    reset_policy(policy, seed=0)
    assert policy.act(None) == 2
    expected = r"The 'broken' policy loader of plugin .* returned object, which has no act"
    with pytest.raises(PluginError, match=expected):
        _load(BrokenPolicy(), registry)


def test_load_policy_names_a_missing_kind(registry: Any) -> None:
    expected = r"No policy loader named 'scripted' is installed; installed: constant, python, random\. Check"
    with pytest.raises(PluginNotFoundError, match=expected):
        _load(ScriptedPolicy(), registry)


def test_a_loader_and_its_config_must_share_a_kind() -> None:
    expected = r"has kind 'mismatched' but its config_type ScriptedPolicy has kind 'scripted'"
    with pytest.raises(PluginError, match=expected):

        class Mismatched(PolicyLoader):
            kind: ClassVar[str] = "mismatched"
            config_type: ClassVar[type[PolicyConfig]] = ScriptedPolicy

            def load(self, config: Any, **kwargs: Any) -> Any:
                return None


def test_loaders_check_the_config_type(registry: Any) -> None:
    with pytest.raises(TypeError, match=r"RandomPolicyLoader\.load needs a RandomPolicy; got ConstantPolicy"):
        policies_basic.RandomPolicyLoader().load(
            ConstantPolicy(action=1),
            agent="a",
            action_space=SPACES["discrete"],
            observation_space=OBSERVATION_SPACE,
            base_dir=None,
        )
