"""The stager: per-participant sequences from RandomizeOrder, RepeatScene and plain scenes."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core import ByCondition, RandomizeOrder, RepeatScene, StaticScene
from igym_core.scenes.stager import Slot, expand_sequence, iter_scenes

_participant_ids = st.text(min_size=1, max_size=24)


@st.composite
def trees(draw: Any) -> tuple[Any, ...]:
    """Top-level nodes: scenes, RandomizeOrder (nested at will) and RepeatScene of a scene.

    Every scene has its own id; a RepeatScene repeats a plain scene, so that every RandomizeOrder
    is expanded exactly once per participant.
    """
    counter = itertools.count()

    def scene() -> StaticScene:
        return StaticScene(scene_id=f"s{next(counter)}")

    def node(depth: int) -> Any:
        kind = draw(st.sampled_from(["scene", "randomize", "repeat"] if depth < 3 else ["scene", "repeat"]))
        if kind == "scene":
            return scene()
        if kind == "repeat":
            return RepeatScene(scene=scene(), times=draw(st.integers(1, 4)))
        children = [node(depth + 1) for _ in range(draw(st.integers(1, 4)))]
        return RandomizeOrder(
            scenes=children,
            keep_n=draw(st.none() | st.integers(1, len(children))),
            seed=draw(st.none() | st.integers(0, 2**40)),
        )

    return tuple(node(0) for _ in range(draw(st.integers(1, 5))))


def _randomizers(nodes: tuple[Any, ...], path: str = "$.scenes") -> list[tuple[str, RandomizeOrder]]:
    out = []
    for index, node in enumerate(nodes):
        here = f"{path}[{index}]"
        if isinstance(node, RandomizeOrder):
            out.append((here, node))
            out.extend(_randomizers(node.scenes, f"{here}.scenes"))
    return out


def _child_index(slot_path: str, element_path: str) -> int | None:
    """Which child of the element at ``element_path`` the slot came from (None if not under it)."""
    match = re.match(re.escape(element_path) + r"\.scenes\[(\d+)\]", slot_path)
    return int(match.group(1)) if match else None


def _runs(values: list[int]) -> list[int]:
    return [value for value, _ in itertools.groupby(values)]


def _expand(nodes: Any, pid: str, experiment_seed: int = 0) -> tuple[list[Slot], dict[str, list[str]]]:
    return expand_sequence(nodes, participant_id=pid, condition=None, experiment_seed=experiment_seed)


@settings(max_examples=200, deadline=None)
@given(nodes=trees(), pid=_participant_ids, experiment_seed=st.integers(0, 2**40))
def test_sequences_respect_every_stager_element(nodes, pid, experiment_seed):
    slots, draws = _expand(nodes, pid, experiment_seed)
    assert all(isinstance(s, Slot) for s in slots)

    chosen_by: dict[str, set[int]] = {}
    reached_paths = set()
    for path, element in _randomizers(nodes):  # parents before their children
        under = [(s, _child_index(s.path, path)) for s in slots]
        under = [(s, i) for s, i in under if i is not None]
        parent = re.fullmatch(r"(.*)\.scenes\[(\d+)\]", path)
        if parent and parent.group(1) in chosen_by and int(parent.group(2)) not in chosen_by[parent.group(1)]:
            # inside a RandomizeOrder that did not draw it: not shown at all
            assert under == []
            chosen_by[path] = set()
            continue
        reached_paths.add(path)
        chosen = _runs([i for _, i in under])
        chosen_by[path] = set(chosen)
        expected = element.keep_n if element.keep_n is not None else len(element.scenes)
        # exactly keep_n (or all) distinct children, each one shown as one contiguous block
        assert len(chosen) == expected
        assert len(set(chosen)) == expected
        assert set(chosen) <= set(range(len(element.scenes)))
        # the element's scenes stand together in the sequence
        positions = [slots.index(s) for s, _ in under]
        assert positions == list(range(positions[0], positions[0] + len(positions)))
        # draws records the order drawn, as scene ids
        assert draws[path] == [s.scene.scene_id for s, _ in under]
    assert set(draws) == reached_paths

    # instance indices count 0, 1, 2, ... per scene id, in sequence order
    seen: dict[str, list[int]] = defaultdict(list)
    for slot in slots:
        seen[slot.scene.scene_id].append(slot.instance)
    for instances in seen.values():
        assert instances == list(range(len(instances)))

    # each slot's path leads to its scene in the experiment
    locations = {path: scene for scene, path in iter_scenes(nodes)}
    for slot in slots:
        assert locations[slot.path] is slot.scene

    # scenes outside any RandomizeOrder all appear, in order, as often as repeated
    fixed = []
    for node in nodes:
        if isinstance(node, StaticScene):
            fixed += [node.scene_id]
        elif isinstance(node, RepeatScene):
            fixed += [node.scene.scene_id] * node.times
    top_level = [s.scene.scene_id for s in slots if not re.match(r"\$\.scenes\[\d+\]\.scenes", s.path)]
    assert top_level == fixed


@settings(max_examples=100, deadline=None)
@given(nodes=trees(), pid=_participant_ids, experiment_seed=st.integers(0, 2**40))
def test_same_seed_and_participant_give_the_same_sequence(nodes, pid, experiment_seed):
    first = _expand(nodes, pid, experiment_seed)
    second = _expand(nodes, pid, experiment_seed)
    assert first == second


@settings(max_examples=50, deadline=None)
@given(pid=_participant_ids, seed=st.integers(0, 2**40))
def test_element_seed_defaults_to_the_experiment_seed(pid, seed):
    scenes = tuple(StaticScene(scene_id=f"s{i}") for i in range(6))
    explicit = (RandomizeOrder(scenes=scenes, seed=seed),)
    implicit = (RandomizeOrder(scenes=scenes),)
    assert _expand(explicit, pid, experiment_seed=12345)[1] == _expand(implicit, pid, experiment_seed=seed)[1]
    # an explicit seed is not affected by the experiment's
    assert _expand(explicit, pid, experiment_seed=1)[1] == _expand(explicit, pid, experiment_seed=2)[1]


@settings(max_examples=30, deadline=None)
@given(pids=st.lists(_participant_ids, min_size=50, max_size=50, unique=True), seed=st.integers(0, 2**40))
def test_different_participants_get_different_orders(pids, seed):
    scenes = (StaticScene(scene_id="a"), StaticScene(scene_id="b"), StaticScene(scene_id="c"))
    nodes = (RandomizeOrder(scenes=scenes),)
    orders = [tuple(_expand(nodes, pid, seed)[1]["$.scenes[0]"]) for pid in pids]
    assert len(set(orders)) > 1
    assert all(sorted(order) == ["a", "b", "c"] for order in orders)


def test_orders_are_roughly_uniform_and_depend_on_the_seed():
    scenes = (StaticScene(scene_id="a"), StaticScene(scene_id="b"), StaticScene(scene_id="c"))
    nodes = (RandomizeOrder(scenes=scenes),)
    pids = [f"p-{i:04x}" for i in range(1200)]
    counts = Counter(tuple(_expand(nodes, pid, 7)[1]["$.scenes[0]"]) for pid in pids)
    assert len(counts) == 6
    # 200 expected per order; a fair shuffle stays well within these bounds
    assert all(120 < n < 280 for n in counts.values()), counts
    other_seed = [tuple(_expand(nodes, pid, 8)[1]["$.scenes[0]"]) for pid in pids[:50]]
    same_seed = [tuple(_expand(nodes, pid, 7)[1]["$.scenes[0]"]) for pid in pids[:50]]
    assert other_seed != same_seed


def test_keep_n_draws_every_candidate_over_many_participants():
    scenes = tuple(StaticScene(scene_id=c) for c in "abcd")
    nodes = (RandomizeOrder(scenes=scenes, keep_n=1),)
    picked = Counter(_expand(nodes, f"p{i}")[1]["$.scenes[0]"][0] for i in range(400))
    assert set(picked) == set("abcd")
    assert all(n > 50 for n in picked.values()), picked


def test_two_shuffles_draw_independently():
    first = tuple(StaticScene(scene_id=c) for c in "abc")
    second = tuple(StaticScene(scene_id=c) for c in "def")
    nodes = (RandomizeOrder(scenes=first), RandomizeOrder(scenes=second))
    same = 0
    for i in range(120):
        _, draws = _expand(nodes, f"p{i}")
        assert sorted(draws) == ["$.scenes[0]", "$.scenes[1]"]
        same += ["abc".index(x) for x in draws["$.scenes[0]"]] == [
            "def".index(x) for x in draws["$.scenes[1]"]
        ]
    assert same < 60, "the two elements draw the same permutation: their draws are not independent"


def test_repeat_scene_gives_instances_in_order():
    mood = StaticScene(scene_id="mood")
    slots, _ = _expand((StaticScene(scene_id="a"), RepeatScene(scene=mood, times=3), mood), "x")
    assert [(s.scene.scene_id, s.instance) for s in slots] == [
        ("a", 0),
        ("mood", 0),
        ("mood", 1),
        ("mood", 2),
        ("mood", 3),
    ]
    assert [s.path for s in slots] == [
        "$.scenes[0]",
        "$.scenes[1].scene",
        "$.scenes[1].scene",
        "$.scenes[1].scene",
        "$.scenes[2]",
    ]


def test_by_condition_takes_the_participants_branch():
    nodes = (
        StaticScene(scene_id="intro"),
        ByCondition(
            branches={
                "a": (StaticScene(scene_id="only_a"),),
                "b": (StaticScene(scene_id="only_b"), StaticScene(scene_id="b2")),
            }
        ),
    )
    for condition, expected in (("a", ["intro", "only_a"]), ("b", ["intro", "only_b", "b2"])):
        slots, _ = expand_sequence(nodes, participant_id="x", condition=condition, experiment_seed=0)
        assert [s.scene.scene_id for s in slots] == expected
    with pytest.raises(LookupError, match=r"\$\.scenes\[1\]"):
        expand_sequence(nodes, participant_id="x", condition="c", experiment_seed=0)


def test_stager_elements_validate_their_arguments():
    from igym_core.config.validators import FieldError

    a = StaticScene(scene_id="a")
    with pytest.raises(FieldError, match="keep_n"):
        RandomizeOrder(scenes=(a,), keep_n=2)
    with pytest.raises(FieldError, match="keep_n"):
        RandomizeOrder(scenes=(a,), keep_n=0)
    with pytest.raises(FieldError, match="scenes"):
        RandomizeOrder(scenes=())
    with pytest.raises(FieldError, match="times"):
        RepeatScene(scene=a, times=0)
    with pytest.raises(FieldError, match="branches"):
        ByCondition(branches={})


def test_a_shuffle_inside_a_repeat_is_drawn_afresh_each_repetition() -> None:
    from igym_core import EndScene, RandomizeOrder, RepeatScene, StaticScene
    from igym_core.scenes.stager import expand_sequence

    pages = tuple(StaticScene(scene_id=f"page_{i}", body="x") for i in range(4))
    tree = (RepeatScene(scene=RandomizeOrder(scenes=pages), times=3), EndScene(scene_id="end"))
    differing = 0
    for number in range(20):
        slots, draws = expand_sequence(tree, participant_id=f"p{number}", condition=None, experiment_seed=7)
        blocks = [[s.scene.scene_id for s in slots[i * 4 : (i + 1) * 4]] for i in range(3)]
        assert sorted(draws) == ["$.scenes[0].scene#0", "$.scenes[0].scene#1", "$.scenes[0].scene#2"]
        assert [draws[f"$.scenes[0].scene#{i}"] for i in range(3)] == blocks
        assert [s.instance for s in slots if s.scene.scene_id == "page_0"] == [0, 1, 2]
        differing += len({tuple(b) for b in blocks}) > 1
    # 4! orders: three equal draws in a row happen for about 1 participant in 576.
    assert differing >= 18
