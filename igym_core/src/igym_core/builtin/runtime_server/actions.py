"""Action choice: what each seat does at a step (players' keys, bot seats, bots batched across games),
and what the step gave (:class:`StepResult`). The per-seat rules are
:mod:`igym_core.builtin.seat_actions`, which the pyodide runtime's browser code uses too."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from igym_core.builtin.seat_actions import NO_ACTION, SeatBot, discrete_check, human_action

if TYPE_CHECKING:
    from igym_core.builtin.runtime_server.game import ServerGame

__all__ = ["NO_ACTION", "ActionChoice", "BotSeat", "StepResult", "act_batched"]

log = structlog.get_logger(__name__)


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


class BotSeat(SeatBot):
    """A bot seat of a server game: :class:`~igym_core.builtin.seat_actions.SeatBot` with the
    gymnasium space check, and the policy's batcher. Its ``pending`` action is the one the
    ticker's batched call chose for this tick."""

    __slots__ = ("batcher",)

    def __init__(self, policy: Any, act_every: int, between: str, space: Any, *, seat: str = "") -> None:
        from igym_core.policies.interface import batcher_of

        super().__init__(policy, act_every, between, action_ok=action_check(space), space=space, seat=seat)
        #: The policy's shared batcher, if it evaluates in batches across games (see Ticker).
        self.batcher = batcher_of(policy)


def action_check(space: Any) -> Callable[[Any], bool]:
    """A test for actions in ``space``: inline for a Discrete space (a bot acts at every tick), the
    space's own ``contains`` otherwise."""
    from gymnasium import spaces

    contains = functools.partial(_contains, space)
    if isinstance(space, spaces.Discrete):
        return discrete_check(int(space.n), int(space.start), contains)
    return contains


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
                prepared.load_policy(name, self.env),
                bot.act_every,
                bot.between,
                self.env.action_space(agent),
                seat=name,
            )
        for seat in info.seats:  # a human seat left to a bot (a group that stays together, a member gone)
            if seat.participant_id is None and seat.agent in prepared.human_seats:
                agent = self.agent_of_name[seat.agent]
                bots[agent] = BotSeat(
                    prepared.load_partner_policy(seat.agent, self.env),
                    1,
                    "repeat",
                    self.env.action_space(agent),
                    seat=seat.agent,
                )
        order = {agent: index for index, agent in enumerate(prepared.agents)}
        batched = sorted(
            ((agent, bot) for agent, bot in bots.items() if bot.batcher is not None),
            key=lambda item: order.get(item[0], len(order)),
        )
        return bots, batched

    def tell_observed(self: ServerGame) -> None:
        """Tell the env which seats' observations are read (the bots', or all when the scene
        records observations) if that changed: at the start, and when a bot takes or gives back a
        seat. An env with ``set_observed_agents`` then builds no observation nobody reads (see
        ``igym_core.envs.contract``)."""
        from igym_core.envs import observed_agents_for, tell_observed_agents

        observed = observed_agents_for(self.bots, self.prepared.agents, record_observations=self._record_obs)
        if observed != self.observed_agents:
            self.observed_agents = observed
            fresh = tell_observed_agents(self.env, observed)
            if fresh:  # the current observations of seats a bot has just taken
                self.obs = {**self.obs, **fresh}

    def due_batched(self: ServerGame) -> list[tuple[Any, BotSeat]]:
        """The batched bots that choose a new action at this tick's step, in env agent order."""
        step = self.step
        live = self.env.agents
        return [(agent, bot) for agent, bot in self.batched_bots if agent in live and bot.due(step)]

    def choose_actions(
        self: ServerGame,
    ) -> tuple[dict[Any, Any], dict[Any, str], dict[Any, tuple[str, ...]]]:
        """Every live agent's action for this step, where it came from (``human``, ``default``,
        ``absent``, ``bot``, ``bot_repeat``) and, for human seats, the keys that made it.

        On the hot path (every game, every tick): locals over attribute look-ups.
        """
        table = self.table
        default = table.default
        held_mode = self._held_mode
        human_agents = self.human_agents
        bots = self.bots
        obs = self.obs
        actions: dict[Any, Any] = {}
        sources: dict[Any, str] = {}
        held_by_agent: dict[Any, tuple[str, ...]] = {}
        step = self.step
        for agent in self.env.agents:
            player = human_agents.get(agent)
            if player is not None:
                if player.absent_since is not None:  # disconnected, within the grace period
                    held_by_agent[agent] = ()
                    actions[agent] = default
                    sources[agent] = "absent"
                    continue
                actions[agent], sources[agent], held_by_agent[agent] = human_action(
                    table, held_mode, player.held, player.presses
                )
                continue
            bot = bots.get(agent)
            if bot is None:
                actions[agent] = default
                sources[agent] = "default"
            else:
                actions[agent], sources[agent] = bot.act(step, obs.get(agent), default)
        return actions, sources, held_by_agent
