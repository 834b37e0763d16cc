"""Overcooked partners: a scripted planner chef, the chef cloned from it (ONNX), named presets.

``policies={"chef_1": partner("cloned")}`` picks a partner by name (:data:`PARTNERS`: the planner's
strengths and the cloned chef's presets); the rest of this docstring is the planner.

``GymScene(..., policies={"chef_1": "igym_cogrid.bots:PlannerPolicy"})`` (igym makes one per seat).
It reads the ``"compact"`` observation (:func:`igym_cogrid.env.decode`) and picks a job each step:

- holding a soup: carry it to the nearest serving counter;
- holding a dish: go to a pot that is cooking or ready and wait there, scoop the soup when it is
  ready (no pot with soup coming: put the dish down on a free counter);
- holding an onion: put it in a pot that is not full (all full: put it on a free counter);
- empty-handed: a soup lying on a counter is served; when a pot is cooking or ready and the partner
  carries no dish, fetch a dish (from a counter or the dish rack); else fetch an onion for a pot
  that is not full; else stand out of the way.

It walks shortest paths (breadth-first) around counters and the partner, faces what it wants to
use and interacts. When the partner stands in its way it waits a step, and after a few steps of
being stuck it steps aside to a random free cell (seeded at each episode's start, so a recorded
seed reproduces it), which untangles two chefs in a narrow kitchen.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from igym_cogrid.env import (
    COUNTER,
    DELIVERY,
    DIRECTION_STEPS,
    DISH,
    DISH_PILE,
    DOWN,
    EMPTY,
    INTERACT,
    LEFT,
    NOOP,
    ONION,
    ONION_PILE,
    ONIONS_PER_SOUP,
    RIGHT,
    SOUP,
    UP,
    decode,
)
from igym_core import Bot
from igym_core.errors import ConfigError

__all__ = [
    "PARTNERS",
    "PLANNER_STRENGTHS",
    "PlannerPolicy",
    "cloned_policy",
    "model_path",
    "partner",
    "planner",
    "planner_policy",
]

Cell = tuple[int, int]
#: Direction id (right, down, left, up) → the move action that faces it.
_FACE_ACTION = (RIGHT, DOWN, LEFT, UP)
#: Steps without getting closer before the planner steps aside.
_STUCK_STEPS = 3

#: The planner's named strengths: it chooses an action every this many steps and stands still
#: in between (its moves are then slower, never worse). Soups served in a 60 s round of the
#: cramped room at 10 steps a second, seeds 0–2 (``tests/test_bots.py`` prints them), alone with
#: an idle partner / with an expert planner as partner: expert 11–12 / 12–13, steady 7–8 / 11,
#: slow 5 / 10–11, novice 3 / 9–10.
PLANNER_STRENGTHS = {"expert": 1, "steady": 2, "slow": 4, "novice": 6}


class PlannerPolicy:
    """The scripted planner (see the module's documentation). One instance per seat.

    Args:
        seed: seeds the side-steps before the first episode (every episode re-seeds it).
    """

    def __init__(self, *, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._stuck = 0
        self._last: tuple[int, int, int, int] | None = None

    def __repr__(self) -> str:
        return "PlannerPolicy()"

    def reset(self, *, seed: int) -> None:
        self._rng = random.Random(seed)
        self._stuck = 0
        self._last = None

    def act(self, observation: Any) -> int:
        view = decode(observation)
        me = view["me"]
        if self._last is not None and me == self._last:
            self._stuck += 1
        else:
            self._stuck = 0
        self._last = me
        action = None
        for targets in self._plans(view):
            if targets:
                action = self._go_use(view, targets)
                if action is not None:
                    break
        if action is None:
            action = self._get_out_of_the_way(view)
        if self._stuck >= _STUCK_STEPS and action != INTERACT:
            self._stuck = 0
            side = self._side_step(view)
            if side is not None:
                return side
        return action

    __call__ = act

    # --- what to do ---------------------------------------------------------------------------
    def _plans(self, view: dict[str, Any]) -> list[list[Cell]]:
        """What the chef wants to use next, best first: lists of cells (counters, pots, piles),
        any cell of a list will do. The first list with a reachable cell is followed."""
        grid, on_top = view["grid"], view["on_top"]
        item = view["me"][3]
        partner_item = view["other"][3]
        # In a kitchen split by counters (forced coordination) a chef uses only what borders its
        # own part: the rest is passed over a counter both can reach (``hand_over``).
        mine = _reachable(grid, (view["me"][0], view["me"][1]))

        def usable(cells: Iterable[Cell]) -> list[Cell]:
            return [cell for cell in cells if any(n in mine for n in _neighbours(cell))]

        pots = view["pots"]
        open_pots = [(r, c) for r, c, n, _t in pots if n < ONIONS_PER_SOUP]
        soup_coming = [(r, c) for r, c, n, _t in pots if n >= ONIONS_PER_SOUP]
        ready = [(r, c) for r, c, n, t in pots if n >= ONIONS_PER_SOUP and t == 0]
        hand_over = self._hand_over_counters(view)
        serving = usable(_cells_of(grid, DELIVERY))
        if item == SOUP:
            return [serving, hand_over]
        if item == DISH:
            return [usable(ready), usable(soup_coming), hand_over, self._free_counters(grid, on_top)]
        if item == ONION:
            return [usable(open_pots), hand_over, self._free_counters(grid, on_top)]
        plans = [usable(_items_on_counters(grid, on_top, SOUP))] if serving else []
        if soup_coming and partner_item not in (DISH, SOUP):
            if usable(soup_coming):
                plans.append(usable(_items_on_counters(grid, on_top, DISH) + _cells_of(grid, DISH_PILE)))
            elif not any(on_top[r][c] == DISH for r, c in _hand_overs_taken(view)):
                plans.append(usable(_cells_of(grid, DISH_PILE)))  # one dish for the partner
        if open_pots:
            if usable(open_pots):
                plans.append(usable(_items_on_counters(grid, on_top, ONION) + _cells_of(grid, ONION_PILE)))
            else:  # onions for the partner, as many as the pots still take
                passed = sum(on_top[r][c] == ONION for r, c in _hand_overs_taken(view))
                if passed < sum(ONIONS_PER_SOUP - n for _r, _c, n, _t in pots if n < ONIONS_PER_SOUP):
                    plans.append(usable(_cells_of(grid, ONION_PILE)))
        return plans

    @staticmethod
    def _free_counters(grid: list[list[int]], on_top: list[list[int]]) -> list[Cell]:
        return [
            (r, c)
            for r, row in enumerate(grid)
            for c, kind in enumerate(row)
            if kind == COUNTER and on_top[r][c] == 0
        ]

    def _hand_over_counters(self, view: dict[str, Any]) -> list[Cell]:
        """Free counters both chefs can reach, when the kitchen is split (forced coordination):
        where to leave an item for the partner. Empty when each chef can walk everywhere."""
        grid, on_top = view["grid"], view["on_top"]
        mine = _reachable(grid, (view["me"][0], view["me"][1]))
        theirs = _reachable(grid, (view["other"][0], view["other"][1]))
        if mine & theirs:
            return []
        return [
            cell
            for cell in self._free_counters(grid, on_top)
            if any(n in mine for n in _neighbours(cell)) and any(n in theirs for n in _neighbours(cell))
        ]

    # --- how to do it -------------------------------------------------------------------------
    def _go_use(self, view: dict[str, Any], targets: list[Cell]) -> int | None:
        """The action that brings the chef to use one of ``targets``: walk next to the nearest,
        face it, interact. None when none can be reached."""
        row, col, facing, _item = view["me"]
        here = (row, col)
        grid = view["grid"]
        wanted = set(targets)
        # Already next to one: face it, then use it. A pot still cooking is waited at, facing it.
        for direction, (dr, dc) in enumerate(DIRECTION_STEPS):
            cell = (row + dr, col + dc)
            if cell in wanted:
                if facing != direction:
                    return _FACE_ACTION[direction]
                if _is_cooking_pot(view, cell):
                    return NOOP
                return INTERACT
        partner = (view["other"][0], view["other"][1])
        path = _path_to_use(grid, here, wanted, blocked={partner})
        if path is None:
            if _path_to_use(grid, here, wanted, blocked=set()) is None:
                return None
            # Only through the partner (a one-cell corridor, or it stands where this chef must):
            # wait for it to move on. Two chefs waiting for each other count as stuck, and one
            # side-step (random, seeded) lets the other through.
            return NOOP
        if not path:
            return NOOP
        nxt = path[0]
        if nxt == partner:
            return NOOP  # wait for the partner to move on
        return _move_towards(here, nxt)

    def _get_out_of_the_way(self, view: dict[str, Any]) -> int:
        """Nothing to do: stand still, unless next to the partner (then step away if possible)."""
        row, col = view["me"][0], view["me"][1]
        partner = (view["other"][0], view["other"][1])
        if abs(partner[0] - row) + abs(partner[1] - col) == 1:
            side = self._side_step(view)
            if side is not None:
                return side
        return NOOP

    def _side_step(self, view: dict[str, Any]) -> int | None:
        row, col = view["me"][0], view["me"][1]
        partner = (view["other"][0], view["other"][1])
        grid = view["grid"]
        options = [
            direction
            for direction, (dr, dc) in enumerate(DIRECTION_STEPS)
            if _walkable(grid, (row + dr, col + dc)) and (row + dr, col + dc) != partner
        ]
        if not options:
            return None
        return _FACE_ACTION[self._rng.choice(options)]


def _hand_overs_taken(view: dict[str, Any]) -> list[Cell]:
    """The counters between the two parts of a split kitchen that hold something: what has been
    passed over already (none when the kitchen is not split)."""
    grid, on_top = view["grid"], view["on_top"]
    mine = _reachable(grid, (view["me"][0], view["me"][1]))
    theirs = _reachable(grid, (view["other"][0], view["other"][1]))
    if mine & theirs:
        return []
    return [
        (r, c)
        for r, row in enumerate(grid)
        for c, kind in enumerate(row)
        if kind == COUNTER
        and on_top[r][c] != 0
        and any(n in mine for n in _neighbours((r, c)))
        and any(n in theirs for n in _neighbours((r, c)))
    ]


def _is_cooking_pot(view: dict[str, Any], cell: Cell) -> bool:
    for r, c, n, t in view["pots"]:
        if (r, c) == cell:
            return n >= ONIONS_PER_SOUP and t > 0 and view["me"][3] == DISH
    return False


def _cells_of(grid: list[list[int]], kind: int) -> list[Cell]:
    return [(r, c) for r, row in enumerate(grid) for c, k in enumerate(row) if k == kind]


def _items_on_counters(grid: list[list[int]], on_top: list[list[int]], item: int) -> list[Cell]:
    return [
        (r, c)
        for r, row in enumerate(grid)
        for c, k in enumerate(row)
        if k == COUNTER and on_top[r][c] == item
    ]


def _walkable(grid: list[list[int]], cell: Cell) -> bool:
    r, c = cell
    return 0 <= r < len(grid) and 0 <= c < len(grid[0]) and grid[r][c] == EMPTY


def _reachable(grid: list[list[int]], start: Cell) -> set[Cell]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in _neighbours(queue.popleft()):
            if nxt not in seen and _walkable(grid, nxt):
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _neighbours(cell: Cell) -> Iterable[Cell]:
    for dr, dc in DIRECTION_STEPS:
        yield (cell[0] + dr, cell[1] + dc)


def _path_to_use(
    grid: list[list[int]], start: Cell, targets: set[Cell], blocked: set[Cell]
) -> list[Cell] | None:
    """The cells to walk through (start excluded) to stand next to one of ``targets``; [] when
    already there; None when unreachable."""
    if any(n in targets for n in _neighbours(start)):
        return []
    previous: dict[Cell, Cell | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for nxt in _neighbours(cell):
            if nxt in previous or not _walkable(grid, nxt) or nxt in blocked:
                continue
            previous[nxt] = cell
            if any(n in targets for n in _neighbours(nxt)):
                path = [nxt]
                back = cell
                while back != start and back is not None:
                    path.append(back)
                    back = previous[back]
                return path[::-1]
            queue.append(nxt)
    return None


def _move_towards(here: Cell, there: Cell) -> int:
    dr, dc = there[0] - here[0], there[1] - here[1]
    return _FACE_ACTION[DIRECTION_STEPS.index((dr, dc))]


def planner(strength: str = "expert") -> Bot:
    """The planner at one of :data:`PLANNER_STRENGTHS`, as a seat's bot:
    ``policies={"chef_1": planner("slow")}``. (Repeating its last action in between instead of
    standing still would undo its work: a repeated interact puts back what it took.)"""
    if strength not in PLANNER_STRENGTHS:
        raise ConfigError(
            f"planner strength must be one of {', '.join(PLANNER_STRENGTHS)}; got {strength!r}. "
            'Example: policies={"chef_1": planner("slow")}.'
        )
    return Bot(policy=PlannerPolicy, act_every=PLANNER_STRENGTHS[strength], between="default")


def planner_policy(observation: Any) -> int:
    """A stateless use of the planner (a fresh one each call: no side-steps memory); prefer the
    class, which igym instantiates per seat."""
    return PlannerPolicy().act(observation)


# --- the cloned chef (ONNX) and the named partners ----------------------------------------------------

#: The shipped cloned chefs, one per kitchen they were trained in (:mod:`igym_cogrid.train`).
MODELS_DIR = Path(__file__).resolve().parent / "models"
CLONED_LAYOUTS = ("cramped_room", "asymmetric_advantages")


def model_path(layout: str = "cramped_room") -> Path:
    """The shipped cloned chef of ``layout`` (``models/cogrid_<layout>.onnx``)."""
    return MODELS_DIR / f"cogrid_{layout}.onnx"


def cloned_policy(layout: str = "cramped_room", *, path: str | Path | None = None, **options: Any) -> Any:
    """The behaviour-cloned chef as igym-onnx's :class:`~igym_onnx.OnnxPolicy` config.

    The model reads the compact observation (the env's default) as float32 and builds its features
    itself (see :mod:`igym_cogrid.train`), so the server and a browser give it the same input. A
    model fits one kitchen size: ``layout`` picks the shipped one (:data:`CLONED_LAYOUTS`), ``path``
    another file. ``options`` are further ``OnnxPolicy`` fields, e.g. ``action="sample",
    temperature=1.5``.
    """
    from igym_onnx import OnnxPolicy, Preprocess

    if path is None:
        if layout not in CLONED_LAYOUTS:
            raise ConfigError(
                f"a cloned chef is shipped for {', '.join(CLONED_LAYOUTS)}; got layout {layout!r}. Train "
                f"one with: python -m igym_cogrid.train --layout {layout} --out chef.onnx, then pass "
                "path='chef.onnx'; or use planner() in this kitchen."
            )
        path = model_path(layout)
    return OnnxPolicy(path=str(path), preprocess=Preprocess(dtype="float32"), **options)


#: Named partners, strongest first within each kind: the planner at its strengths
#: (:data:`PLANNER_STRENGTHS`), and the cloned chef (``cloned``: its argmax; ``cloned_sampled``:
#: sampled from its softmax at temperature 2: now and then a wrong step; ``cloned_slow``: choosing every
#: 4 steps). Each maps to ``(kind, act_every, options)``. Measured soups: the plugin's README.
PARTNERS: dict[str, tuple[str, int, dict[str, Any]]] = {
    **{name: ("planner", every, {}) for name, every in PLANNER_STRENGTHS.items()},
    "cloned": ("cloned", 1, {}),
    "cloned_sampled": ("cloned", 1, {"action": "sample", "temperature": 2.0}),
    "cloned_slow": ("cloned", 4, {}),
}


def partner(name: str = "expert", *, layout: str = "cramped_room", act_every: int | None = None) -> Bot:
    """A named partner (:data:`PARTNERS`) as a seat's bot: ``policies={"chef_1": partner("cloned")}``.

    ``act_every`` overrides the preset's pace (the bot then chooses every ``act_every`` steps and
    stands still in between). ``layout`` picks the cloned chef's model (it must match the scene's
    kitchen).
    """
    if name not in PARTNERS:
        raise ConfigError(
            f"partner must be one of {', '.join(PARTNERS)}; got {name!r}. Example: "
            'policies={"chef_1": partner("cloned")}.'
        )
    kind, every, options = PARTNERS[name]
    every = every if act_every is None else act_every
    if kind == "planner":
        return Bot(policy=PlannerPolicy, act_every=every, between="default")
    return Bot(policy=cloned_policy(layout, **options), act_every=every, between="default")
