"""The cloned chef's training script: the same seed writes the same file byte for byte (a reduced,
fast configuration), the ONNX graph computes the very features the network learned from (so any
runtime that feeds it the raw observation gives it the same input), and the shipped model is small
and fits the kitchen it was trained in."""

from __future__ import annotations

import hashlib

import numpy as np
import onnxruntime
import pytest

from igym_cogrid import train
from igym_cogrid.bots import CLONED_LAYOUTS, PlannerPolicy, model_path
from igym_cogrid.env import AGENTS, NOOP, make_env

FAST = {"rounds": 1, "games": 2, "steps": 40, "epochs": 1, "check_seeds": (5,), "hidden": (16,)}


def test_the_same_seed_trains_the_same_model_byte_for_byte():
    lines: list[str] = []
    first = train.train(seed=3, log=lines.append, **FAST)
    again = train.train(seed=3, log=lambda _line: None, **FAST)
    other = train.train(seed=4, log=lambda _line: None, **FAST)
    print(f"reduced training, seed 3: {len(first)} bytes, sha256 {hashlib.sha256(first).hexdigest()[:16]}")
    assert first == again
    assert other != first
    assert lines[0].startswith("round 0/1: 80 states") and lines[-1].startswith("kept the network")
    # It is a model onnxruntime runs on a batch of raw observations: 7 logits each.
    env = make_env(layout="cramped_room")
    observations, _ = env.reset(seed=0)
    batch = np.stack([observations[a] for a in AGENTS]).astype(np.float32)
    session = onnxruntime.InferenceSession(first)
    assert session.run(["logits"], {"obs": batch})[0].shape == (2, 7)


def kitchen_observations(layout: str, steps: int = 300) -> np.ndarray:
    """Both chefs' observations over a round of two planners: onions, dishes, soups and pots in
    every state."""
    env = make_env(layout=layout, max_steps=steps)
    bots = {agent: PlannerPolicy(seed=i) for i, agent in enumerate(AGENTS)}
    observations, _ = env.reset(seed=1)
    seen = []
    while env.agents:
        seen += [observations[a] for a in AGENTS]
        observations = env.step({a: bots[a].act(observations[a]) for a in AGENTS})[0]
    return np.stack(seen)


@pytest.mark.parametrize("layout", ["cramped_room", "asymmetric_advantages"])
def test_the_graph_computes_the_features_the_network_learned_from(layout):
    shape = train.FeatureLayout.of_layout(layout)
    rng = np.random.default_rng(0)
    net = train.Network((shape.size, 32, train.N_ACTIONS))
    params = net.init(rng)
    params[1] = rng.normal(size=params[1].shape).astype(np.float32)  # biases too
    session = onnxruntime.InferenceSession(train.export_onnx(params, shape, layout=layout))
    real = kitchen_observations(layout)
    x = train.features(real, shape)
    # The features see what the kitchen holds: both chefs' items, items on counters, full pots.
    assert x.shape == (len(real), shape.size) and set(
        np.unique(x[:, : -train.POT_FEATURES * shape.pots])
    ) == {0, 1}
    assert x[:, 2 * (shape.cells + 8) :].sum() > 0
    # Any observation, even an impossible one (what `igym check` probes the model with), gives the
    # logits the trainer computes.
    nonsense = rng.integers(-1, 700, size=(64, shape.observation_size))
    for observations in (real, nonsense):
        expected = net.forward(params, train.features(observations, shape))[0]
        got = session.run(["logits"], {"obs": observations.astype(np.float32)})[0]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_the_features_put_the_acting_chef_first():
    shape = train.FeatureLayout.of_layout("cramped_room")
    env = make_env(layout="cramped_room")
    observations, _ = env.reset(seed=2)
    observations = env.step({"chef_0": NOOP, "chef_1": NOOP})[0]
    mine, theirs = (train.features(observations[a][None], shape)[0] for a in AGENTS)
    block = shape.cells + 8  # a chef's cell, facing and item one-hots
    assert np.array_equal(mine[:block], theirs[block : 2 * block])
    assert np.array_equal(mine[block : 2 * block], theirs[:block])
    (row, col, *_), _other = env.chefs()
    assert mine[row * shape.width + col] == 1 and mine[: shape.cells].sum() == 1


@pytest.mark.parametrize("layout", CLONED_LAYOUTS)
def test_the_shipped_model_is_small_and_fits_its_kitchen(layout):
    data = model_path(layout).read_bytes()
    print(f"shipped cloned chef, {layout}: {len(data)} bytes")
    assert 10_000 < len(data) < 300_000
    shape = train.FeatureLayout.of_layout(layout)
    session = onnxruntime.InferenceSession(data)
    (obs,) = session.get_inputs()
    assert obs.name == "obs" and obs.shape[1] == shape.observation_size
    assert session.get_outputs()[0].shape[1] == train.N_ACTIONS
