"""The stager: turns an experiment's ``scenes`` into one participant's sequence.

Elements other than scenes:

- ``RandomizeOrder(scenes, keep_n=None, seed=None)`` shuffles its scenes per participant and keeps the
  first ``keep_n``. The draw depends only on the seed (the experiment's seed when ``seed`` is None),
  the element's place in the experiment and the participant id, so it is reproducible, and it is
  recorded per participant (``sequence_drawn`` in ``sessions.jsonl``).
- ``RepeatScene(scene, times)`` repeats a scene; each repetition gets its own instance index.
- ``ByCondition(branches={"control": (...), "treatment": (...)})`` picks the branch of the
  participant's condition (assigned in balance, see ``Experiment.conditions``).

Instance indices count, per ``scene_id``, how often the scene appeared earlier in the participant's
sequence: data from repeated scenes is never overwritten.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from igym_core.config.validators import FieldError
from igym_core.scenes.interface import SceneConfig, StagerNode

__all__ = ["ByCondition", "RandomizeOrder", "RepeatScene", "Slot", "expand_sequence", "iter_scenes"]


def _nodes(value: Any) -> tuple[StagerNode, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class RandomizeOrder(StagerNode):
    """Shuffle ``scenes`` per participant; keep the first ``keep_n`` (all when None)."""

    kind: ClassVar[str] = "randomize_order"
    scenes: tuple[StagerNode, ...] = attrs.field(converter=_nodes)
    """The scenes (or nested stager elements) to shuffle."""
    keep_n: int | None = None
    """How many of the shuffled scenes each participant sees (the first ``keep_n``); None for all."""
    seed: int | None = None
    """The seed of this shuffle; None derives it from the experiment's ``seed``."""

    def __attrs_post_init__(self) -> None:
        if len(self.scenes) < 1:
            raise FieldError("scenes", "RandomizeOrder needs at least one scene.")
        if self.keep_n is not None and not 1 <= self.keep_n <= len(self.scenes):
            raise FieldError(
                "keep_n",
                f"must be between 1 and the number of scenes ({len(self.scenes)}); got "
                f"{self.keep_n}. Use None to keep them all.",
            )


@attrs.frozen(kw_only=True)
class RepeatScene(StagerNode):
    """Show ``scene`` ``times`` times in a row, each with its own instance index."""

    kind: ClassVar[str] = "repeat"
    scene: StagerNode
    """The scene (or stager element) to repeat."""
    times: int
    """How many times in a row (1 or more); each repetition has its own instance index."""

    def __attrs_post_init__(self) -> None:
        if self.times < 1:
            raise FieldError("times", f"must be 1 or more; got {self.times}.")


@attrs.frozen(kw_only=True)
class ByCondition(StagerNode):
    """Scenes that depend on the participant's condition: one branch per condition."""

    kind: ClassVar[str] = "by_condition"
    branches: dict[str, tuple[StagerNode, ...]] = attrs.field(
        converter=lambda d: {str(k): tuple(v) for k, v in dict(d).items()}
    )
    """Condition name → the scenes participants in that condition see; one branch per condition of the
    experiment."""

    def __attrs_post_init__(self) -> None:
        if not self.branches:
            raise FieldError("branches", "ByCondition needs at least one branch.")


@attrs.frozen
class Slot:
    """One scene in a participant's sequence."""

    scene: SceneConfig
    instance: int
    path: str
    """Where the scene stands in the experiment (``$.scenes[2].scenes[0]``)."""


def expand_sequence(
    nodes: Sequence[StagerNode],
    *,
    participant_id: str,
    condition: str | None,
    experiment_seed: int,
) -> tuple[list[Slot], dict[str, list[str]]]:
    """Return the participant's slots and the draws made (``{path: [scene_id, ...]}``).

    A shuffle inside a ``RepeatScene`` is drawn once per repetition, keyed ``path#n``.
    """
    flat: list[tuple[SceneConfig, str]] = []
    draws: dict[str, list[str]] = {}

    def walk(node: StagerNode, path: str, repetition: str = "") -> None:
        # ``repetition`` ("#0", "#1", ...) tells repetitions of a RepeatScene apart, so a shuffle
        # inside one draws afresh each time.
        if isinstance(node, SceneConfig):
            flat.append((node, path))
        elif isinstance(node, RandomizeOrder):
            seed = node.seed if node.seed is not None else experiment_seed
            # A str seed is hashed with SHA-512 by random.Random: stable across runs and machines.
            rng = random.Random(f"igym-randomize/{seed}/{path}{repetition}/{participant_id}")
            order = list(range(len(node.scenes)))
            rng.shuffle(order)
            if node.keep_n is not None:
                order = order[: node.keep_n]
            start = len(flat)
            for index in order:
                walk(node.scenes[index], f"{path}.scenes[{index}]", repetition)
            draws[f"{path}{repetition}"] = [scene.scene_id for scene, _ in flat[start:]]
        elif isinstance(node, RepeatScene):
            for number in range(node.times):
                walk(node.scene, f"{path}.scene", f"{repetition}#{number}")
        elif isinstance(node, ByCondition):
            if condition is None or condition not in node.branches:
                raise LookupError(
                    f"{path}: no branch for condition {condition!r}; branches: {sorted(node.branches)}"
                )
            for index, child in enumerate(node.branches[condition]):
                walk(child, f"{path}.branches.{condition}[{index}]", repetition)
        else:
            raise TypeError(f"{path}: {node!r} is not a scene or stager element")

    for index, node in enumerate(nodes):
        walk(node, f"$.scenes[{index}]")
    seen: dict[str, int] = {}
    slots = []
    for scene, path in flat:
        instance = seen.get(scene.scene_id, 0)
        seen[scene.scene_id] = instance + 1
        slots.append(Slot(scene=scene, instance=instance, path=path))
    return slots, draws


def iter_scenes(nodes: Sequence[StagerNode]) -> list[tuple[SceneConfig, str]]:
    """Every scene in the tree with its path (each branch and every candidate of a shuffle)."""
    out: list[tuple[SceneConfig, str]] = []

    def visit(node: StagerNode, path: str) -> None:
        if isinstance(node, SceneConfig):
            out.append((node, path))
        elif isinstance(node, RandomizeOrder):
            for index, child in enumerate(node.scenes):
                visit(child, f"{path}.scenes[{index}]")
        elif isinstance(node, RepeatScene):
            visit(node.scene, f"{path}.scene")
        elif isinstance(node, ByCondition):
            for name, branch in node.branches.items():
                for index, child in enumerate(branch):
                    visit(child, f"{path}.branches.{name}[{index}]")

    for index, node in enumerate(nodes):
        visit(node, f"$.scenes[{index}]")
    return out
