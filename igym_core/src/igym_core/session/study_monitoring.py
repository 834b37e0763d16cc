"""The monitoring part of :class:`~igym_core.session.study.Study`: what a participant's page
reports about itself (tab hidden or shown, window blurred or focused, full screen entered or left),
recorded with the page's and the server's timestamps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from igym_core.protocol.messages import PageEvent
from igym_core.session.participant import Participant

if TYPE_CHECKING:
    from igym_core.settings import Settings

log = structlog.get_logger(__name__)


class StudyMonitoring:
    """The monitoring part of :class:`~igym_core.session.study.Study`."""

    settings: Settings
    _page_event_counts: dict[str, int]

    def page_event(self, participant: Participant, message: PageEvent) -> None:
        """Record one ``page_event`` (a ``sessions`` row ``page_event``; its ``timestamp`` is the
        server's, ``page_time_ms`` the page's clock). Past ``max_page_events_per_participant`` they
        are only counted (the first one over is logged)."""
        pid = participant.participant_id
        count = self._page_event_counts.get(pid, 0) + 1
        self._page_event_counts[pid] = count
        limit = self.settings.max_page_events_per_participant
        if count > limit:
            if count == limit + 1:
                log.warning(
                    "page_events_limited",
                    participant_id=pid,
                    limit=limit,
                    advice="IGYM_MAX_PAGE_EVENTS_PER_PARTICIPANT",
                )
            return
        self._event(participant, "page_event", page_event=message.event, page_time_ms=round(message.t))
