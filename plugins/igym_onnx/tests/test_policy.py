"""ONNX policies: loading, acting, recurrent state, seeded sampling, masks, batching, errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import onnxruntime as ort
import pytest
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from igym_core.envs import agent_seed
from igym_core.errors import MissingDependencyError
from igym_core.plugins.manager import create_plugin_manager
from igym_core.policies.interface import PolicyBatcher, batcher_of
from igym_core.policies.spec import load_policy
from igym_onnx import OnnxConfigError, OnnxPolicy, Preprocess
from igym_onnx.actions import uniform
from igym_onnx.model import clear_model_cache
from igym_onnx.policy import OnnxActor, OnnxPolicyLoader
from igym_onnx.testing import mlp_model, save_model

BOX4 = spaces.Box(-1, 1, shape=(4,), dtype=np.float32)
DISCRETE3 = spaces.Discrete(3)
observations4 = st.lists(st.floats(-3, 3, width=32), min_size=4, max_size=4).map(
    lambda v: np.array(v, dtype=np.float32)
)


def load(
    models: Path,
    name: str = "mlp.onnx",
    *,
    agent: str = "bot",
    action_space: Any = DISCRETE3,
    observation_space: Any = BOX4,
    **config: Any,
) -> OnnxActor:
    policy = OnnxPolicyLoader().load(
        OnnxPolicy(path=name, **config),
        agent=agent,
        action_space=action_space,
        observation_space=observation_space,
        base_dir=models,
    )
    assert isinstance(policy, OnnxActor)
    return policy


def reference_logits(
    models: Path, name: str, rows: np.ndarray, feeds: dict[str, Any] | None = None
) -> list[np.ndarray]:
    session = ort.InferenceSession(str(models / name), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: rows, **(feeds or {})})


def test_argmax_matches_onnxruntime_directly(models: Path) -> None:
    policy = load(models)
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(20, 4)).astype(np.float32)
    logits, _value = reference_logits(models, "mlp.onnx", rows)
    assert [policy.act(row) for row in rows] == np.argmax(logits, axis=1).tolist()
    np.testing.assert_array_equal(policy.logits(rows[0]), logits[0])
    assert policy.model.signature.ignored_outputs == ("value",)


def test_the_policy_is_found_through_the_registry(models: Path) -> None:
    from igym_onnx import plugin

    registry = create_plugin_manager(autoload=False, extra=[plugin], strict=True).registry
    policy = load_policy(
        OnnxPolicy(path="mlp.onnx"),
        registry,
        agent="bot",
        action_space=DISCRETE3,
        observation_space=BOX4,
        base_dir=models,
    )
    assert isinstance(policy, OnnxActor) and isinstance(batcher_of(policy), PolicyBatcher)


def test_discrete_start_is_added(models: Path) -> None:
    policy = load(models, action_space=spaces.Discrete(3, start=10))
    rows = np.random.default_rng(1).normal(size=(12, 4)).astype(np.float32)
    logits = reference_logits(models, "mlp.onnx", rows)[0]
    assert [policy.act(row) for row in rows] == (np.argmax(logits, axis=1) + 10).tolist()


def test_recurrent_state_is_carried_and_reset(models: Path) -> None:
    policy = load(models, "rnn.onnx")
    rows = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    # By hand: feed each step's state output back in.
    state = np.zeros((1, 8), np.float32)
    expected = []
    for row in rows:
        logits, state = reference_logits(models, "rnn.onnx", row[None], {"state_in": state})
        expected.append(logits[0])
    got = [policy.logits(row) for row in rows]
    np.testing.assert_array_equal(np.array(got), np.array(expected))
    assert not np.allclose(expected[0], expected[-1])
    policy.reset(seed=5)
    np.testing.assert_array_equal(policy.logits(rows[0]), expected[0])  # zeros again


def test_gru_state_with_the_batch_on_axis_one(models: Path) -> None:
    a, b = load(models, "gru.onnx"), load(models, "gru.onnx", agent="other")
    assert a.batcher is b.batcher is not None
    assert a.model.signature.states[0].batch_axis == 1
    rows = np.random.default_rng(2).normal(size=(5, 2, 4)).astype(np.float32)
    single = [[a.act(r[0]), b.act(r[1])] for r in rows]
    a.reset(seed=1)
    b.reset(seed=1)
    batched = [a.batcher.act_batch([a, b], [r[0], r[1]]) for r in rows]
    assert batched == single


def test_sampling_is_seeded_and_the_seed_is_kept(models: Path) -> None:
    policy = load(models, action="sample", temperature=1.5, seed=3)
    assert policy.seed == 3
    obs = np.array([0.1, 0.2, -0.3, 0.4], np.float32)
    first = [policy.act(obs) for _ in range(50)]
    assert len(set(first)) > 1  # a temperature this high spreads the choices
    policy.reset(seed=agent_seed(12345, "bot"))
    assert policy.seed == agent_seed(12345, "bot") and policy.draws == 0
    episode = [policy.act(obs) for _ in range(50)]
    policy.reset(seed=agent_seed(12345, "bot"))
    assert [policy.act(obs) for _ in range(50)] == episode
    assert policy.draws == 50
    # The draws are the documented stream, applied to softmax(logits / T).
    logits = policy.logits(obs).astype(np.float64) / 1.5
    p = np.exp(logits - logits.max())
    cumulative = np.cumsum(p) / p.sum()
    expected = [int(np.searchsorted(cumulative, uniform(policy.seed, t), side="right")) for t in range(50)]
    assert episode == expected


def test_a_low_temperature_samples_like_argmax(models: Path) -> None:
    sampler = load(models, action="sample", temperature=1e-4)
    greedy = load(models)
    rows = np.random.default_rng(4).normal(size=(30, 4)).astype(np.float32)
    assert [sampler.act(r) for r in rows] == [greedy.act(r) for r in rows]


def dict_space(mask: bool = True) -> spaces.Dict:
    parts: dict[str, spaces.Space] = {
        "position": spaces.Box(-1, 1, shape=(2,), dtype=np.float32),
        "velocity": spaces.Box(-1, 1, shape=(3,), dtype=np.float32),
    }
    if mask:
        parts["action_mask"] = spaces.MultiBinary(4)
    return spaces.Dict(parts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.floats(-2, 2, width=32), min_size=5, max_size=5),
    st.lists(st.sampled_from([0, 1]), min_size=4, max_size=4).filter(any),
    st.sampled_from(["argmax", "sample"]),
    st.integers(0, 2**31 - 1),
)
def test_masked_actions_are_never_chosen(
    models: Path, values: list[float], mask: list[int], mode: str, seed: int
) -> None:
    policy = load(
        models,
        "dict_mlp.onnx",
        action_space=spaces.Discrete(4),
        observation_space=dict_space(),
        preprocess=Preprocess(keys=("velocity", "position")),
        action=mode,
        temperature=3.0,
    )
    policy.reset(seed=seed)
    obs = {
        "position": np.array(values[:2], np.float32),
        "velocity": np.array(values[2:], np.float32),
        "action_mask": np.array(mask, np.int8),
    }
    for _ in range(5):
        assert mask[policy.act(obs)] == 1


def test_a_named_mask_key_must_exist(models: Path) -> None:
    with pytest.raises(OnnxConfigError, match="mask_key 'legal' is not a key"):
        load(
            models,
            "dict_mlp.onnx",
            action_space=spaces.Discrete(4),
            observation_space=dict_space(),
            preprocess=Preprocess(keys=("position", "velocity")),
            mask_key="legal",
        )


@st.composite
def batches(draw: Any) -> list[tuple[str, int, list[np.ndarray]]]:
    """Per bot: which model, its seed, and its observations for a few ticks."""
    n_bots = draw(st.integers(1, 7))
    steps = draw(st.integers(1, 4))
    return [
        (
            draw(st.sampled_from(["mlp", "rnn", "gru", "sample"])),
            draw(st.integers(0, 2**31 - 1)),
            [draw(observations4) for _ in range(steps)],
        )
        for _ in range(n_bots)
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches())
def test_batched_and_unbatched_evaluation_choose_the_same_actions(models: Path, bots: list[Any]) -> None:
    files = {
        "mlp": ("mlp.onnx", {}),
        "rnn": ("rnn.onnx", {}),
        "gru": ("gru.onnx", {}),
        "sample": ("mlp.onnx", {"action": "sample", "temperature": 2.0}),
    }

    def make() -> list[OnnxActor]:
        out = []
        for i, (kind, seed, _obs) in enumerate(bots):
            name, extra = files[kind]
            policy = load(models, name, agent=f"bot{i}", **extra)
            policy.reset(seed=seed)
            out.append(policy)
        return out

    one_by_one, grouped = make(), make()
    steps = len(bots[0][2])
    for step in range(steps):
        expected = [p.act(obs[step]) for p, (_k, _s, obs) in zip(one_by_one, bots, strict=True)]
        # As the server runtime does: group by batcher, one act_batch call per group.
        got: dict[int, Any] = {}
        groups: dict[int, list[int]] = {}
        for i, policy in enumerate(grouped):
            groups.setdefault(id(batcher_of(policy)), []).append(i)
        for members in groups.values():
            batcher = batcher_of(grouped[members[0]])
            assert batcher is not None
            actions = batcher.act_batch([grouped[i] for i in members], [bots[i][2][step] for i in members])
            got.update(zip(members, actions, strict=True))
        assert [got[i] for i in range(len(bots))] == expected
    for a, b in zip(one_by_one, grouped, strict=True):
        assert a.draws == b.draws
        for x, y in zip(a.state, b.state, strict=True):
            np.testing.assert_array_equal(x, y)


def test_one_model_object_per_file_and_config(models: Path, tmp_path: Path) -> None:
    a, b = load(models), load(models, agent="other")
    assert a.model is b.model and a.batcher is b.batcher
    assert load(models, seed=9).model is a.model  # the seed is per seat
    assert load(models, action="sample").model is not a.model
    path = save_model(mlp_model(4, 3, seed=1), tmp_path / "m.onnx")
    first = load(tmp_path, "m.onnx")
    save_model(mlp_model(4, 3, seed=2), path)
    os.utime(path, ns=(first.model.path.stat().st_mtime_ns + 10**9,) * 2)
    assert load(tmp_path, "m.onnx").model is not first.model  # an edited file is loaded again
    clear_model_cache()
    assert load(models).model is not a.model


def test_a_fixed_batch_model_acts_one_at_a_time(models: Path) -> None:
    policy = load(models, "static.onnx")
    assert policy.batcher is None and batcher_of(policy) is None
    rows = np.random.default_rng(2).normal(size=(8, 4)).astype(np.float32)
    expected = [int(np.argmax(reference_logits(models, "static.onnx", row[None])[0][0])) for row in rows]
    assert [policy.act(row) for row in rows] == expected


def test_act_batch_refuses_another_models_policy(models: Path) -> None:
    a, b = load(models), load(models, "rnn.onnx")
    with pytest.raises(Exception, match="another model"):
        a.batcher.act_batch([a, b], [np.zeros(4, np.float32)] * 2)


def test_integer_inputs(models: Path) -> None:
    policy = load(
        models,
        "int_mlp.onnx",
        action_space=spaces.Discrete(5),
        observation_space=spaces.MultiDiscrete([3, 3, 3]),
        preprocess=Preprocess(dtype="int64"),
    )
    rows = np.array([[0, 1, 2], [2, 2, 0], [1, 0, 1]], dtype=np.int64)
    logits = reference_logits(models, "int_mlp.onnx", rows)[0]
    assert [policy.act(row) for row in rows] == np.argmax(logits, axis=1).tolist()
    with pytest.raises(OnnxConfigError, match="set preprocess dtype='int64'"):
        load(
            models,
            "int_mlp.onnx",
            action_space=spaces.Discrete(5),
            observation_space=spaces.MultiDiscrete([3, 3, 3]),
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "missing.onnx"}, "not found"),
        (
            {"observation_space": spaces.Box(-1, 1, shape=(5,))},
            "takes 4 numbers per observation, but the preprocessed observation has 5",
        ),
        ({"action_space": spaces.Discrete(4)}, "3 entries per observation, but the action space has 4"),
        ({"action_space": spaces.Box(-1, 1, shape=(2,))}, "Discrete"),
        ({"preprocess": Preprocess(keys=("a",))}, "remove keys"),
        (
            {
                "name": "dict_mlp.onnx",
                "observation_space": dict_space(mask=False),
                "action_space": spaces.Discrete(4),
            },
            "Preprocess(keys=('position', 'velocity'))",
        ),
        (
            {
                "name": "dict_mlp.onnx",
                "observation_space": dict_space(),
                "action_space": spaces.Discrete(4),
                "preprocess": Preprocess(keys=("position", "speed")),
            },
            "names 'speed'",
        ),
        (
            {
                "name": "dict_mlp.onnx",
                "observation_space": dict_space(),
                "action_space": spaces.Discrete(5),
                "preprocess": Preprocess(keys=("position", "velocity")),
            },
            "4 entries per observation, but the action space has 5",
        ),
        ({"logits_output": "nope"}, "does not have"),
    ],
)
def test_errors_say_how_to_fix(models: Path, kwargs: dict[str, Any], message: str) -> None:
    name = kwargs.pop("name", "mlp.onnx")
    with pytest.raises(OnnxConfigError) as info:
        load(models, name, **kwargs)
    assert message in str(info.value)


def test_a_file_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(OnnxConfigError, match=r"cannot load .*bad\.onnx"):
        load(tmp_path, "bad.onnx")


def test_missing_onnxruntime_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from igym_onnx.model import onnxruntime

    real_import = builtins.__import__

    def no_ort(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "onnxruntime":
            raise ImportError("no onnxruntime")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ort)
    with pytest.raises(MissingDependencyError) as info:
        onnxruntime()
    assert str(info.value) == "pip install onnxruntime"


def test_observation_spaces_random_stream_is_untouched(models: Path) -> None:
    space = spaces.Box(-1, 1, shape=(4,), dtype=np.float32, seed=7)
    before = gymnasium.spaces.Box(-1, 1, shape=(4,), dtype=np.float32, seed=7).sample()
    load(models, observation_space=space)
    np.testing.assert_array_equal(space.sample(), before)
