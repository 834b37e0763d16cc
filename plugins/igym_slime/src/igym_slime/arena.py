"""Bots against bots: play games and count wins (used by the strength tests and the training script).

A *policy* here is anything with ``act(observation) -> action`` or a function ``observation ->
action``; one with ``reset(seed=...)`` is reset before each game, as igym does at every episode.
A game is one episode; the winner is whoever has more lives left when it ends (at ``max_steps``
with equal lives it is a draw). Bots swap sides every game, so neither side's advantage counts.

A seat's :class:`~igym_core.Bot` (a policy with ``act_every`` and ``between``, such as the strength
presets of :func:`igym_slime.bots.slime_bot`) plays here as it plays in a game scene:
:class:`BotPlayer` loads its policy through the installed policy loaders and chooses actions with
the runtimes' own rule (:class:`igym_core.builtin.seat_actions.SeatBot`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from igym_slime.env import AGENTS, NOOP, SlimeVolleyEnv

if TYPE_CHECKING:
    from igym_core import Bot
    from igym_core.plugins.registry import Registry

__all__ = ["BotPlayer", "RandomOpponent", "Record", "as_act", "play_game", "play_games", "random_policy"]


def as_act(policy: Any) -> Callable[[Any], Any]:
    """The ``observation -> action`` function of a policy object or function."""
    act = getattr(policy, "act", None)
    return act if callable(act) else policy


def random_policy(seed: int) -> Callable[[Any], int]:
    """Uniformly random actions from a seeded stream."""
    rng = random.Random(seed)
    return lambda _observation: rng.randrange(6)


@attrs.frozen
class Record:
    """Results of a series of games, from the first policy's point of view."""

    wins: int
    losses: int
    draws: int
    points_for: int
    points_against: int
    steps: int

    @property
    def games(self) -> int:
        return self.wins + self.losses + self.draws

    @property
    def win_rate(self) -> float:
        return self.wins / self.games if self.games else 0.0

    def __str__(self) -> str:
        return (
            f"{self.wins}-{self.losses}-{self.draws} (win rate {self.win_rate:.0%}; points "
            f"{self.points_for}:{self.points_against})"
        )


def play_game(
    left: Any, right: Any, *, seed: int, lives: int = 5, max_steps: int = 3000
) -> tuple[int, int, int]:
    """One episode: (left's lives left, right's lives left, steps)."""
    env = SlimeVolleyEnv(lives=lives, max_steps=max_steps)
    acts = {}
    for agent, policy in zip(AGENTS, (left, right), strict=True):
        reset = getattr(policy, "reset", None)
        if callable(reset):
            reset(seed=seed * 2 + (agent == "right"))
        acts[agent] = as_act(policy)
    observations, _ = env.reset(seed=seed)
    while env.agents:
        actions = {agent: acts[agent](observations[agent]) for agent in AGENTS}
        observations, *_ = env.step(actions)
    return env.lives[0], env.lives[1], env.steps


def play_games(
    policy: Any,
    opponent: Any,
    *,
    games: int,
    seed: int = 0,
    lives: int = 5,
    max_steps: int = 3000,
) -> Record:
    """``games`` games of ``policy`` against ``opponent``, swapping sides every game.

    ``opponent`` may be a factory ``(game_index) -> policy`` (marked by being a class or having
    ``opponent.per_game = True``), e.g. for a freshly seeded random policy per game.
    """
    wins = losses = draws = points_for = points_against = steps = 0
    per_game = getattr(opponent, "per_game", False)
    for game in range(games):
        other = opponent(game) if per_game else opponent
        game_seed = seed * 100_003 + game
        if game % 2 == 0:
            mine, theirs, n = play_game(policy, other, seed=game_seed, lives=lives, max_steps=max_steps)
        else:
            theirs, mine, n = play_game(other, policy, seed=game_seed, lives=lives, max_steps=max_steps)
        steps += n
        points_for += lives - theirs
        points_against += lives - mine
        if mine > theirs:
            wins += 1
        elif mine < theirs:
            losses += 1
        else:
            draws += 1
    return Record(wins, losses, draws, points_for, points_against, steps)


class RandomOpponent:
    """A fresh seeded random policy for every game (``play_games(policy, RandomOpponent(seed))``)."""

    per_game = True

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def __call__(self, game: int) -> Callable[[Any], int]:
        return random_policy(self.seed * 7919 + game)


class BotPlayer:
    """A seat's :class:`~igym_core.Bot` as an arena policy, played as a game scene plays it.

    Its policy is built by the installed policy loader of its kind (igym-onnx's for the trained
    bot), re-seeded at every game (``reset``), and chooses every ``act_every`` steps; in between it
    repeats its last action or plays nothing, as ``between`` says. ``registry``: the plugin registry
    to load with (default: one with igym-onnx, whose policy kind the trained presets use).
    """

    def __init__(self, bot: Bot, *, registry: Registry | None = None, base_dir: Path | None = None) -> None:
        from igym_core.builtin.seat_actions import SeatBot
        from igym_core.policies.spec import load_policy, policy_config_from

        registry = registry if registry is not None else _onnx_registry()
        env = SlimeVolleyEnv()
        self.policy = load_policy(
            policy_config_from(bot.policy, registry),
            registry,
            agent="right",
            action_space=env.action_space("right"),
            observation_space=env.observation_space("right"),
            base_dir=base_dir,
        )
        self._seat = SeatBot(self.policy, bot.act_every, bot.between)
        self._step = 0

    def reset(self, seed: int) -> None:
        reset = getattr(self.policy, "reset", None)
        if callable(reset):
            reset(seed=seed)
        self._seat.new_episode()
        self._step = 0

    def act(self, observation: Any) -> Any:
        action, _source = self._seat.act(self._step, observation, NOOP)
        self._step += 1
        return action


def _onnx_registry() -> Registry:
    from igym_core.plugins.manager import create_plugin_manager
    from igym_onnx import plugin as onnx_plugin

    return create_plugin_manager(autoload=False, extra=[onnx_plugin], strict=True, quiet=True).registry
