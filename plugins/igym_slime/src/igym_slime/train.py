"""Train the Slime Volleyball bot and write it as ONNX: imitation, then evolution strategies.

::

    uv run --frozen python -m igym_slime.train                 # writes models/slime_policy.onnx
    uv run --frozen python -m igym_slime.train --seed 0 --out /tmp/bot.onnx --workers 2

CPU only, numpy only (plus ``onnx`` to write the file), a few minutes on two cores. The same
seed gives the same model, byte for byte, whatever ``--workers`` is (each game's result does not
depend on which process plays it, and results are combined in a fixed order).

1. **Imitation (DAgger).** A small MLP (12 → 32 → 32 → 6, tanh) learns the scripted bot's
   choices (:class:`igym_slime.bots.ScriptedPolicy`) from the scripted bot's own games, with some
   random actions for variety, then from games the network itself plays, relabelled by the
   scripted bot (so it learns to recover from its own mistakes).
2. **Improvement (OpenAI-style evolution strategies).** Antithetic Gaussian perturbations of all
   weights, each scored by its point difference over games against the scripted bot and against
   an earlier copy of itself (common serves within a generation, sides alternating), centred
   ranks, Adam steps. The copy checked best against the scripted bot on held-out serves is kept.
3. **Export.** ``onnx.helper`` builds the graph (opset 17, dynamic batch). The network thinks in
   the left player's frame; the graph mirrors an observation whose own x is positive (the right
   player) and swaps the left/right logits back, so the one file plays either side. Input
   ``obs`` is the observation divided by 10 (``Preprocess(std=10)``), output ``logits``.

The network always acts by argmax; everything random (serves, exploration, noise) is drawn from
``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from igym_slime.bots import MODEL_PATH, OBSERVATION_STD, ScriptedPolicy, canonical
from igym_slime.env import AGENTS, OBSERVATION_SIZE, SlimeVolleyEnv, mirror_action
from igym_slime.wrappers import MIRROR, observation_matrix

__all__ = ["Network", "export_onnx", "main", "train"]

HIDDEN = (32, 32)
N_ACTIONS = 6
OPSET = 17

_EXPERT = ScriptedPolicy()


# --- the network ------------------------------------------------------------------------------------


class Network:
    """An MLP whose parameters live in one flat float32 vector (what evolution strategies perturb)."""

    def __init__(self, sizes: Sequence[int] = (OBSERVATION_SIZE, *HIDDEN, N_ACTIONS)) -> None:
        self.sizes = tuple(sizes)
        self.shapes: list[tuple[int, ...]] = []
        for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            self.shapes += [(a, b), (b,)]
        self.size = sum(int(np.prod(s)) for s in self.shapes)

    def init(self, rng: np.random.Generator) -> np.ndarray:
        parts = []
        for shape in self.shapes:
            if len(shape) == 2:
                parts.append(rng.normal(size=shape) / np.sqrt(shape[0]))
            else:
                parts.append(np.zeros(shape))
        return np.concatenate([p.reshape(-1) for p in parts]).astype(np.float32)

    def unflatten(self, flat: np.ndarray) -> list[np.ndarray]:
        """Weights and biases; ``flat`` may have leading batch axes (a population)."""
        lead = flat.shape[:-1]
        out, start = [], 0
        for shape in self.shapes:
            n = int(np.prod(shape))
            out.append(flat[..., start : start + n].reshape(*lead, *shape))
            start += n
        return out

    def logits(self, flat: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Logits for inputs ``x`` ``[..., n, 12]`` (scaled, left-player frame); a population of
        parameter vectors ``flat`` ``[P, size]`` takes ``x`` ``[P, n, 12]``."""
        params = self.unflatten(flat)
        h = x
        for i in range(0, len(params), 2):
            w, b = params[i], params[i + 1]
            h = np.matmul(h, w) + b[..., None, :] if flat.ndim > 1 else h @ w + b
            if i + 2 < len(params):
                h = np.tanh(h)
        return h

    def act(self, flat: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(flat, x), axis=-1)


def _scaled_left_frame(observations: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Observations as the network's input rows, and which were mirrored (right players)."""
    x = np.asarray(observations, dtype=np.float32).reshape(-1, OBSERVATION_SIZE)
    mirrored = x[:, 0] > 0  # before observation_matrix mirrors those rows in place
    return observation_matrix(x) / np.float32(OBSERVATION_STD), mirrored


def _expert_left(observation: Sequence[float]) -> int:
    """The scripted bot's choice in the left player's frame."""
    return _EXPERT._act_left(canonical(observation)[0])


# --- stage 1: imitation ---------------------------------------------------------------------------


def _collect(
    net: Network, flat: np.ndarray | None, rng: np.random.Generator, *, games: int, steps: int, epsilon: float
) -> tuple[np.ndarray, np.ndarray]:
    """States from ``games`` games (the network, or with ``flat=None`` the scripted bot, on one side
    against the scripted bot), each labelled with the scripted bot's choice in the left frame."""
    envs = [SlimeVolleyEnv(lives=99, max_steps=steps) for _ in range(games)]
    observations = [env.reset(seed=int(rng.integers(2**31)))[0] for env in envs]
    learner_side = [AGENTS[g % 2] for g in range(games)]
    xs, ys = [], []
    for _ in range(steps):
        rows = [observations[g][learner_side[g]] for g in range(games)]
        x, mirrored = _scaled_left_frame(rows)
        expert = np.array([_expert_left(r) for r in rows])
        xs.append(x)
        ys.append(expert)
        chosen = expert if flat is None else net.act(flat, x)
        explore = rng.random(games) < epsilon
        chosen = np.where(explore, rng.integers(0, N_ACTIONS, games), chosen)
        noise = rng.random(games) < epsilon  # the scripted opponent errs too, for variety
        noise_actions = rng.integers(0, N_ACTIONS, games)
        for g, env in enumerate(envs):
            mine = int(chosen[g])
            if mirrored[g]:
                mine = mirror_action(mine)
            other = "right" if learner_side[g] == "left" else "left"
            theirs = int(noise_actions[g]) if noise[g] else _EXPERT.act(observations[g][other])
            observations[g] = env.step({learner_side[g]: mine, other: theirs})[0]
    return np.concatenate(xs), np.concatenate(ys)


def _fit(
    net: Network,
    flat: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    *,
    epochs: int,
    batch: int = 256,
    lr: float = 3e-3,
) -> np.ndarray:
    """Cross-entropy training with Adam (manual backpropagation through the tanh MLP)."""
    theta = flat.astype(np.float64)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    t = 0
    n = len(x)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n - batch + 1, batch):
            index = order[start : start + batch]
            grad = _gradient(net, theta, x[index].astype(np.float64), y[index])
            t += 1
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad * grad
            theta -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return theta.astype(np.float32)


def _gradient(net: Network, theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    params = net.unflatten(theta)
    activations = [x]
    h = x
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i + 2 < len(params):
            h = np.tanh(h)
            activations.append(h)
    z = h - h.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    delta = p / len(y)
    grads: list[np.ndarray] = [np.empty(0)] * len(params)
    for layer in range(len(params) // 2 - 1, -1, -1):
        a = activations[layer]
        grads[2 * layer] = a.T @ delta
        grads[2 * layer + 1] = delta.sum(axis=0)
        if layer:
            delta = (delta @ params[2 * layer].T) * (1.0 - a * a)
    return np.concatenate([g.reshape(-1) for g in grads])


def imitate(
    net: Network, rng: np.random.Generator, *, rounds: int, games: int = 48, steps: int = 900, log: Any
) -> np.ndarray:
    """A network that imitates the scripted bot: its games first, then DAgger ``rounds``."""
    flat = net.init(rng)
    x, y = _collect(net, None, rng, games=games, steps=steps, epsilon=0.2)
    flat = _fit(net, flat, x, y, rng, epochs=8)
    for round_ in range(rounds):
        nx, ny = _collect(net, flat, rng, games=games, steps=steps, epsilon=0.05)
        x, y = np.concatenate([x, nx]), np.concatenate([y, ny])
        flat = _fit(net, flat, x, y, rng, epochs=3)
        accuracy = float((net.act(flat, nx) == ny).mean())
        log(
            f"imitation round {round_ + 1}/{rounds}: {len(x)} states, agreement on its own games "
            f"{accuracy:.1%}"
        )
    return flat


# --- stage 2: evolution strategies ------------------------------------------------------------------


def play_population(
    net: Network,
    population: np.ndarray,
    opponents: Sequence[np.ndarray | None],
    seeds: Sequence[int],
    sides: Sequence[str],
    steps: int,
) -> np.ndarray:
    """Point difference ``[P, G]`` of each parameter vector in game g: playing ``sides[g]`` against
    the scripted bot (``opponents[g] is None``) or a fixed network, with serve seed ``seeds[g]``.
    All P×G games run in lockstep; each network's moves in all its games are one forward pass."""
    p_count, g_count = len(population), len(seeds)
    envs = [[SlimeVolleyEnv(lives=10_000, max_steps=steps) for _ in range(g_count)] for _ in range(p_count)]
    observations = [[envs[p][g].reset(seed=int(seeds[g]))[0] for g in range(g_count)] for p in range(p_count)]
    mine = list(sides)
    theirs = ["right" if side == "left" else "left" for side in sides]
    score = np.zeros((p_count, g_count))
    net_games = [g for g in range(g_count) if opponents[g] is not None]
    for _ in range(steps):
        rows = [observations[p][g][mine[g]] for p in range(p_count) for g in range(g_count)]
        x, mirrored = _scaled_left_frame(rows)
        actions = net.act(population, x.reshape(p_count, g_count, OBSERVATION_SIZE)).reshape(-1)
        opponent_actions: dict[tuple[int, int], int] = {}
        for g in net_games:
            rows = [observations[p][g][theirs[g]] for p in range(p_count)]
            ox, omirrored = _scaled_left_frame(rows)
            chosen = net.act(opponents[g], ox)  # type: ignore[arg-type]
            for p in range(p_count):
                opponent_actions[p, g] = mirror_action(int(chosen[p])) if omirrored[p] else int(chosen[p])
        for p in range(p_count):
            for g in range(g_count):
                i = p * g_count + g
                action = mirror_action(int(actions[i])) if mirrored[i] else int(actions[i])
                other = opponent_actions.get((p, g))
                if other is None:
                    other = _EXPERT.act(observations[p][g][theirs[g]])
                obs, rewards, *_ = envs[p][g].step({mine[g]: action, theirs[g]: other})
                observations[p][g] = obs
                score[p, g] += rewards[mine[g]]
    return score


def _play_chunk(args: tuple[Any, ...]) -> np.ndarray:
    sizes, population, opponents, seeds, sides, steps = args
    return play_population(Network(sizes), population, opponents, seeds, sides, steps)


class _Pool:
    """Scores populations in ``workers`` processes, split by parameter vector (or, for fewer vectors
    than workers, by game): every game is played alike wherever it runs, so the split never changes
    the result."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 else None

    def score(
        self,
        net: Network,
        population: np.ndarray,
        opponents: Sequence[np.ndarray | None],
        seeds: Sequence[int],
        steps: int,
    ) -> np.ndarray:
        """Point differences ``[P, G]``; the network plays the left side in even games."""
        sides = [AGENTS[g % 2] for g in range(len(seeds))]
        by_game = len(population) < self.workers
        axis = np.arange(len(seeds) if by_game else len(population))
        jobs = []
        for c in np.array_split(axis, max(1, self.workers)):
            if not len(c):
                continue
            if by_game:
                jobs.append(
                    (
                        net.sizes,
                        population,
                        [opponents[i] for i in c],
                        [seeds[i] for i in c],
                        [sides[i] for i in c],
                        steps,
                    )
                )
            else:
                jobs.append((net.sizes, population[c], list(opponents), list(seeds), sides, steps))
        results = self.pool.map(_play_chunk, jobs) if self.pool else [_play_chunk(j) for j in jobs]
        return np.concatenate(results, axis=1 if by_game else 0)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


def _centred_ranks(values: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(values))
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    return ranks / (len(values) - 1) - 0.5


def evolve(
    net: Network,
    flat: np.ndarray,
    rng: np.random.Generator,
    pool: _Pool,
    *,
    generations: int,
    pairs: int,
    games: int,
    steps: int,
    sigma: float = 0.03,
    lr: float = 0.01,
    log: Any,
) -> np.ndarray:
    theta = flat.astype(np.float64)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    validation_seeds = [int(s) for s in rng.integers(2**31, size=16)]
    best, best_score = theta.copy(), _validate(net, pool, theta, validation_seeds, steps)
    log(f"evolution: start, point difference per game against the scripted bot {best_score:+.2f}")
    rival = theta.astype(np.float32)
    for generation in range(1, generations + 1):
        noise = rng.normal(size=(pairs, len(theta)))
        population = np.concatenate([theta + sigma * noise, theta - sigma * noise]).astype(np.float32)
        seeds = [int(s) for s in rng.integers(2**31, size=games)]
        # Two thirds of the games against the scripted bot, one third against an earlier self.
        opponents = [rival if g % 3 == 2 else None for g in range(games)]
        fitness = pool.score(net, population, opponents, seeds, steps).mean(axis=1)
        ranks = _centred_ranks(fitness)
        grad = -(ranks[:pairs] - ranks[pairs:]) @ noise / (2 * pairs * sigma)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad * grad
        theta -= lr * (m / (1 - 0.9**generation)) / (np.sqrt(v / (1 - 0.999**generation)) + 1e-8)
        if generation % 10 == 0:
            rival = theta.astype(np.float32)
            score = _validate(net, pool, theta, validation_seeds, steps)
            if score > best_score:
                best, best_score = theta.copy(), score
            log(
                f"evolution: generation {generation}/{generations}, population mean {fitness.mean():+.2f}, "
                f"held-out against the scripted bot {score:+.2f} (best {best_score:+.2f})"
            )
    return best.astype(np.float32)


def _validate(net: Network, pool: _Pool, theta: np.ndarray, seeds: Sequence[int], steps: int) -> float:
    scores = pool.score(net, theta.astype(np.float32)[None], [None] * len(seeds), seeds, steps)
    return float(scores[0].mean())


# --- export -------------------------------------------------------------------------------------------


def export_onnx(net: Network, flat: np.ndarray) -> bytes:
    """The ONNX model (opset 17, dynamic batch): ``obs`` ``[batch, 12]`` (observations / 10) →
    ``logits`` ``[batch, 6]``, mirrored for players on the right (see the module docstring)."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - the message is the fix
        from igym_core.errors import MissingDependencyError

        raise MissingDependencyError("pip install 'igym-slime[train]'") from exc
    helper, numpy_helper, tp = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    params = net.unflatten(flat.astype(np.float32))
    x_mask = np.zeros((1, OBSERVATION_SIZE), dtype=np.float32)
    x_mask[0, MIRROR < 0] = 1.0
    inits = [
        numpy_helper.from_array(x_mask, "x_mask"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "unit"),
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
        numpy_helper.from_array(np.array([0, 2, 1, 3, 5, 4], dtype=np.int64), "swap"),
    ]
    nodes = [
        # side: -1 for a player on the left (own x < 0), +1 on the right.
        helper.make_node("Slice", ["obs", "zero", "one", "one"], ["own_x"]),
        helper.make_node("Sign", ["own_x"], ["side"]),
        # x entries times -side (1 on the left, -1 on the right); other entries times 1.
        helper.make_node("Add", ["side", "unit"], ["side_plus"]),  # 0 left, 2 right
        helper.make_node("Mul", ["x_mask", "side_plus"], ["flip_amount"]),
        helper.make_node("Sub", ["unit", "flip_amount"], ["flip"]),  # 1 or -1 on x entries
        helper.make_node("Mul", ["obs", "flip"], ["h_in"]),
    ]
    current = "h_in"
    layers = len(params) // 2
    for i in range(layers):
        inits += [
            numpy_helper.from_array(params[2 * i], f"W{i}"),
            numpy_helper.from_array(params[2 * i + 1], f"b{i}"),
        ]
        out = "logits_left" if i == layers - 1 else f"h{i}"
        nodes += [
            helper.make_node("MatMul", [current, f"W{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}" if i < layers - 1 else out]),
        ]
        if i < layers - 1:
            nodes.append(helper.make_node("Tanh", [f"a{i}"], [out]))
        current = out
    nodes += [
        # On the right, left and right moves swap: logits = left + right_side * (swapped - left).
        helper.make_node("Gather", ["logits_left", "swap"], ["logits_swapped"], axis=1),
        helper.make_node("Sub", ["logits_swapped", "logits_left"], ["swap_delta"]),
        helper.make_node("Mul", ["side_plus", "half"], ["on_right"]),  # 0 left, 1 right
        helper.make_node("Mul", ["swap_delta", "on_right"], ["swap_term"]),
        helper.make_node("Add", ["logits_left", "swap_term"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "slime_policy",
        [helper.make_tensor_value_info("obs", tp.FLOAT, ["batch", OBSERVATION_SIZE])],
        [helper.make_tensor_value_info("logits", tp.FLOAT, ["batch", N_ACTIONS])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="igym_slime.train"
    )
    model.ir_version = 8  # readable by onnxruntime-web and older runtimes
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


# --- the script ----------------------------------------------------------------------------------------


def train(
    *,
    seed: int = 0,
    workers: int = 2,
    imitation_rounds: int = 4,
    imitation_games: int = 48,
    generations: int = 60,
    pairs: int = 12,
    games: int = 6,
    steps: int = 900,
    log: Any = print,
) -> bytes:
    """Train from ``seed`` and return the ONNX model's bytes."""
    rng = np.random.default_rng(seed)
    net = Network()
    started = time.perf_counter()
    flat = imitate(net, rng, rounds=imitation_rounds, games=imitation_games, steps=steps, log=log)
    log(f"imitation done in {time.perf_counter() - started:.0f} s")
    pool = _Pool(workers)
    try:
        if generations:
            flat = evolve(
                net, flat, rng, pool, generations=generations, pairs=pairs, games=games, steps=steps, log=log
            )
    finally:
        pool.close()
    log(f"training done in {time.perf_counter() - started:.0f} s")
    return export_onnx(net, flat)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m igym_slime.train", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument("--workers", type=int, default=2, help="processes playing games (default 2)")
    parser.add_argument("--generations", type=int, default=60)
    parser.add_argument("--imitation-rounds", type=int, default=4)
    args = parser.parse_args(argv)
    data = train(
        seed=args.seed,
        workers=args.workers,
        generations=args.generations,
        imitation_rounds=args.imitation_rounds,
        log=lambda line: print(line, flush=True),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]})")


if __name__ == "__main__":
    main()
