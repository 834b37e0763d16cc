"""The waiting room under any interleaving of arrivals, departures, reconnects and timeouts.

A hypothesis state machine drives a :class:`Lobby` with the built-in matchmakers and checks, after
every step: nobody is ever in two games, no full group is left waiting, and nobody is lost (each
participant who arrived is matched, timed out, departed, or still waiting; at the end, after
enough time has passed, nobody is still waiting).
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from igym_core.builtin.matchmakers import ConditionMatchmaker, FifoMatchmaker
from igym_core.session.lobby import Departed, GroupRef, Lobby, Matched, TimedOut

TIMEOUT = 30.0
GRACE = 5.0


class LobbyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.lobby: Lobby | None = None
        self.arrived: dict[str, str | None] = {}  # pid -> condition
        self.connected: dict[str, bool] = {}
        self.games: list[tuple[str, ...]] = []
        self.timed_out: set[str] = set()
        self.departed: set[str] = set()
        self.group_ref: GroupRef | None = None
        self.next_id = 0

    @rule(
        seats=st.integers(min_value=2, max_value=3),
        by_condition=st.booleans(),
        fallback=st.sampled_from(["bot", "rematch", "timeout"]),
    )
    @precondition(lambda self: self.lobby is None)
    def open(self, seats, by_condition, fallback):
        matchmaker = ConditionMatchmaker() if by_condition else FifoMatchmaker()
        self.lobby = Lobby(
            seats=[f"seat{i}" for i in range(seats)],
            matchmaker=matchmaker,
            timeout_s=TIMEOUT,
            grace_s=GRACE,
            fallback=fallback,
        )
        self.by_condition = by_condition
        # An earlier group whose members come back to play together (some may never come).
        members = [f"old{i}" for i in range(seats)]
        self.group_ref = GroupRef(group_id="g-old", seats={pid: f"seat{i}" for i, pid in enumerate(members)})

    def _poll(self) -> None:
        assert self.lobby is not None
        for outcome in self.lobby.poll(self.now):
            if isinstance(outcome, Matched):
                self.games.append(outcome.members)
                assert len(outcome.members) + len(outcome.bot_seats) == self.lobby.group_size
                assert len(set(outcome.seats) | set(outcome.bot_seats)) == self.lobby.group_size
                if self.by_condition and outcome.group_of is None:
                    assert len({self.arrived[m] for m in outcome.members}) == 1
            elif isinstance(outcome, TimedOut):
                self.timed_out.add(outcome.participant_id)
            elif isinstance(outcome, Departed):
                self.departed.add(outcome.participant_id)

    @rule(condition=st.sampled_from(["a", "b", None]))
    @precondition(lambda self: self.lobby is not None)
    def arrive(self, condition):
        pid = f"p{self.next_id}"
        self.next_id += 1
        self.arrived[pid] = condition
        self.connected[pid] = True
        self.lobby.arrive(pid, now=self.now, condition=condition)
        self._poll()

    @rule(index=st.integers(min_value=0, max_value=2))
    @precondition(lambda self: self.lobby is not None)
    def old_member_arrives(self, index):
        pid = f"old{index}"
        if pid in self.arrived or pid not in self.group_ref.seats:
            return
        self.arrived[pid] = None
        self.connected[pid] = True
        self.lobby.arrive(pid, now=self.now, group=self.group_ref)
        self._poll()

    @rule(index=st.integers(min_value=0, max_value=2))
    @precondition(lambda self: self.lobby is not None)
    def old_member_is_gone(self, index):
        pid = f"old{index}"
        if pid in self.group_ref.seats and pid not in self.arrived:
            self.lobby.gone(pid)
            self.arrived[pid] = None
            self.departed.add(pid)  # never arrives: accounted for as gone
            self._poll()

    @rule(data=st.data())
    @precondition(lambda self: self.lobby is not None and any(self.lobby.waiting()))
    def disconnect(self, data):
        pid = data.draw(st.sampled_from(self.lobby.waiting()))
        self.connected[pid] = False
        self.lobby.disconnected(pid, now=self.now)
        self._poll()

    @rule(data=st.data())
    @precondition(lambda self: self.lobby is not None and any(self.lobby.waiting()))
    def reconnect(self, data):
        pid = data.draw(st.sampled_from(self.lobby.waiting()))
        self.connected[pid] = True
        self.lobby.connected(pid, now=self.now)
        self._poll()

    @rule(seconds=st.floats(min_value=0.0, max_value=12.0))
    @precondition(lambda self: self.lobby is not None)
    def time_passes(self, seconds):
        self.now += seconds
        self._poll()

    @invariant()
    def nobody_is_in_two_places(self):
        placed = [pid for game in self.games for pid in game]
        assert len(placed) == len(set(placed)), "someone is in two games"
        outcomes = set(placed)
        assert not outcomes & self.timed_out and not set(placed) & (self.departed - self._never_came())
        if self.lobby is not None:
            assert not set(self.lobby.waiting()) & (outcomes | self.timed_out | self.departed)

    def _never_came(self) -> set[str]:
        return {
            pid
            for pid in self.departed
            if pid.startswith("old") and pid not in (self.lobby.waiting() if self.lobby else [])
        }

    @invariant()
    def the_count_is_of_those_who_could_play_together(self):
        """Each player waiting for a new group is told how many could be grouped with them (a
        by_condition room never counts players of another condition)."""
        if self.lobby is None:
            return
        queue = [e for e in self.lobby._entries.values() if e.connected and e.group is None]
        for entry in queue:
            expected = sum(1 for o in queue if not self.by_condition or o.condition == entry.condition)
            assert self.lobby.waiting_count(entry.participant_id, now=self.now) == expected

    @invariant()
    def no_full_group_is_left_waiting(self):
        if self.lobby is None:
            return
        ready = [pid for pid in self.lobby.waiting() if self.connected[pid] and not pid.startswith("old")]
        if self.by_condition:
            for condition in ("a", "b", None):
                same = [pid for pid in ready if self.arrived[pid] == condition]
                assert len(same) < self.lobby.group_size, f"a full group of condition {condition} waits"
        else:
            assert len(ready) < self.lobby.group_size, "a full group waits"

    @invariant()
    def nobody_is_lost(self):
        if self.lobby is None:
            return
        accounted = {pid for game in self.games for pid in game} | self.timed_out | self.departed
        accounted |= set(self.lobby.waiting())
        assert set(self.arrived) <= accounted, set(self.arrived) - accounted

    def teardown(self):
        if self.lobby is None:
            return
        # Enough time for every timeout and grace period: nobody may still be waiting.
        self.now += TIMEOUT + GRACE + 1
        self._poll()
        assert self.lobby.waiting() == []
        self.nobody_is_lost()


TestLobby = LobbyMachine.TestCase
TestLobby.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


def test_a_member_counted_gone_who_comes_back_is_waited_for_again():
    lobby = Lobby(seats=["s0", "s1"], matchmaker=FifoMatchmaker(), timeout_s=30, grace_s=5, fallback="bot")
    group = GroupRef(group_id="g1", seats={"a": "s0", "b": "s1"})
    lobby.gone("b")  # e.g. b timed out in another scene's waiting room earlier
    lobby.arrive("b", now=0.0, group=group)  # ... and is here after all
    lobby.arrive("a", now=1.0, group=group)
    (outcome,) = lobby.poll(1.0)
    assert isinstance(outcome, Matched) and outcome.members == ("a", "b") and outcome.bot_seats == ()
