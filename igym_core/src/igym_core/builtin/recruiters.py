"""Built-in recruitment platforms: Prolific and Amazon Mechanical Turk (see docs/recruitment.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import attrs
import structlog

from igym_core.builtin.scenes_static import EndScene
from igym_core.config.experiment import Experiment
from igym_core.config.validators import FieldError
from igym_core.plugins.markers import hookimpl
from igym_core.recruitment import PLATFORM_OUTCOMES, Recruiter, WayBack, first_value
from igym_core.scenes.stager import iter_scenes

__all__ = ["MTURK_SUBMIT_HOSTS", "PROLIFIC_COMPLETE_URL", "MTurk", "Prolific"]

log = structlog.get_logger(__name__)

PROLIFIC_COMPLETE_URL = "https://app.prolific.com/submissions/complete?cc="
"""Where Prolific takes a completion code (``cc``)."""

MTURK_SUBMIT_HOSTS: tuple[str, ...] = ("www.mturk.com", "workersandbox.mturk.com")
"""The only hosts a ``turkSubmitTo`` may name (anything else would make igym an open redirect)."""

MTURK_PREVIEW_ID = "ASSIGNMENT_ID_NOT_AVAILABLE"


def _outcome_codes(instance: Any, attribute: attrs.Attribute, value: Mapping[str, str]) -> None:
    if not isinstance(value, Mapping):
        raise FieldError(attribute.name, f"expected a mapping of outcome to code, got {value!r}.")
    for outcome, code in value.items():
        if outcome not in PLATFORM_OUTCOMES:
            raise FieldError(
                f"{attribute.name}.{outcome}",
                f"{outcome!r} is not an outcome; the outcomes are {', '.join(PLATFORM_OUTCOMES)}.",
            )
        if not (isinstance(code, str) and code.strip()) or code != code.strip():
            raise FieldError(
                f"{attribute.name}.{outcome}",
                f"is {code!r}; expected the completion code set up in the study on the platform "
                "(letters and digits, no spaces).",
            )


def _dict(value: Any) -> dict[str, str]:
    return dict(value) if isinstance(value, Mapping) else value


@attrs.frozen(kw_only=True)
class Prolific(Recruiter):
    """Prolific: ``PROLIFIC_PID``, ``STUDY_ID`` and ``SESSION_ID`` are recorded; the participant is
    PID + SESSION_ID; each outcome returns to Prolific with the study's fixed code for it.

    ``codes``: outcome → the completion code set up in the Prolific study, for the outcomes
    ``completed`` (required), ``screened_out``, ``no_partner``, ``partner_left``, ``timed_out``. An
    outcome without a code shows its message and stays (the participant returns the study).
    """

    kind: ClassVar[str] = "prolific"
    codes: Mapping[str, str] = attrs.field(factory=dict, converter=_dict, validator=_outcome_codes)

    def url_params(self) -> tuple[str, ...]:
        return ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")

    def identity(self, params: Mapping[str, str]) -> dict[str, str]:
        return {k: params[k] for k in ("PROLIFIC_PID", "SESSION_ID") if first_value(params, k)}

    def person_key(self, params: Mapping[str, str]) -> str | None:
        pid = first_value(params, "PROLIFIC_PID")
        return f"prolific:{pid}" if pid else None

    def resume_key(self, params: Mapping[str, str]) -> str | None:
        pid, session = first_value(params, "PROLIFIC_PID"), first_value(params, "SESSION_ID")
        return f"prolific:{pid}:{session}" if pid and session else None

    def code_for(self, outcome: str) -> str | None:
        return self.codes.get(outcome)

    def way_back(self, outcome: str, params: Mapping[str, str]) -> WayBack | None:
        code = self.codes.get(outcome)
        if code is None:
            return None
        return WayBack(url=PROLIFIC_COMPLETE_URL + quote(code, safe=""), code=code, outcome=outcome)

    def check_problems(self) -> list[str]:
        if "completed" not in self.codes:
            return [
                "$.recruitment.codes: Prolific needs the study's completion code for 'completed'; "
                "copy it from the study's page on Prolific: Prolific(codes={'completed': 'C1A2B3C4'})."
            ]
        return []

    def check_outcome_warnings(self, reachable: Mapping[str, list[str]]) -> list[str]:
        """Outcomes this experiment can produce that have no code: those participants get none."""
        return [
            f"$.recruitment.codes: {' and '.join(why)}, but there is no code for {outcome!r}: those "
            f"participants get no code and stay on the page; add Prolific(codes={{..., {outcome!r}: "
            "'CODE'}) with a code of the study, or ignore this if they should return the study."
            for outcome, why in reachable.items()
            if outcome not in self.codes and outcome != "completed"
        ]

    def check_warnings(self, experiment: Experiment) -> list[str]:
        random_code = (
            "is 'auto', a random code per participant, but Prolific accepts only the codes set up in "
            "the study, so the submission would not be accepted; use the study's fixed code"
        )
        warnings = [
            f"$.recruitment.codes.{outcome}: {random_code}."
            for outcome, code in self.codes.items()
            if code.lower() == "auto"
        ]
        for scene, path in iter_scenes(experiment.scenes):
            if not isinstance(scene, EndScene) or "prolific.com" not in (scene.redirect_url or ""):
                continue
            settings = {"completion_code": scene.completion_code} | {
                f"codes_by_outcome.{k}": v for k, v in scene.codes_by_outcome.items()
            }
            warnings.extend(
                f"{path}.{name}: its redirect goes to Prolific, but the code {random_code} (or set "
                "the codes on Prolific(codes=...) and drop the scene's redirect_url)."
                for name, code in settings.items()
                if code == "auto"
            )
        return warnings


@attrs.frozen(kw_only=True)
class MTurk(Recruiter):
    """Amazon Mechanical Turk (an ExternalQuestion HIT): ``assignmentId``, ``hitId``, ``workerId``
    and ``turkSubmitTo`` are recorded; the participant is the worker and assignment.

    A preview (``assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE``) shows ``preview_text`` and starts
    nothing. Every outcome submits a form (POST) to ``turkSubmitTo/mturk/externalSubmit`` with
    ``assignmentId``, ``outcome`` and, where ``codes`` gives one, ``completion_code``.
    ``turkSubmitTo`` must be MTurk's (``www.mturk.com`` or ``workersandbox.mturk.com``, https):
    any other is refused at entry, so that no link can send the form elsewhere.
    """

    kind: ClassVar[str] = "mturk"
    preview_text: str = (
        "This is a preview of the task. Accept the HIT to start it; the study opens in this page then."
    )
    codes: Mapping[str, str] = attrs.field(factory=dict, converter=_dict, validator=_outcome_codes)

    def url_params(self) -> tuple[str, ...]:
        return ("assignmentId", "hitId", "workerId", "turkSubmitTo")

    def identity(self, params: Mapping[str, str]) -> dict[str, str]:
        return {k: params[k] for k in ("workerId", "assignmentId") if first_value(params, k)}

    def person_key(self, params: Mapping[str, str]) -> str | None:
        worker = first_value(params, "workerId")
        return f"mturk:{worker}" if worker else None

    def resume_key(self, params: Mapping[str, str]) -> str | None:
        worker, assignment = first_value(params, "workerId"), first_value(params, "assignmentId")
        if not worker or not assignment or assignment == MTURK_PREVIEW_ID:
            return None
        return f"mturk:{worker}:{assignment}"

    def preview_message(self, params: Mapping[str, str]) -> str | None:
        assignment = first_value(params, "assignmentId")
        if assignment is None or assignment == MTURK_PREVIEW_ID:
            return self.preview_text
        return None

    def entry_refusal(self, params: Mapping[str, str]) -> str | None:
        if mturk_submit_base(params.get("turkSubmitTo")) is None:
            return (
                "This link does not come from Amazon Mechanical Turk (its turkSubmitTo is not "
                "MTurk's), so your work could not be submitted. Please open the task from MTurk."
            )
        return None

    def code_for(self, outcome: str) -> str | None:
        return self.codes.get(outcome)

    def form_targets(self) -> tuple[str, ...]:
        return tuple(f"https://{host}" for host in MTURK_SUBMIT_HOSTS)

    def way_back(self, outcome: str, params: Mapping[str, str]) -> WayBack | None:
        submit_to = mturk_submit_base(params.get("turkSubmitTo"))
        assignment = first_value(params, "assignmentId")
        if submit_to is None or assignment is None or assignment == MTURK_PREVIEW_ID:
            return None
        fields = {"assignmentId": assignment, "outcome": outcome}
        code = self.codes.get(outcome)
        if code is not None:
            fields["completion_code"] = code
        return WayBack(
            url=f"{submit_to}/mturk/externalSubmit", method="post", fields=fields, code=code, outcome=outcome
        )


def mturk_submit_base(raw: str | None) -> str | None:
    """``turkSubmitTo`` as ``https://<MTurk host>``, or None if it names any other place."""
    if not raw:
        return None
    try:
        parts = urlsplit(raw)
    except ValueError:
        return None
    if parts.scheme != "https" or parts.hostname not in MTURK_SUBMIT_HOSTS or parts.port not in (None, 443):
        return None
    if parts.username or parts.password or parts.path.strip("/") or parts.query or parts.fragment:
        return None
    return f"https://{parts.hostname}"


@hookimpl
def igym_register_recruiters() -> list[type[Recruiter]]:
    return [Prolific, MTurk]
