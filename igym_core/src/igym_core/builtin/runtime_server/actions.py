"""Action choice: what each seat does at a step (players' keys, bot seats, bots batched across games),
and what the step gave (:class:`StepResult`)."""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from igym_core.errors import EnvContractError

if TYPE_CHECKING:
    from igym_core.builtin.runtime_server.game import ServerGame

__all__ = ["NO_ACTION", "ActionChoice", "BotSeat", "StepResult", "act_batched"]

log = structlog.get_logger(__name__)

NO_ACTION = object()


@attrs.define(slots=True)
class StepResult:
    """What one env step gave, for the parts of the tick after it (records, render, frame).

    A slots class built by position in one place (:meth:`ServerGame._step_env`): it is made for
    every game at every tick, and building it with keywords costs twice as much (measured: 350 ns
    by position, 670 ns with keywords, 280 ns for the plain tuple it replaces).
    """

    actions: dict[Any, Any]
    sources: dict[Any, str]
    """Where each agent's action came from (``human``, ``default``, ``absent``, ``bot``, …)."""
    held: dict[Any, tuple[str, ...]]
    """The keys behind each human seat's action."""
    obs: dict[Any, Any]
    rewards: dict[Any, Any]
    terminations: dict[Any, Any]
    truncations: dict[Any, Any]
    infos: dict[Any, Any]
    step_s: float
    """Wall time of env.step."""
    env_cpu_s: float | None
    """CPU time of env.step, at the ticks that sample it (else None)."""
    t_server_ms: float
    """Server wall clock (epoch ms) when the step was made."""


class BotSeat:
    __slots__ = ("act_every", "action_ok", "batcher", "between", "last_action", "pending", "policy")

    def __init__(self, policy: Any, act_every: int, between: str, space: Any) -> None:
        from igym_core.policies.interface import batcher_of

        self.policy = policy
        #: Whether an action the policy chose is in the seat's action space.
        self.action_ok = action_check(space)
        self.act_every = act_every
        self.between = between
        self.last_action: Any = None
        #: The policy's shared batcher, if it evaluates in batches across games (see Ticker).
        self.batcher = batcher_of(policy)
        #: The action the ticker's batched call chose for this tick (``NO_ACTION`` if none).
        self.pending: Any = NO_ACTION


def action_check(space: Any) -> Callable[[Any], bool]:
    """A test for actions in ``space``: inline for a Discrete space (a bot acts at every tick), the
    space's own ``contains`` otherwise."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        low, high = int(space.start), int(space.start) + int(space.n)

        def discrete(action: Any) -> bool:
            if isinstance(action, numbers.Integral) and not isinstance(action, bool):
                return low <= action < high
            return _contains(space, action)

        return discrete
    return functools.partial(_contains, space)


def _contains(space: Any, action: Any) -> bool:
    try:
        return bool(space.contains(action))
    except Exception:
        return False


def act_batched(games: Sequence[ServerGame]) -> None:
    """Evaluate, in one call per batcher, every batched bot of ``games`` that acts at this tick.

    Games in ticker order (start order), seats in env order: a deterministic order, so seeded
    sampling reproduces. The actions wait in each bot's ``pending`` for its game's step. If a
    batcher fails, its bots are left without a pending action and each asks its own policy.
    """
    groups: dict[int, tuple[Any, list[Any], list[Any], list[BotSeat]]] = {}
    for game in games:
        if game.batched_bots and game.phase == "playing":
            for agent, bot in game.due_batched():
                group = groups.get(id(bot.batcher))
                if group is None:
                    group = groups[id(bot.batcher)] = (bot.batcher, [], [], [])
                group[1].append(bot.policy)
                group[2].append(game.obs.get(agent))
                group[3].append(bot)
    for batcher, policies, observations, bots in groups.values():
        try:
            actions = list(batcher.act_batch(policies, observations))
            if len(actions) != len(bots):
                raise ValueError(f"act_batch returned {len(actions)} actions for {len(bots)} policies")
        except Exception:
            log.exception("batched_act_failed", batcher=type(batcher).__qualname__, bots=len(bots))
            continue
        for bot, action in zip(bots, actions, strict=True):
            bot.pending = action


class ActionChoice:
    """The action-choice part of :class:`~igym_core.builtin.runtime_server.game.ServerGame`."""

    def _seat_bots(
        self: ServerGame, prepared: Any, info: Any
    ) -> tuple[dict[Any, BotSeat], list[tuple[Any, BotSeat]]]:
        """The bot of every bot seat (and of a human seat nobody took), and those of them whose
        policies evaluate in batches across games, in env agent order."""
        bots: dict[Any, BotSeat] = {}
        for name, (_config, bot) in prepared.bots.items():
            agent = self.agent_of_name[name]
            bots[agent] = BotSeat(
                prepared.load_policy(name, self.env), bot.act_every, bot.between, self.env.action_space(agent)
            )
        for seat in info.seats:  # a human seat left to a bot (a group that stays together, a member gone)
            if seat.participant_id is None and seat.agent in prepared.human_seats:
                agent = self.agent_of_name[seat.agent]
                bots[agent] = BotSeat(
                    prepared.load_partner_policy(seat.agent, self.env),
                    1,
                    "repeat",
                    self.env.action_space(agent),
                )
        order = {agent: index for index, agent in enumerate(prepared.agents)}
        batched = sorted(
            ((agent, bot) for agent, bot in bots.items() if bot.batcher is not None),
            key=lambda item: order.get(item[0], len(order)),
        )
        return bots, batched

    def due_batched(self: ServerGame) -> list[tuple[Any, BotSeat]]:
        """The batched bots that choose a new action at this tick's step, in env agent order."""
        step = self.step
        live = self.env.agents
        return [
            (agent, bot)
            for agent, bot in self.batched_bots
            if agent in live and (step % bot.act_every == 0 or bot.last_action is None)
        ]

    def choose_actions(
        self: ServerGame,
    ) -> tuple[dict[Any, Any], dict[Any, str], dict[Any, tuple[str, ...]]]:
        """Every live agent's action for this step, where it came from (``human``, ``default``,
        ``absent``, ``bot``, ``bot_repeat``) and, for human seats, the keys that made it.

        On the hot path (every game, every tick): locals over attribute look-ups.
        """
        table = self.table
        human_agents = self.human_agents
        actions: dict[Any, Any] = {}
        sources: dict[Any, str] = {}
        held_by_agent: dict[Any, tuple[str, ...]] = {}
        step = self.step
        for agent in self.env.agents:
            player = human_agents.get(agent)
            if player is not None:
                if player.absent_since is not None:  # disconnected, within the grace period
                    held_by_agent[agent] = ()
                    actions[agent] = table.default
                    sources[agent] = "absent"
                    continue
                if self._held_mode:
                    held = player.held
                else:
                    held = (player.presses.popleft(),) if player.presses else ()
                action, mapped = table.lookup(held)
                held_by_agent[agent] = held
                actions[agent] = action
                sources[agent] = "human" if mapped else "default"
                continue
            bot = self.bots.get(agent)
            if bot is None:
                actions[agent] = table.default
                sources[agent] = "default"
            elif step % bot.act_every == 0 or bot.last_action is None:
                pending = bot.pending
                if pending is not NO_ACTION:  # chosen by the ticker's batched call
                    bot.pending = NO_ACTION
                    bot.last_action = pending
                else:
                    bot.last_action = bot.policy.act(self.obs.get(agent))
                if not bot.action_ok(bot.last_action):
                    raise EnvContractError(
                        f"The policy of {self.agent_names[agent]!r} chose {bot.last_action!r}, which is not "
                        f"in the seat's action space {self.env.action_space(agent)}. Fix the policy."
                    )
                actions[agent] = bot.last_action
                sources[agent] = "bot"
            elif bot.between == "repeat":
                actions[agent] = bot.last_action
                sources[agent] = "bot_repeat"
            else:
                actions[agent] = table.default
                sources[agent] = "default"
        return actions, sources, held_by_agent
