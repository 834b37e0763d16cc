"""Recruitment platforms: a plugin kind that reads a platform's URL parameters, names who the
participant is there, and builds the way back to the platform for each outcome.

An experiment names one (``Experiment(recruitment=Prolific(codes={...}))``); built-ins are
``prolific`` and ``mturk`` (``igym_core.builtin.recruiters``), and a plugin adds another through
``igym_register_recruiters``. Core asks the recruiter, never a platform by name.

Outcomes the platforms see (:data:`PLATFORM_OUTCOMES`) are a small fixed set; igym's own outcomes
(``Participant.outcome``) map onto them through :data:`OUTCOME_TO_PLATFORM`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

if TYPE_CHECKING:
    from igym_core.config.experiment import Experiment

__all__ = [
    "OUTCOME_TO_PLATFORM",
    "PLATFORM_OUTCOMES",
    "Recruiter",
    "WayBack",
    "platform_outcome",
]

PLATFORM_OUTCOMES: tuple[str, ...] = ("completed", "screened_out", "no_partner", "partner_left", "timed_out")
"""What a recruitment platform is told about how the participant's study ended."""

OUTCOME_TO_PLATFORM: Mapping[str, str] = {
    "completed": "completed",
    "screened_out": "screened_out",
    # Their browser could not run the study's game: a technical exclusion, like screening.
    "runtime_load_failed": "screened_out",
    "waiting_timeout": "no_partner",
    "no_partner": "no_partner",
    "partner_left": "partner_left",
    # Nobody played the game for the scene's abandon_after_s: the participant went away.
    "game_abandoned": "timed_out",
    # The scene's slow-connection rule ended their game (GymScene(slow_connection=...)).
    "slow_connection": "timed_out",
    "timed_out": "timed_out",
    # A browser-run game whose page ended episodes before the env did (pyodide runtime): the
    # participant went on and finished the study; the data marks the episodes (end_reason).
    "episodes_cut_short": "completed",
    # igym_unity: the build could not load (a technical exclusion), or the scene's time limit passed.
    "unity_load_failed": "screened_out",
    "unity_timeout": "timed_out",
}
"""igym's outcomes (``Participant.outcome``) → the platform outcome they are reported as."""


def platform_outcome(outcome: str) -> str:
    """The platform outcome for one of igym's; an unknown one (a plugin's) counts as ``timed_out``
    only if it is not itself a platform outcome."""
    return OUTCOME_TO_PLATFORM.get(outcome, outcome if outcome in PLATFORM_OUTCOMES else "timed_out")


@attrs.frozen(kw_only=True)
class WayBack:
    """How the page returns the participant to the platform once their data is stored.

    ``method="get"``: the page goes to ``url``. ``method="post"``: the page submits a form with
    ``fields`` to ``url`` (MTurk's externalSubmit). ``code`` is the completion code shown, if any.
    """

    url: str
    method: Literal["get", "post"] = "get"
    fields: Mapping[str, str] = attrs.field(factory=dict)
    code: str | None = None
    outcome: str = "completed"

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url, "method": self.method, "outcome": self.outcome}
        if self.fields:
            out["fields"] = dict(self.fields)
        if self.code is not None:
            out["code"] = self.code
        return out


@attrs.frozen(kw_only=True)
class Recruiter:
    """Base of every recruitment platform's config; a plugin subclasses it with its own ``kind``.

    ``once_per_person`` (default True): a person (:meth:`person_key`) who has already finished the
    study is told so and not let in again from a new browser (their own browser shows their end
    page again).
    """

    kind: ClassVar[str] = "recruiter"
    once_per_person: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))

    def url_params(self) -> tuple[str, ...]:
        """The platform's URL parameters, recorded with every record of the participant."""
        return ()

    def identity(self, params: Mapping[str, str]) -> dict[str, str]:
        """The parameters that name the participant on the platform (recorded in ``joined``)."""
        return {}

    def person_key(self, params: Mapping[str, str]) -> str | None:
        """One person on the platform (for ``once_per_person``); None when the link does not say."""
        return None

    def resume_key(self, params: Mapping[str, str]) -> str | None:
        """One participation on the platform (a person's one submission), or None when the link
        does not say it completely. A browser without the participant's token whose link has the
        key of an unfinished participant resumes that participant (a second browser, a private
        window) instead of starting another."""
        return None

    def preview_message(self, params: Mapping[str, str]) -> str | None:
        """A text to show instead of starting the study (a platform's preview mode), or None."""
        return None

    def entry_refusal(self, params: Mapping[str, str]) -> str | None:
        """Why a new participant with these link parameters cannot start (for them to read), or None."""
        return None

    def code_for(self, outcome: str) -> str | None:
        """The completion code for a platform outcome (:data:`PLATFORM_OUTCOMES`), or None."""
        return None

    def way_back(self, outcome: str, params: Mapping[str, str]) -> WayBack | None:
        """How the page returns to the platform for a platform outcome; None: it stays."""
        return None

    def form_targets(self) -> tuple[str, ...]:
        """Origins the page may submit a form to (the participant page's Content-Security-Policy
        ``form-action``); only for a way back with ``method="post"``."""
        return ()

    def check_problems(self) -> list[str]:
        """Errors ``igym check`` refuses, as ``$.recruitment...: problem, fix``."""
        return []

    def check_warnings(self, experiment: Experiment) -> list[str]:
        """Things ``igym check`` warns about but serves."""
        return []


def first_value(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return value if isinstance(value, str) and value.strip() else None
