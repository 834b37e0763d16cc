"""Key names, combinations and the action table: what action a set of held keys produces."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from igym_core.builtin.gym_keys import ActionTable, normalize_key, parse_combo

EIGHT_WAY = {
    "ArrowUp": "up",
    "ArrowDown": "down",
    "ArrowLeft": "left",
    "ArrowRight": "right",
    "ArrowUp+ArrowLeft": "upleft",
    "ArrowUp+ArrowRight": "upright",
    "ArrowDown+ArrowLeft": "downleft",
    "ArrowDown+ArrowRight": "downright",
    " ": "fire",
}


def test_key_names_are_canonical():
    assert normalize_key("W") == "w"
    assert normalize_key("Space") == " "
    assert normalize_key("arrowup") == "ArrowUp"
    assert normalize_key("Up") == "ArrowUp"
    assert parse_combo("ArrowUp+a") == frozenset({"ArrowUp", "a"})
    assert parse_combo("+") == frozenset({"+"})


def test_unknown_key_names_say_what_would_be_right():
    with pytest.raises(ValueError, match="Did you mean 'ArrowLeft'"):
        normalize_key("ArowLeft")
    with pytest.raises(ValueError, match="empty part"):
        parse_combo("ArrowUp+")
    with pytest.raises(ValueError, match="same key twice"):
        parse_combo("a+A")
    with pytest.raises(ValueError, match="mapped twice"):
        ActionTable({"a": 1, "A": 2}, default=0)


def test_combinations_beat_their_parts_in_either_press_order():
    table = ActionTable(EIGHT_WAY, default="noop")
    assert table.lookup(("ArrowUp", "ArrowLeft")) == ("upleft", True)
    assert table.lookup(("ArrowLeft", "ArrowUp")) == ("upleft", True)
    assert table.lookup(()) == ("noop", False)
    # Three keys: the largest held combination wins; between two of the same size, the newest key.
    assert table.lookup(("ArrowUp", "ArrowLeft", "ArrowRight")) == ("upright", True)
    assert table.lookup(("ArrowUp", "ArrowRight", "ArrowLeft")) == ("upleft", True)
    # An unmapped key alongside a mapped one does not block it.
    assert table.lookup(("ArrowUp", " ")) in {("up", True), ("fire", True)}
    assert table.lookup((" ", "ArrowUp")) == ("up", True)


def test_listened_filters_and_canonicalises():
    table = ActionTable({"w": 1, "ArrowUp": 2}, default=0)
    assert table.listened(["W", "x", "ArrowUp", "w", "Shift"]) == ("w", "ArrowUp")
    assert table.keys == frozenset({"w", "ArrowUp"})


@given(st.lists(st.sampled_from(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", " ", "q"]), unique=True))
def test_the_action_is_always_from_a_held_subset(held):
    """Whatever is held, the action is that of a mapped combination all of whose keys are held,
    no held combination is larger, and with nothing mapped held the default is played."""
    table = ActionTable(EIGHT_WAY, default="noop")
    action, mapped = table.lookup(tuple(held))
    held_set = set(held)
    candidates = {keys: a for keys, a in table.entries.items() if keys <= held_set}
    if not candidates:
        assert (action, mapped) == ("noop", False)
        return
    assert mapped
    largest = max(len(k) for k in candidates)
    assert action in {a for k, a in candidates.items() if len(k) == largest}
    # Memoised answers agree with fresh ones.
    assert ActionTable(EIGHT_WAY, default="noop").lookup(tuple(held)) == (action, mapped)


def test_every_pair_of_arrows_has_a_defined_answer():
    table = ActionTable(EIGHT_WAY, default="noop")
    for a, b in itertools.permutations(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"], 2):
        action, mapped = table.lookup((a, b))
        assert mapped
        if {a, b} in ({"ArrowUp", "ArrowDown"}, {"ArrowLeft", "ArrowRight"}):
            assert action == EIGHT_WAY[b]  # opposite directions: the newer press wins
