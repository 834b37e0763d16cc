"""The rules that choose each seat's action at a step, for every runtime that steps a game.

The server runtime (:mod:`igym_core.builtin.runtime_server`) and the pyodide runtime's browser code
(``igym_pyodide_p2p.browser.stepper``) both choose actions with these, so a game records the same
actions and action sources whichever runtime plays it. Lean on purpose: it imports only the
standard library and :mod:`igym_core.errors`, because the browser build of igym_core ships it
(beside :mod:`igym_core.builtin.gym_keys`).

- A human seat acts on the keys it holds at the step (``held`` input mode) or on its oldest unused
  key press (``press`` mode), through the scene's :class:`~igym_core.builtin.gym_keys.ActionTable`:
  source ``human`` when a mapping entry matched, else the default action with source ``default``.
- A bot seat chooses a new action at the steps where ``step % act_every == 0``, and whenever it has
  none yet (a new episode); in between it repeats its last one (``bot_repeat``) or plays the
  default action (``default``), as its ``between`` says. A chosen action outside the seat's action
  space fails the game with :class:`~igym_core.errors.EnvContractError`.
- A seat with neither plays the default action (``default``). (The server runtime also has
  ``absent``: a disconnected player within the grace period plays the default.)

These run for every seat of every game at every tick: plain functions and a slots class.
"""

from __future__ import annotations

import numbers
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from igym_core.errors import EnvContractError

if TYPE_CHECKING:
    from igym_core.builtin.gym_keys import ActionTable

__all__ = ["NO_ACTION", "SeatBot", "discrete_check", "human_action"]

#: No action chosen (yet): a bot's ``pending`` when nothing chose for it ahead of the step.
NO_ACTION: Any = object()


def human_action(
    table: ActionTable, held_mode: bool, held: tuple[str, ...], presses: deque[str]
) -> tuple[Any, str, tuple[str, ...]]:
    """A human seat's action at this step, its source (``human`` or ``default``) and the keys
    behind it: the ``held`` keys in held mode, else the oldest of ``presses`` (which it uses up)."""
    if not held_mode:
        held = (presses.popleft(),) if presses else ()
    action, mapped = table.lookup(held)
    return action, ("human" if mapped else "default"), held


def discrete_check(
    n: int, start: int = 0, otherwise: Callable[[Any], bool] | None = None
) -> Callable[[Any], bool]:
    """A test for actions of ``Discrete(n, start)``: an integer (not a bool) in ``[start, start+n)``;
    a value that is no integer is judged by ``otherwise`` (refused without one)."""
    low, high = int(start), int(start) + int(n)

    def discrete(action: Any) -> bool:
        if isinstance(action, numbers.Integral) and not isinstance(action, bool):
            return low <= action < high
        return otherwise(action) if otherwise is not None else False

    return discrete


def _anything(action: Any) -> bool:
    return True


class SeatBot:
    """The bot of one seat: its policy, when it chooses, what it plays in between, and its space.

    ``policy.act(observation)`` chooses, unless an action for this step was chosen ahead of it (by
    a batched evaluation across games, or by JavaScript in the browser) and left in ``pending``.
    ``action_ok`` tests a chosen action (default: anything goes); ``space`` describes the seat's
    action space in the error when it fails; ``seat`` names the seat there.
    """

    __slots__ = ("act_every", "action_ok", "between", "last_action", "pending", "policy", "seat", "space")

    def __init__(
        self,
        policy: Any,
        act_every: int,
        between: str,
        *,
        action_ok: Callable[[Any], bool] | None = None,
        space: object = None,
        seat: str = "",
    ) -> None:
        self.policy = policy
        self.act_every = act_every
        self.between = between
        self.action_ok = action_ok or _anything
        self.space = space
        self.seat = seat
        #: The action of the last step where it chose (None: none yet this episode).
        self.last_action: Any = None
        #: The action chosen for this step ahead of it (``NO_ACTION`` if none).
        self.pending: Any = NO_ACTION

    def due(self, step: int) -> bool:
        """Whether it chooses a new action at ``step`` (steps made so far in the episode)."""
        return step % self.act_every == 0 or self.last_action is None

    def act(self, step: int, observation: Any, default: Any) -> tuple[Any, str]:
        """Its action at ``step`` and the action's source (``bot``, ``bot_repeat`` or ``default``)."""
        if step % self.act_every == 0 or self.last_action is None:
            action = self.pending
            if action is not NO_ACTION:
                self.pending = NO_ACTION
            else:
                action = self.policy.act(observation)
            self.last_action = action
            if not self.action_ok(action):
                raise EnvContractError(
                    f"The policy of {self.seat!r} chose {action!r}, which is not in the seat's action "
                    f"space {self.space}. Fix the policy."
                )
            return action, "bot"
        if self.between == "repeat":
            return self.last_action, "bot_repeat"
        return default, "default"

    def new_episode(self) -> None:
        """Forget the last action and any pending one: the bot chooses at the episode's first step."""
        self.last_action = None
        self.pending = NO_ACTION
