"""A third recruitment platform as a stranger would write it: SONA Systems (a university's
participant pool), as a plugin of a few lines, and a study recruited through it.

`igym run tests/e2e/sona_plugin.py:experiment --plugin tests.e2e.sona_plugin`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

import attrs

from igym_core import EndScene, Experiment, StaticScene, hookimpl
from igym_core.recruitment import Recruiter, WayBack


@attrs.frozen(kw_only=True)
class Sona(Recruiter):
    """SONA: the link carries ``id`` (the participant's survey code); credit is granted by sending
    the browser to the school's ``webstudy_credit.aspx`` with the study's credit token."""

    kind: ClassVar[str] = "sona"
    school: str
    experiment_id: str
    credit_token: str

    def url_params(self) -> tuple[str, ...]:
        return ("id",)

    def identity(self, params: Mapping[str, str]) -> dict[str, str]:
        return {"sona_id": params["id"]} if params.get("id") else {}

    def person_key(self, params: Mapping[str, str]) -> str | None:
        return f"sona:{params['id']}" if params.get("id") else None

    def way_back(self, outcome: str, params: Mapping[str, str]) -> WayBack | None:
        if outcome != "completed" or not params.get("id"):
            return None  # no credit: the participant stays on the page, which says why
        url = (
            f"https://{self.school}.sona-systems.com/webstudy_credit.aspx?experiment_id={self.experiment_id}"
            f"&credit_token={self.credit_token}&survey_code={quote(params['id'], safe='')}"
        )
        return WayBack(url=url, outcome=outcome)


@hookimpl
def igym_register_recruiters() -> list[type[Recruiter]]:
    return [Sona]


experiment = Experiment(
    experiment_id="recruit_sona",
    recruitment=Sona(school="lab", experiment_id="123", credit_token="tok9"),
    scenes=(
        StaticScene(scene_id="intro", body="Press continue."),
        EndScene(scene_id="end", redirect_delay_ms=200),
    ),
)
