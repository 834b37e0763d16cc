"""The recruitment part of :class:`~igym_core.session.study.Study`: the platform's preview mode, a
person who already finished coming back, and the way back to the platform per outcome."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from igym_core.config.urls import apply_url_params, refusal_text
from igym_core.errors import AdmissionError, EntryRefusedError
from igym_core.recruitment import WayBack, platform_outcome, undeclared_outcome_fix
from igym_core.session.participant import Participant

if TYPE_CHECKING:
    from igym_core.config.experiment import Experiment
    from igym_core.data.recorder import Recorder
    from igym_core.plugins.manager import IgymPluginManager

log = structlog.get_logger(__name__)

ALREADY_FINISHED_MESSAGE = (
    "You have already taken part in this study and finished it, so you cannot take part again. "
    "Thank you! If you think this is a mistake, please contact the researchers through the "
    "platform where you found the study."
)


class StudyRecruitment:
    """The recruitment part of :class:`~igym_core.session.study.Study`."""

    experiment: Experiment
    recorder: Recorder
    plugins: IgymPluginManager
    _finished_people: dict[str, str]
    """The recruiter's person key → the participant id of whoever finished with it."""
    _resume_keys: dict[str, str]
    """The recruiter's resume key → the token hash of the participant who joined with it."""
    by_token_hash: dict[str, Participant]
    _evicted: set[bytes]

    def _check_recruitment_entry(self, params: Mapping[str, str]) -> None:
        """Before a new participant is made: a platform preview shows its text and starts nothing;
        a person who already finished is refused (``once_per_person``). Both raise."""
        recruiter = self.experiment.recruitment
        if recruiter is None:
            return
        preview = recruiter.preview_message(params)
        if preview is not None:
            log.info("preview_shown", recruiter=recruiter.kind)
            raise AdmissionError("preview", preview)
        refusal = recruiter.entry_refusal(params)
        if refusal is not None:
            self._refuse_entry(params, {"recruiter": recruiter.kind, "refusal": refusal[:200]})
            raise EntryRefusedError(refusal)
        key = recruiter.person_key(params)
        finished_as = self._finished_people.get(key) if key else None
        if recruiter.once_per_person and finished_as is not None:
            self._refuse_entry(params, {"already_finished": finished_as, "recruiter": recruiter.kind})
            raise EntryRefusedError(ALREADY_FINISHED_MESSAGE)

    def _url_params(self, params: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
        """The link's parameters with missing declared ones marked (and their names), or
        :class:`EntryRefusedError` (recorded and logged) when a missing one refuses entry."""
        filled, marked, refused = apply_url_params(self.experiment.url_params, params)
        if refused:
            names = [p.name for p in refused]
            # Not a participant (no token, no scenes), but recorded: who was turned away and why.
            self._refuse_entry(params, {"missing_url_params": names})
            raise EntryRefusedError(refusal_text(refused))
        return filled, marked

    def _refuse_entry(self, params: Mapping[str, str], detail: dict[str, Any]) -> None:
        """Record (not a participant: no token, no scenes) and log who was turned away and why."""
        self.recorder.write(
            "sessions",
            {
                "participant_id": f"p-{secrets.token_hex(6)}",
                "condition": None,
                "params": dict(params),
                "event": "entry_refused",
                "position": None,
                "scene_id": None,
                "instance": None,
                "detail": detail,
            },
        )
        log.warning("entry_refused", **detail)

    def _recruitment_identity(self, participant: Participant) -> dict[str, str]:
        recruiter = self.experiment.recruitment
        own = participant.recruitment_ids
        return {**own, **recruiter.identity(participant.params)} if recruiter else own

    def _note_finished(self, participant: Participant) -> None:
        """Remember the person (a restart restores this from the ``finished`` records)."""
        recruiter = self.experiment.recruitment
        key = recruiter.person_key(participant.params) if recruiter else None
        if key:
            self._finished_people.setdefault(key, participant.participant_id)
        resume = recruiter.resume_key(participant.params) if recruiter else None
        if resume and self._resume_keys.get(resume) == participant.token_hash:
            del self._resume_keys[resume]  # a finished participant is not resumed by identity

    def _note_resume_key(self, participant: Participant) -> None:
        """Remember an unfinished participant's resume key (at joining, and when restored)."""
        recruiter = self.experiment.recruitment
        key = recruiter.resume_key(participant.params) if recruiter else None
        if key and not participant.finished:
            self._resume_keys[key] = participant.token_hash

    async def _resumable_by_identity(self, params: Mapping[str, str]) -> Participant | None:
        """The unfinished participant whose link had the same resume key as these parameters (a
        browser without their token: another browser, a private window), or None."""
        recruiter = self.experiment.recruitment
        key = recruiter.resume_key(params) if recruiter else None
        token_hash = self._resume_keys.get(key) if key else None
        if token_hash is None:
            return None
        participant = self.by_token_hash.get(token_hash)
        if participant is None and bytes.fromhex(token_hash) in self._evicted:
            participant = await self._restore_evicted(token_hash)
        if participant is None or participant.finished:
            return None
        return participant

    def _reissue_token(self, participant: Participant, key_params: Mapping[str, str]) -> str:
        """A new token for the browser that resumed by identity; the old one no longer resumes
        (that browser's link resumes by identity again). Returns the new token's hash."""
        new_token = secrets.token_urlsafe(32)
        new_hash = hashlib.sha256(new_token.encode("utf-8")).hexdigest()
        self.by_token_hash.pop(participant.token_hash, None)
        participant.token, participant.token_hash = new_token, new_hash
        self.by_token_hash[new_hash] = participant
        recruiter = self.experiment.recruitment
        key = recruiter.resume_key(key_params) if recruiter else None
        if key:
            self._resume_keys[key] = new_hash
        return new_hash

    if TYPE_CHECKING:  # StudyLimits's

        async def _restore_evicted(self, token_hash: str) -> Participant | None: ...

    def way_back(self, participant: Participant) -> WayBack | None:
        """How a finished participant's page returns to the platform, for their outcome (an
        outcome no plugin declared goes back as ``UNDECLARED_PLATFORM_OUTCOME``, logged as an error)."""
        recruiter = self.experiment.recruitment
        declared = self.plugins.registry.outcomes
        if participant.outcome not in declared:
            log.error(
                "outcome_undeclared",
                participant_id=participant.participant_id,
                outcome=participant.outcome,
                fix=undeclared_outcome_fix(participant.outcome, declared),
            )
        if recruiter is None:
            return None
        return recruiter.way_back(platform_outcome(participant.outcome, declared), participant.params)

    def _way_back_detail(self, participant: Participant) -> dict[str, Any]:
        """The ``finished`` record's part about the way back (what the page will be sent)."""
        way = self.way_back(participant)
        return {"way_back": way.wire()} if way is not None else {}
