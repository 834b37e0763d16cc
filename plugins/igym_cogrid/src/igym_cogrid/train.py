"""Train the cloned chef: behaviour cloning of the scripted planner (DAgger), written as ONNX.

::

    uv run --frozen python -m igym_cogrid.train                     # writes models/cogrid_cramped_room.onnx
    uv run --frozen python -m igym_cogrid.train --seed 0 --out /tmp/chef.onnx --layout cramped_room

CPU only, numpy only (plus ``onnx`` to write the file: ``pip install 'igym-cogrid[train]'``), a few
minutes on one core. The same seed gives the same file, byte for byte.

1. **Features.** The compact observation (:func:`igym_cogrid.env.decode`, the acting chef first)
   becomes a vector of 0/1 features and a few fractions (:func:`features`): each chef's cell,
   facing and held item as one-hots; for every counter whether an onion, a dish or a soup lies on
   it; for every pot its onions (one-hot), cooking or ready, and the cooking time left. The ONNX
   graph computes the same features from the raw observation (``Equal`` and ``Cast`` nodes), so the
   server and a browser give the model the same input: the policy's only preprocessing is the cast
   to float32.
2. **Imitation (DAgger).** An MLP (features → 128 → 128 → 7, tanh) first learns the planner's
   choices in the planner's own games, then in games the network plays itself (a little random
   exploration added), each state labelled by a planner that follows the network's chef (so it
   learns to recover from its own mistakes); the data of every round is kept. Its partner is, in
   turn, idle, a planner, or random (a jittery person); the learner sits in either seat. After each
   round the network plays held-out rounds alone; the best is kept.
3. **Export.** ``onnx.helper`` builds the graph (opset 17, dynamic batch): input ``obs``
   ``[batch, size]`` (the compact observation as float32), output ``logits`` ``[batch, 7]``. One
   model fits one kitchen size (the observation's length depends on it); the shipped one is the
   cramped room's.

Everything random (the rounds' seeds, exploration, minibatches, initial weights) is drawn from
``numpy.random.default_rng(seed)``; the network acts by argmax.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from igym_cogrid.bots import PlannerPolicy
from igym_cogrid.env import AGENTS, COOK_STEPS, COUNTER, DISH, NOOP, ONION, SOUP, make_env

__all__ = ["FeatureLayout", "Network", "export_onnx", "features", "main", "train"]

HIDDEN = (128, 128)
N_ACTIONS = 7
OPSET = 17
FPS = 10
ROUND_STEPS = 60 * FPS
#: Held items in the order of their one-hot (-1: nothing).
HELD = (-1, ONION, DISH, SOUP)
#: Items on counters in the order of their one-hot.
ON_COUNTERS = (ONION, DISH, SOUP)
#: Per pot: onions 0..3 (one-hot), cooking, ready, cooking steps left / COOK_STEPS.
POT_FEATURES = 7
PARTNERS = ("idle", "planner", "random")


class FeatureLayout:
    """Where things are in a kitchen's compact observation (height × width cells, ``pots`` pots)."""

    def __init__(self, height: int, width: int, pots: int) -> None:
        self.height, self.width, self.pots = height, width, pots
        self.cells = height * width
        self.me = 4
        self.other = 8
        self.grid = 12
        self.on_top = 12 + self.cells
        self.pot = 12 + 2 * self.cells
        self.observation_size = self.pot + 4 * pots
        self.size = 2 * (self.cells + 4 + len(HELD)) + len(ON_COUNTERS) * self.cells + POT_FEATURES * pots

    @classmethod
    def of_layout(cls, layout: str) -> FeatureLayout:
        env = make_env(layout=layout)
        return cls(env.height, env.width, len(env.pot_positions))


def _one_hot(values: np.ndarray, choices: Sequence[float] | np.ndarray) -> np.ndarray:
    """``[..., 1]`` values → ``[..., len(choices)]`` 0/1 (all zeros for a value not in choices)."""
    return (values == np.asarray(choices, dtype=np.float32)).astype(np.float32)


def features(observations: np.ndarray, layout: FeatureLayout) -> np.ndarray:
    """The network's input ``[batch, layout.size]`` (float32) for compact observations
    ``[batch, layout.observation_size]``: the numpy twin of the ONNX graph's feature nodes."""
    x = np.asarray(observations, dtype=np.float32).reshape(-1, layout.observation_size)
    cells = np.arange(layout.cells, dtype=np.float32)
    parts = []
    for at in (layout.me, layout.other):
        cell = x[:, at : at + 1] * np.float32(layout.width) + x[:, at + 1 : at + 2]
        parts += [
            _one_hot(cell, cells),
            _one_hot(x[:, at + 2 : at + 3], (0, 1, 2, 3)),
            _one_hot(x[:, at + 3 : at + 4], HELD),
        ]
    is_counter = (x[:, layout.grid : layout.grid + layout.cells] == np.float32(COUNTER)).astype(np.float32)
    on_top = _one_hot(x[:, layout.on_top : layout.on_top + layout.cells, None], ON_COUNTERS)
    parts.append((on_top * is_counter[:, :, None]).reshape(len(x), -1))
    pots = x[:, layout.pot : layout.pot + 4 * layout.pots].reshape(len(x), layout.pots, 4)
    onions, left = pots[:, :, 2:3], pots[:, :, 3:4]
    full = (onions == np.float32(3)).astype(np.float32)
    ready = full * (left == np.float32(0)).astype(np.float32)
    pot_parts = [_one_hot(onions, (0, 1, 2, 3)), full - ready, ready, left / np.float32(COOK_STEPS)]
    parts.append(np.concatenate(pot_parts, axis=2).reshape(len(x), -1))
    return np.concatenate(parts, axis=1)


# --- the network ------------------------------------------------------------------------------------


class Network:
    """A tanh MLP; its parameters are a list of float32 arrays (weights ``[in, out]``, biases)."""

    def __init__(self, sizes: Sequence[int]) -> None:
        self.sizes = tuple(sizes)

    def init(self, rng: np.random.Generator) -> list[np.ndarray]:
        params = []
        for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            params += [(rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32), np.zeros(b, np.float32)]
        return params

    @staticmethod
    def forward(params: Sequence[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits and the hidden activations (the input first), for backpropagation."""
        activations = [x]
        h = x
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                h = np.tanh(h)
                activations.append(h)
        return h, activations

    def act(self, params: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
        return np.argmax(self.forward(params, x)[0], axis=1)


def _gradients(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Cross-entropy gradients (and the mean loss) by backpropagation through the tanh MLP."""
    logits, activations = Network.forward(params, x)
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = float(-np.log(p[rows, y] + 1e-12).mean())
    p[rows, y] -= 1.0
    delta = p / np.float32(len(y))
    grads: list[np.ndarray] = [np.empty(0, np.float32)] * len(params)
    for layer in range(len(params) // 2 - 1, -1, -1):
        a = activations[layer]
        grads[2 * layer] = a.T @ delta
        grads[2 * layer + 1] = delta.sum(axis=0)
        if layer:
            delta = (delta @ params[2 * layer].T) * (1.0 - a * a)
    return grads, loss


def fit(
    params: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    *,
    epochs: int,
    batch: int = 256,
    lr: float = 2e-3,
) -> tuple[list[np.ndarray], float]:
    """Minibatch Adam on the cross-entropy; returns the parameters and the last epoch's mean loss."""
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = 0
    loss = float("nan")
    for _ in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch):
            index = order[start : start + batch]
            grads, batch_loss = _gradients(params, x[index], y[index])
            losses.append(batch_loss)
            t += 1
            for i, g in enumerate(grads):
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                step = lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)
                params[i] = (params[i] - step).astype(np.float32)
        loss = float(np.mean(losses))
    return params, loss


# --- playing rounds -----------------------------------------------------------------------------------


class _Games:
    """``n`` kitchens played in lockstep: the learner's seat, its partner's kind, a labelling planner."""

    def __init__(self, layout: str, n: int, steps: int) -> None:
        self.envs = [make_env(layout=layout, max_steps=steps, fps=FPS) for _ in range(n)]
        self.steps = steps

    def play(
        self,
        choose: Callable[[np.ndarray, np.ndarray], np.ndarray],
        rng: np.random.Generator,
        *,
        seats: Sequence[str],
        partners: Sequence[str],
        epsilon: float,
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Play one round in each kitchen. ``choose(observations, labels)`` gives the learner's
        actions. Returns the learner's observations, the planner's label for each, and the soups
        served in each kitchen."""
        n = len(self.envs)
        experts = [PlannerPolicy() for _ in range(n)]
        mates = [PlannerPolicy() for _ in range(n)]
        observations = []
        for g, env in enumerate(self.envs):
            observations.append(env.reset(seed=int(rng.integers(2**31)))[0])
            experts[g].reset(seed=int(rng.integers(2**31)))
            mates[g].reset(seed=int(rng.integers(2**31)))
        others = [AGENTS[1 - AGENTS.index(seat)] for seat in seats]
        seen, labels = [], []
        for _ in range(self.steps):
            rows = np.stack([observations[g][seats[g]] for g in range(n)])
            wanted = np.array([experts[g].act(rows[g]) for g in range(n)])
            seen.append(rows)
            labels.append(wanted)
            chosen = choose(rows, wanted)
            explore = rng.random(n) < epsilon
            chosen = np.where(explore, rng.integers(0, N_ACTIONS, n), chosen)
            jitter = rng.integers(0, N_ACTIONS, n)
            for g, env in enumerate(self.envs):
                if partners[g] == "planner":
                    other = mates[g].act(observations[g][others[g]])
                elif partners[g] == "random":
                    other = int(jitter[g])
                else:
                    other = NOOP
                observations[g] = env.step({seats[g]: int(chosen[g]), others[g]: other})[0]
        soups = [env.soups_delivered for env in self.envs]
        return np.concatenate(seen), np.concatenate(labels), soups


def soups_alone(
    act: Callable[[np.ndarray], np.ndarray], layout: str, seeds: Sequence[int], *, steps: int = ROUND_STEPS
) -> list[int]:
    """Soups served by ``act`` (observations ``[n, size]`` → actions) as ``chef_0`` in a round of
    ``steps`` per seed, the partner idle: the measure of ``tests/test_bots.py``."""
    envs = [make_env(layout=layout, max_steps=steps, fps=FPS) for _ in seeds]
    observations = [env.reset(seed=int(seed))[0] for env, seed in zip(envs, seeds, strict=True)]
    for _ in range(steps):
        actions = act(np.stack([o["chef_0"] for o in observations]))
        observations = [
            env.step({"chef_0": int(a), "chef_1": NOOP})[0] for env, a in zip(envs, actions, strict=True)
        ]
    return [env.soups_delivered for env in envs]


# --- training -----------------------------------------------------------------------------------------


def train(
    *,
    seed: int = 0,
    layout: str = "cramped_room",
    rounds: int = 8,
    games: int = 12,
    steps: int = ROUND_STEPS,
    epochs: int = 4,
    check_seeds: Sequence[int] = (1001, 1002, 1003),
    hidden: Sequence[int] = HIDDEN,
    log: Callable[[str], Any] = print,
) -> bytes:
    """Train from ``seed`` and return the ONNX model's bytes."""
    rng = np.random.default_rng(seed)
    shape = FeatureLayout.of_layout(layout)
    net = Network((shape.size, *hidden, N_ACTIONS))
    params = net.init(rng)
    kitchens = _Games(layout, games, steps)
    seats = [AGENTS[g % 2] for g in range(games)]
    partners = [PARTNERS[g % len(PARTNERS)] for g in range(games)]
    started = time.perf_counter()

    def network_choice(rows: np.ndarray, _labels: np.ndarray) -> np.ndarray:
        return net.act(params, features(rows, shape))

    xs, ys = [], []
    best: tuple[int, list[np.ndarray]] | None = None
    for round_ in range(rounds + 1):
        # Round 0 is the planner's own play (with more exploration, for variety); then DAgger.
        if round_ == 0:
            seen, labels, soups = kitchens.play(
                lambda _rows, labels: labels, rng, seats=seats, partners=partners, epsilon=0.15
            )
        else:
            seen, labels, soups = kitchens.play(
                network_choice, rng, seats=seats, partners=partners, epsilon=0.03
            )
        xs.append(features(seen, shape))
        ys.append(labels)
        x, y = np.concatenate(xs), np.concatenate(ys)
        agreement = float((net.act(params, xs[-1]) == labels).mean())
        params, loss = fit(params, x, y, rng, epochs=epochs if round_ else 2 * epochs)
        alone = soups_alone(
            lambda rows, fitted=params: net.act(fitted, features(rows, shape)),
            layout,
            check_seeds,
            steps=steps,
        )
        if best is None or sum(alone) > best[0]:
            best = (sum(alone), [p.copy() for p in params])
        log(
            f"round {round_}/{rounds}: {len(x)} states, loss {loss:.3f}, agreement before the fit "
            f"{agreement:.1%}, soups in its games {soups}, alone on held-out seeds {alone} "
            f"({time.perf_counter() - started:.0f} s)"
        )
    assert best is not None
    log(f"kept the network with {best[0]} soups alone on the held-out seeds")
    return export_onnx(best[1], shape, layout=layout)


# --- export -------------------------------------------------------------------------------------------


def export_onnx(params: Sequence[np.ndarray], shape: FeatureLayout, *, layout: str) -> bytes:
    """The ONNX model: ``obs`` ``[batch, size]`` (the compact observation as float32) → features
    (as :func:`features`) → MLP → ``logits`` ``[batch, 7]``."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - the message is the fix
        from igym_core.errors import MissingDependencyError

        raise MissingDependencyError("pip install 'igym-cogrid[train]'") from exc
    helper, numpy_helper, tp = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: Any, dtype: Any = np.float32) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def columns(name: str, start: int, count: int) -> str:
        """``obs[:, start:start+count]`` (a Gather of constant indices: never out of range)."""
        index = const(f"{name}_index", np.arange(start, start + count), np.int64)
        return node("Gather", ["obs", index], name, axis=1)

    def one_hot(name: str, values: str, choices: Sequence[float]) -> str:
        equal = node("Equal", [values, const(f"{name}_choices", choices)], f"{name}_equal")
        return node("Cast", [equal], name, to=tp.FLOAT)

    cells = const("cells", np.arange(shape.cells)[None, :])
    parts = []
    for who, at in (("me", shape.me), ("other", shape.other)):
        row, col = columns(f"{who}_row", at, 1), columns(f"{who}_col", at + 1, 1)
        scaled = node("Mul", [row, const(f"{who}_width", shape.width)], f"{who}_row_scaled")
        cell = node("Add", [scaled, col], f"{who}_cell")
        equal = node("Equal", [cell, cells], f"{who}_cell_equal")
        parts.append(node("Cast", [equal], f"{who}_cell_hot", to=tp.FLOAT))
        parts.append(one_hot(f"{who}_facing", columns(f"{who}_facing_raw", at + 2, 1), (0, 1, 2, 3)))
        parts.append(one_hot(f"{who}_held", columns(f"{who}_held_raw", at + 3, 1), HELD))
    grid = columns("grid", shape.grid, shape.cells)
    is_counter = one_hot("is_counter", grid, [COUNTER])
    on_top = node(
        "Unsqueeze",
        [columns("on_top_raw", shape.on_top, shape.cells), const("axis2", [2], np.int64)],
        "on_top",
    )
    items = one_hot("items", on_top, np.asarray(ON_COUNTERS).reshape(1, 1, -1))
    counter_mask = node("Unsqueeze", [is_counter, "axis2"], "counter_mask")
    on_counters = node("Mul", [items, counter_mask], "on_counters")
    parts.append(
        node(
            "Reshape",
            [on_counters, const("flat_counters", [-1, len(ON_COUNTERS) * shape.cells], np.int64)],
            "counters_flat",
        )
    )
    pots = node(
        "Reshape",
        [columns("pots_raw", shape.pot, 4 * shape.pots), const("pot_shape", [-1, shape.pots, 4], np.int64)],
        "pots",
    )
    onions = node("Gather", [pots, const("two", [2], np.int64)], "onions", axis=2)
    left = node("Gather", [pots, const("three", [3], np.int64)], "left", axis=2)
    onions_hot = one_hot("onions_hot", onions, np.asarray((0, 1, 2, 3)).reshape(1, 1, -1))
    full = one_hot("full", onions, [3])
    done = one_hot("done", left, [0])
    ready = node("Mul", [full, done], "ready")
    cooking = node("Sub", [full, ready], "cooking")
    left_part = node("Div", [left, const("cook_steps", COOK_STEPS)], "left_part")
    pot_features = node("Concat", [onions_hot, cooking, ready, left_part], "pot_features", axis=2)
    parts.append(
        node(
            "Reshape",
            [pot_features, const("flat_pots", [-1, POT_FEATURES * shape.pots], np.int64)],
            "pots_flat",
        )
    )
    current = node("Concat", parts, "features", axis=1)
    layers = len(params) // 2
    for i in range(layers):
        w = const(f"W{i}", params[2 * i])
        b = const(f"b{i}", params[2 * i + 1])
        product = node("MatMul", [current, w], f"m{i}")
        current = node("Add", [product, b], "logits" if i == layers - 1 else f"a{i}")
        if i < layers - 1:
            current = node("Tanh", [current], f"h{i}")
    graph = helper.make_graph(
        nodes,
        f"cogrid_cloned_{layout}",
        [helper.make_tensor_value_info("obs", tp.FLOAT, ["batch", shape.observation_size])],
        [helper.make_tensor_value_info("logits", tp.FLOAT, ["batch", N_ACTIONS])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="igym_cogrid.train"
    )
    model.ir_version = 8  # readable by onnxruntime-web and older runtimes
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


# --- the script ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    from igym_cogrid.bots import model_path

    parser = argparse.ArgumentParser(prog="python -m igym_cogrid.train", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layout", default="cramped_room")
    parser.add_argument("--out", type=Path, default=None, help="default: the shipped model of the layout")
    parser.add_argument("--rounds", type=int, default=8, help="DAgger rounds after the planner's own")
    parser.add_argument("--games", type=int, default=12, help="kitchens played per round")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else model_path(args.layout)
    data = train(
        seed=args.seed,
        layout=args.layout,
        rounds=args.rounds,
        games=args.games,
        log=lambda line: print(line, flush=True),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]})")


if __name__ == "__main__":
    main()
