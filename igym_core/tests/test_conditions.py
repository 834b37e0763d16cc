"""Condition assignment: balanced permuted blocks, reproducible, replaceable by a plugin."""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from igym_core import ByCondition, EndScene, Experiment, StartScene, StaticScene, hookimpl
from igym_core.errors import PluginError
from igym_core.plugins.manager import create_plugin_manager
from igym_core.session.conditions import ConditionLedger
from igym_core.session.participant import Participant
from igym_core.testing import ScriptedParticipant, make_test_app, read_records

_conditions = st.lists(
    st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), min_size=1, max_size=7, unique=True
)


def _assign(ledger: ConditionLedger, n: int) -> list[str]:
    out = []
    for _ in range(n):
        condition = ledger.next_balanced()
        ledger.record(condition)
        out.append(condition)
    return out


@settings(max_examples=200, deadline=None)
@given(conditions=_conditions, arrivals=st.integers(0, 120), seed=st.integers(-(2**63), 2**63))
def test_ledger_is_balanced_after_every_assignment(conditions, arrivals, seed):
    ledger = ConditionLedger(conditions, seed=seed)
    counts: Counter[str] = Counter()
    for n in range(1, arrivals + 1):
        condition = ledger.next_balanced()
        assert condition in conditions
        ledger.record(condition)
        counts[condition] += 1
        per_condition = [counts[c] for c in conditions]
        assert max(per_condition) - min(per_condition) <= 1
        if n % len(conditions) == 0:
            assert per_condition == [n // len(conditions)] * len(conditions)
    assert dict(ledger.counts) == {c: counts[c] for c in conditions}


@settings(max_examples=100, deadline=None)
@given(conditions=_conditions, arrivals=st.integers(0, 60), seed=st.integers(0, 2**32))
def test_same_seed_gives_the_same_assignments(conditions, arrivals, seed):
    first = _assign(ConditionLedger(conditions, seed=seed), arrivals)
    second = _assign(ConditionLedger(conditions, seed=seed), arrivals)
    assert first == second


@settings(max_examples=50, deadline=None)
@given(conditions=_conditions, done=st.integers(0, 40), more=st.integers(1, 40), seed=st.integers(0, 2**32))
def test_restoring_the_ledger_continues_the_same_sequence(conditions, done, more, seed):
    uninterrupted = _assign(ConditionLedger(conditions, seed=seed), done + more)
    restarted = ConditionLedger(conditions, seed=seed)
    restarted.restore(uninterrupted[:done])
    assert _assign(restarted, more) == uninterrupted[done:]


def test_block_order_depends_on_the_seed():
    conditions = ["a", "b", "c", "d"]
    sequences = {tuple(_assign(ConditionLedger(conditions, seed=s), 40)) for s in range(20)}
    assert len(sequences) > 1
    # and within one seed, blocks are not all in the same order
    blocks = {tuple(ConditionLedger(conditions, seed=1).block_order(b)) for b in range(20)}
    assert len(blocks) > 1


def test_no_conditions_is_an_error_not_a_silent_choice():
    with pytest.raises(LookupError):
        ConditionLedger([], seed=0).next_balanced()


# --- through the server ----------------------------------------------------------------------------

CONDITIONS = ("control", "treatment", "placebo")


def _study_with_conditions() -> Experiment:
    return Experiment(
        experiment_id="conditions_study",
        seed=11,
        conditions=CONDITIONS,
        scenes=(
            StartScene(scene_id="consent"),
            ByCondition(branches={c: (StaticScene(scene_id=f"page_{c}"),) for c in CONDITIONS}),
            EndScene(scene_id="done"),
        ),
    )


def test_participants_get_balanced_conditions_recorded(tmp_path):
    experiment = _study_with_conditions()
    app = make_test_app(experiment, tmp_path / "data")
    study = app.state.study
    arrivals = 11
    shown: dict[str, str] = {}
    with TestClient(app) as client, ExitStack() as open_sockets:
        for n in range(1, arrivals + 1):
            p = open_sockets.enter_context(ScriptedParticipant(client, params={"PROLIFIC_PID": f"pp{n}"}))
            counts = [study.ledger.counts[c] for c in CONDITIONS]
            assert sum(counts) == n
            assert max(counts) - min(counts) <= 1
            # The branch shown is the assigned condition's.
            page = p.submit({"agree": True})
            shown[p.participant_id] = page["scene"]["scene_id"]
    events = read_records(tmp_path / "data", experiment.experiment_id, "sessions")
    assigned = {
        e["participant_id"]: e["detail"]["condition"] for e in events if e["event"] == "condition_assigned"
    }
    assert len(assigned) == arrivals
    assert set(assigned) == set(shown)
    for pid, condition in assigned.items():
        assert shown[pid] == f"page_{condition}"
    counts = Counter(assigned.values())
    assert set(counts) == set(CONDITIONS)
    assert max(counts.values()) - min(counts.values()) <= 1
    # every later record of a participant carries the condition
    for e in events:
        if e["event"] not in ("joined",):
            assert e["condition"] == assigned[e["participant_id"]]
    responses = read_records(tmp_path / "data", experiment.experiment_id, "responses")
    assert all(r["condition"] == assigned[r["participant_id"]] for r in responses)
    # the sequence was drawn for the assigned condition
    drawn = {e["participant_id"]: e["detail"]["sequence"] for e in events if e["event"] == "sequence_drawn"}
    for pid, condition in assigned.items():
        assert [s["scene_id"] for s in drawn[pid]] == ["consent", f"page_{condition}", "done"]


def test_a_resumed_participant_keeps_their_condition(tmp_path):
    app = make_test_app(_study_with_conditions(), tmp_path / "data")
    with TestClient(app) as client:
        with ScriptedParticipant(client) as first:
            first.submit({"agree": True})
            page = first.scene["scene"]["scene_id"]
            token = first.token
        for _ in range(3):
            with ScriptedParticipant(client, token=token) as again:
                assert again.welcome["resumed"] is True
                assert again.scene["scene"]["scene_id"] == page
        assert sum(app.state.study.ledger.counts.values()) == 1


class AlwaysPlacebo:
    @hookimpl
    def igym_resolve_condition(self, participant: Participant, experiment: Experiment, ledger: Any) -> str:
        return "placebo"


class Undecided:
    def __init__(self) -> None:
        self.asked = 0

    @hookimpl
    def igym_resolve_condition(self, participant: Participant, experiment: Experiment, ledger: Any) -> None:
        self.asked += 1
        return None


def test_a_plugin_overriding_condition_assignment_wins(igym_pm, register_plugin, tmp_path):
    register_plugin(AlwaysPlacebo(), name="always-placebo")
    app = make_test_app(_study_with_conditions(), tmp_path / "data", plugins=igym_pm)
    with TestClient(app) as client:
        for n in range(4):
            with ScriptedParticipant(client, params={"PROLIFIC_PID": f"x{n}"}) as p:
                assert p.submit({"agree": True})["scene"]["scene_id"] == "page_placebo"
    events = read_records(tmp_path / "data", "conditions_study", "sessions")
    assert [e["detail"]["condition"] for e in events if e["event"] == "condition_assigned"] == ["placebo"] * 4
    # the ledger counts what was assigned, whoever assigned it
    assert app.state.study.ledger.counts["placebo"] == 4


def test_a_plugin_returning_none_defers_to_the_builtin(igym_pm, register_plugin):
    undecided = Undecided()
    register_plugin(undecided, name="undecided")
    experiment = _study_with_conditions()
    ledger = ConditionLedger(experiment.conditions, seed=experiment.seed)
    someone = Participant(participant_id="p", token="t", params={})
    condition = igym_pm.resolve_condition(participant=someone, experiment=experiment, ledger=ledger)
    assert condition == ledger.next_balanced()
    assert undecided.asked == 1


def test_a_condition_outside_the_experiment_is_refused():
    class Wrong:
        @hookimpl
        def igym_resolve_condition(self, participant: Any, experiment: Any, ledger: Any) -> str:
            return "nonexistent"

    manager = create_plugin_manager(autoload=False, extra=[Wrong()])
    with pytest.raises(PluginError, match="'nonexistent'"):
        _resolve_for_new_participant(manager)


def test_blocking_the_builtin_without_a_replacement_is_a_clear_error():
    manager = create_plugin_manager(autoload=False, blocked=["igym.conditions_balanced"])
    with pytest.raises(PluginError, match="conditions_balanced"):
        _resolve_for_new_participant(manager)


def _resolve_for_new_participant(manager: Any) -> str:
    experiment = _study_with_conditions()
    return manager.resolve_condition(
        participant=Participant(participant_id="p", token="t", params={}),
        experiment=experiment,
        ledger=ConditionLedger(experiment.conditions, seed=0),
    )
