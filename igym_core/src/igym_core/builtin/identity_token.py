"""Built-in identity: the server-issued token resumes its participant, unless the link is someone else's."""

from __future__ import annotations

from collections.abc import Mapping

from igym_core.plugins.markers import hookimpl
from igym_core.session.participant import Participant, ParticipantIdentity, recruitment_ids


@hookimpl(trylast=True)
def igym_resolve_participant(
    token: str | None, params: Mapping[str, str], known: Participant | None
) -> ParticipantIdentity:
    ids = recruitment_ids(params)
    if known is not None:
        own = known.recruitment_ids
        # A different recruitment id on the same browser is another person (a shared lab
        # computer, or a participant who pasted a colleague's link): start them afresh.
        conflict = any(own.get(key) not in (None, value) for key, value in ids.items())
        if not conflict:
            return ParticipantIdentity(resume_id=known.participant_id, recruitment_ids=own or ids)
    return ParticipantIdentity(resume_id=None, recruitment_ids=ids)
