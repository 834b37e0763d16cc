"""Built-in condition assignment: balanced, in permuted blocks (see ``ConditionLedger``)."""

from __future__ import annotations

from igym_core.config.experiment import Experiment
from igym_core.plugins.markers import hookimpl
from igym_core.session.conditions import ConditionLedger
from igym_core.session.participant import Participant


@hookimpl(trylast=True)
def igym_resolve_condition(participant: Participant, experiment: Experiment, ledger: ConditionLedger) -> str:
    return ledger.next_balanced()
