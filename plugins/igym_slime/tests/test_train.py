"""The training script: deterministic from its seed (whatever the number of processes), and the
exported graph (mirroring included) chooses what the numpy network chooses on both sides."""

from __future__ import annotations

import random

import numpy as np
import onnxruntime

from igym_slime import train
from igym_slime.env import AGENTS, SlimeVolleyEnv, mirror_action

TINY = dict(
    imitation_rounds=1, imitation_games=4, generations=10, pairs=2, games=2, steps=60, log=lambda _: None
)


def test_the_same_seed_gives_the_same_model_with_one_or_two_processes():
    one = train.train(seed=3, workers=1, **TINY)
    two = train.train(seed=3, workers=2, **TINY)
    assert one == two
    assert train.train(seed=4, workers=1, **TINY) != one


def test_the_onnx_graph_matches_the_numpy_network_on_both_sides():
    net = train.Network()
    flat = net.init(np.random.default_rng(0)) * 3  # large weights: many different actions
    session = onnxruntime.InferenceSession(train.export_onnx(net, flat))
    env = SlimeVolleyEnv()
    observations, _ = env.reset(seed=1)
    rng = random.Random(0)
    chosen = set()
    for _ in range(1500):
        rows = [observations[a] for a in AGENTS]
        logits = session.run(None, {"obs": np.asarray(rows, dtype=np.float32) / np.float32(10)})[0]
        x, mirrored = train._scaled_left_frame(rows)
        expected = [
            mirror_action(int(a)) if m else int(a) for a, m in zip(net.act(flat, x), mirrored, strict=True)
        ]
        assert logits.argmax(axis=1).tolist() == expected
        chosen.update(expected)
        observations, *_ = env.step({a: rng.randrange(6) for a in AGENTS})
        if not env.agents:
            observations, _ = env.reset()
    assert len(chosen) >= 4
