"""Recruitment platforms: a plugin kind that reads a platform's URL parameters, names who the
participant is there, and builds the way back to the platform for each outcome.

An experiment names one (``Experiment(recruitment=Prolific(codes={...}))``); built-ins are
``prolific`` and ``mturk`` (``igym_core.builtin.recruiters``), and a plugin adds another through
``igym_register_recruiters``. Core asks the recruiter, never a platform by name.

Outcomes the platforms see (:data:`PLATFORM_OUTCOMES`) are a small fixed set. igym's own outcomes
(``Participant.outcome``) are declared by the plugin that produces them (:class:`Outcome`, through
``igym_register_outcomes``; core's in ``igym_core.builtin.outcomes``), each with the platform outcome
it is reported as. An outcome nobody declared is reported as :data:`UNDECLARED_PLATFORM_OUTCOME` and
logged as an error (``outcome_undeclared``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

from igym_core.config.validators import FieldError, did_you_mean, slug
from igym_core.errors import PluginError
from igym_core.plugins.registry import KindRegistry

if TYPE_CHECKING:
    from igym_core.config.experiment import Experiment
    from igym_core.scenes.interface import SceneConfig

__all__ = [
    "PLATFORM_OUTCOMES",
    "UNDECLARED_PLATFORM_OUTCOME",
    "Outcome",
    "OutcomeRegistry",
    "Recruiter",
    "WayBack",
    "outcome_code_problems",
    "platform_outcome",
    "reachable_outcomes",
    "undeclared_outcome_fix",
]

PLATFORM_OUTCOMES: tuple[str, ...] = ("completed", "screened_out", "no_partner", "partner_left", "timed_out")
"""What a recruitment platform is told about how the participant's study ended."""

UNDECLARED_PLATFORM_OUTCOME = "timed_out"
"""What a platform is told for an outcome no plugin declared (a plugin's bug): the platform's "did not
finish" outcome, never ``completed`` (no code is paid for a path nobody described); the error log
names the participant so that the researcher can settle their payment by hand."""


def _one_line(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value.strip() or "\n" in value or len(value) > 200:
        raise FieldError(
            attribute.name, f"expected one line of text (at most 200 characters), got {value!r}."
        )


def _platform(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value not in PLATFORM_OUTCOMES:
        raise FieldError(
            attribute.name,
            f"{value!r} is not a platform outcome; use one of {', '.join(PLATFORM_OUTCOMES)}.",
        )


@attrs.frozen(kw_only=True)
class Outcome:
    """One of igym's outcomes (``Participant.outcome``: how a participant's study ended), declared by
    the plugin that produces it through ``igym_register_outcomes``.

    ``platform``: the platform outcome it is reported as (:data:`PLATFORM_OUTCOMES`); ``meaning``:
    one line for researchers (``igym plugins``, docs); ``reached_in``: given one scene of an
    experiment, why that scene can end a participant's study with this outcome (``"has a waiting
    room"``) or None; ``igym check`` warns about reachable outcomes that the recruiter has no code
    for. None: ``igym check`` does not look for it.
    """

    name: str = attrs.field(validator=slug)
    platform: str = attrs.field(validator=_platform)
    meaning: str = attrs.field(validator=_one_line)
    reached_in: Callable[[SceneConfig], str | None] | None = attrs.field(default=None, eq=False)

    @property
    def kind(self) -> str:
        """The registry key (registries are keyed by ``kind``)."""
        return self.name


class OutcomeRegistry(KindRegistry[Outcome]):
    """The declared outcomes by name; rejects anything but an :class:`Outcome`, and duplicates."""

    def __init__(self) -> None:
        super().__init__("outcome")

    def add(self, value: Outcome, *, provider: str) -> None:
        if not isinstance(value, Outcome):
            raise PluginError(
                f"Plugin {provider!r} registered {value!r} as an outcome, but igym_register_outcomes "
                "must return igym_core.recruitment.Outcome(name=..., platform=..., meaning=...) values."
            )
        super().add(value, provider=provider)


def platform_outcome(outcome: str, declared: KindRegistry[Outcome]) -> str:
    """The platform outcome for one of igym's outcomes; :data:`UNDECLARED_PLATFORM_OUTCOME` for one
    nobody declared (the caller logs it: :func:`undeclared_outcome_fix`)."""
    if outcome in declared:
        return declared.get(outcome).platform
    return UNDECLARED_PLATFORM_OUTCOME


def undeclared_outcome_fix(outcome: str, declared: KindRegistry[Outcome]) -> str:
    """What to do about an outcome nobody declared (for the ``outcome_undeclared`` error)."""
    return (
        f"the outcome {outcome!r} is declared by no installed plugin (declared: "
        f"{', '.join(sorted(declared.kinds()))}), so it is reported as {UNDECLARED_PLATFORM_OUTCOME!r}. "
        "The plugin that ends studies with it must declare it in igym_register_outcomes "
        "(igym_core.recruitment.Outcome(name=..., platform=..., meaning=...)); check this "
        "participant's payment by hand."
    )


def reachable_outcomes(experiment: Experiment, declared: KindRegistry[Outcome]) -> dict[str, list[str]]:
    """Platform outcome → why this experiment can produce it (``$.scenes[0] screens participants
    out``), from each declared outcome's ``reached_in``, in scene order."""
    from igym_core.scenes.stager import iter_scenes

    reachable: dict[str, list[str]] = {}
    for scene, path in iter_scenes(experiment.scenes):
        for outcome in declared.values():
            why = outcome.reached_in(scene) if outcome.reached_in is not None else None
            if why:
                reasons = reachable.setdefault(outcome.platform, [])
                if f"{path} {why}" not in reasons:
                    reasons.append(f"{path} {why}")
    return reachable


def outcome_code_problems(experiment: Experiment, declared: KindRegistry[Outcome]) -> list[str]:
    """``igym check``'s problems with outcome names: ``completed`` must be declared (core's
    ``igym.outcomes`` blocked), and an ``EndScene``'s ``codes_by_outcome`` key that no plugin declares
    would never be used (a misspelt outcome's participants get the default code)."""
    from igym_core.scenes.stager import iter_scenes

    problems = []
    if "completed" not in declared:  # every participant who finishes the ordinary way has it
        problems.append(
            "$: no installed plugin declares the outcome 'completed', so every participant would be "
            "reported as 'timed_out'; unblock the built-in plugin 'igym.outcomes'."
        )
    for scene, path in iter_scenes(experiment.scenes):
        for name in getattr(scene, "codes_by_outcome", None) or {}:
            if name not in declared:
                problems.append(
                    f"{path}.codes_by_outcome.{name}: no installed plugin declares the outcome {name!r}, "
                    f"so this code would never be given.{did_you_mean(name, declared.kinds())} Declared "
                    f"outcomes: {', '.join(sorted(declared.kinds()))} (`igym plugins` lists who "
                    "declares each)."
                )
    return problems


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

    def check_outcome_warnings(self, reachable: Mapping[str, list[str]]) -> list[str]:
        """``igym check``'s warnings about the platform outcomes this experiment can produce
        (``reachable``: platform outcome → why, from the declared outcomes; see
        :func:`reachable_outcomes`), e.g. one that has no code."""
        return []


def first_value(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return value if isinstance(value, str) and value.strip() else None
