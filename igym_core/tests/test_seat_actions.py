"""The per-seat action rules both runtimes use (igym_core.builtin.seat_actions): when a bot chooses,
what it plays in between, the space check, and a human seat's keys in held and press mode."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from igym_core.builtin.gym_keys import ActionTable
from igym_core.builtin.runtime_server.actions import BotSeat
from igym_core.builtin.seat_actions import NO_ACTION, SeatBot, discrete_check, human_action
from igym_core.errors import EnvContractError


class Counting:
    """A policy whose n-th choice is 100 + n, and which notes the observations it saw."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def act(self, observation: Any) -> int:
        self.seen.append(observation)
        return 100 + len(self.seen)


# One episode: its steps, and at which steps an action was chosen ahead (a batched call, JavaScript).
episodes = st.lists(st.tuples(st.integers(1, 12), st.sets(st.integers(0, 11))), min_size=1, max_size=4)


@given(act_every=st.integers(1, 5), between=st.sampled_from(["repeat", "default"]), plan=episodes)
def test_a_bot_chooses_every_act_every_steps_and_repeats_or_defaults_in_between(
    act_every: int, between: str, plan: list[tuple[int, set[int]]]
) -> None:
    policy = Counting()
    bot = SeatBot(policy, act_every, between, seat="right")
    calls = 0
    for steps, ahead in plan:
        bot.new_episode()
        last = None
        for step in range(steps):
            chooses = step % act_every == 0  # and at step 0, where it has no action yet
            assert bot.due(step) is chooses
            if chooses and step in ahead:
                bot.pending = ("ahead", step)
            action, source = bot.act(step, ("obs", step), default=-1)
            if chooses:
                if step in ahead:
                    assert action == ("ahead", step)  # the policy is not asked
                else:
                    calls += 1
                    assert action == 100 + calls and policy.seen[-1] == ("obs", step)
                assert source == "bot" and bot.pending is NO_ACTION
                last = action
            elif between == "repeat":
                assert (action, source) == (last, "bot_repeat")
            else:
                assert (action, source) == (-1, "default")
    assert len(policy.seen) == calls


def test_a_chosen_action_outside_the_space_fails_the_game_naming_the_seat_and_space() -> None:
    bot = SeatBot(Counting(), 1, "repeat", action_ok=discrete_check(5), space="Discrete(5)", seat="right")
    with pytest.raises(
        EnvContractError, match=r"'right' chose 101, which is not in the seat's action space Discrete\(5\)"
    ):
        bot.act(0, None, default=0)


def test_the_discrete_check_takes_integers_in_range_only() -> None:
    check = discrete_check(3, start=-1)
    assert [check(v) for v in (-2, -1, 0, 1, 2)] == [False, True, True, True, False]
    assert not check(True) and not check(0.0) and not check("0")
    assert discrete_check(3, otherwise=lambda v: v == "ok")("ok")


def test_the_server_bot_seat_is_the_shared_bot_with_gymnasiums_space() -> None:
    from gymnasium import spaces

    bot = BotSeat(Counting(), 2, "default", spaces.Discrete(2, start=100), seat="left")
    assert isinstance(bot, SeatBot)
    assert bot.act(0, None, default=0) == (101, "bot")
    assert bot.act(1, None, default=0) == (0, "default")
    with pytest.raises(EnvContractError, match=r"'left' chose 102, .* Discrete\(2, start=100\)"):
        bot.act(2, None, default=0)


def test_a_human_seat_uses_held_keys_or_one_press_per_step() -> None:
    table = ActionTable({"ArrowLeft": 1, "ArrowRight": 2, "ArrowLeft+ArrowRight": 3}, 0)
    presses: deque[str] = deque(["ArrowRight", "x"])
    assert human_action(table, True, ("ArrowLeft", "ArrowRight"), presses) == (
        3,
        "human",
        ("ArrowLeft", "ArrowRight"),
    )
    assert len(presses) == 2  # held mode leaves presses alone
    assert human_action(table, False, ("ArrowLeft",), presses) == (2, "human", ("ArrowRight",))
    assert human_action(table, False, (), presses) == (0, "default", ("x",))
    assert human_action(table, False, (), presses) == (0, "default", ())
