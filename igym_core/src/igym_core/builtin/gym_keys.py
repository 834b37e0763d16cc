"""Browser keys and key combinations → actions.

Key names are ``KeyboardEvent.key`` values, as the browser reports them: ``"ArrowUp"``, ``"Enter"``,
``" "`` for the space bar, and single characters. Letters are case-insensitive (stored lower-case, so
Shift or Caps Lock do not change the action); ``"Space"`` is accepted as a name for ``" "``.

A mapping entry may be a combination, ``"ArrowUp+ArrowLeft"``. With several keys held, the action is
that of the entry with the most keys all held (so ArrowUp+ArrowLeft beats ArrowUp); between entries
of the same size, the one holding the most recently pressed key wins. No entry held: the default.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["NAMED_KEYS", "ActionTable", "normalize_key", "parse_combo"]

NAMED_KEYS: frozenset[str] = frozenset(
    {
        "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight",
        "Enter", "Tab", "Escape", "Backspace", "Delete", "Insert",
        "Shift", "Control", "Alt", "Meta", "CapsLock",
        "Home", "End", "PageUp", "PageDown",
        *(f"F{i}" for i in range(1, 13)),
    }
)  # fmt: skip
_ALIASES = {"Space": " ", "Spacebar": " ", "Esc": "Escape", "Up": "ArrowUp", "Down": "ArrowDown",
            "Left": "ArrowLeft", "Right": "ArrowRight"}  # fmt: skip
_LOWER_NAMED = {name.lower(): name for name in NAMED_KEYS}


def normalize_key(name: str) -> str:
    """The canonical form of a key name; raise ValueError (saying what would be right) if unknown."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a key name must be a non-empty string; got {name!r}")
    if len(name) == 1:
        return name.lower()
    if name in NAMED_KEYS:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    if name.lower() in _LOWER_NAMED:
        return _LOWER_NAMED[name.lower()]
    guesses = difflib.get_close_matches(name, [*NAMED_KEYS, *_ALIASES], n=1)
    hint = f" Did you mean {guesses[0]!r}?" if guesses else ""
    raise ValueError(
        f"unknown key {name!r}: use KeyboardEvent.key names such as 'ArrowUp', 'Enter', ' ' (space) "
        f"or a single character such as 'w'.{hint}"
    )


def parse_combo(combo: str) -> frozenset[str]:
    """``"ArrowUp+ArrowLeft"`` → ``{"ArrowUp", "ArrowLeft"}``; ``"+"`` alone is the plus key."""
    if combo == "+":
        return frozenset({"+"})
    parts = combo.split("+")
    if any(p == "" for p in parts):
        raise ValueError(f"key combination {combo!r} has an empty part; write keys joined by '+'")
    keys = frozenset(normalize_key(p) for p in parts)
    if len(keys) != len(parts):
        raise ValueError(f"key combination {combo!r} names the same key twice")
    return keys


class ActionTable:
    """Looks up the action for the keys held, with the combination rule of this module."""

    def __init__(self, mapping: Mapping[str, Any], default: Any) -> None:
        self.entries: dict[frozenset[str], Any] = {}
        for combo, action in mapping.items():
            keys = parse_combo(combo)
            if keys in self.entries:
                raise ValueError(f"key combination {combo!r} is mapped twice (keys are case-insensitive)")
            self.entries[keys] = action
        self.default = default
        self.keys: frozenset[str] = frozenset().union(*self.entries) if self.entries else frozenset()
        self._memo: dict[tuple[str, ...], tuple[Any, bool]] = {(): (default, False)}

    def listened(self, keys: Iterable[str], *, unique: bool = True) -> tuple[str, ...]:
        """The keys this table knows, in the given order, canonical (without repeats if ``unique``)."""
        out: list[str] = []
        for key in keys:
            if key not in self.keys:
                if len(key) != 1 or key.lower() not in self.keys:
                    continue
                key = key.lower()
            if not unique or key not in out:
                out.append(key)
        return tuple(out)

    def lookup(self, held: tuple[str, ...]) -> tuple[Any, bool]:
        """``(action, mapped)`` for keys held (oldest press first); ``mapped`` False → the default."""
        hit = self._memo.get(held)
        if hit is not None:
            return hit
        held_set = frozenset(held)
        action = self.entries.get(held_set)
        if action is not None or held_set in self.entries:
            result = (action, True)
        else:
            order = {key: i for i, key in enumerate(held)}
            best: tuple[int, int] | None = None
            result = (self.default, False)
            for keys, candidate in self.entries.items():
                if keys <= held_set:
                    rank = (len(keys), max(order[k] for k in keys))
                    if best is None or rank > best:
                        best, result = rank, (candidate, True)
        if len(self._memo) < 4096:
            self._memo[held] = result
        return result
