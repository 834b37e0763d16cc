"""A participant who joined before the experiment declared a URL parameter comes back after a
restart: the parameter is marked as joining would mark it, and their redirect goes out filled."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from igym_core.testing import read_records
from tests.test_restart import Browserless

STUDY = """
from igym_core import EndScene, Experiment, StartScene, UrlParam, StaticScene

experiment = Experiment(
    experiment_id="late_params",
    seed=5,
    url_params={params},
    scenes=(
        StartScene(scene_id="consent", body="Take part?"),
        StaticScene(scene_id="middle", body="Almost done."),
        EndScene(
            scene_id="end",
            completion_code="C0DE",
            redirect_url="https://app.prolific.com/submissions/complete?cc={{completion_code}}{query}",
        ),
    ),
)
"""


def _write(directory: Path, name: str, params: str, query: str) -> str:
    (directory / f"{name}.py").write_text(STUDY.format(params=params, query=query))
    return f"{name}.py:experiment"


def test_a_restored_participant_gets_newly_declared_params_marked_once(
    live_server: Any, tmp_path: Path
) -> None:
    before = _write(tmp_path, "before", '("PROLIFIC_PID",)', "&pid={PROLIFIC_PID}")
    after = _write(
        tmp_path,
        "after",
        '("PROLIFIC_PID", "STUDY_ID", UrlParam(name="SESSION_ID", on_missing="refuse"))',
        "&pid={PROLIFIC_PID}&study={STUDY_ID}&session={SESSION_ID}",
    )
    server = live_server(before, cwd=tmp_path)
    alice = Browserless(server.url, params={"PROLIFIC_PID": "alice"})
    alice.submit({"agree": True})
    token, pid = alice.welcome["token"], alice.welcome["participant_id"]
    alice.ws.close()
    server.stop()

    # The experiment now declares STUDY_ID and SESSION_ID (refused at entry when missing): alice,
    # already taking part, is not refused but marked, and her redirect is filled.
    again = live_server(after, cwd=tmp_path)
    back = Browserless(again.url, token=token, params={"PROLIFIC_PID": "alice"})
    assert back.welcome["resumed"] is True and back.welcome["participant_id"] == pid
    end = back.submit({})
    assert end["type"] == "scene" and end["scene"]["scene_id"] == "end", end
    query = parse_qs(urlsplit(end["context"]["redirect_url"]).query)
    assert query == {"cc": ["C0DE"], "pid": ["alice"], "study": ["MISSING"], "session": ["MISSING"]}
    back.ws.close()
    again.stop()

    # A further restart finds her marked: the same redirect, and no second record of the marking.
    third = live_server(after, cwd=tmp_path)
    resumed = Browserless(third.url, token=token)
    assert resumed.scene["context"]["redirect_url"] == end["context"]["redirect_url"]
    resumed.ws.close()
    third.stop()

    sessions = [
        r for r in read_records(server.data_dir, "late_params", "sessions") if r["participant_id"] == pid
    ]
    marked = [r for r in sessions if r["event"] == "url_params_missing"]
    assert [r["detail"] for r in marked] == [
        {"names": ["STUDY_ID", "SESSION_ID"], "action": "marked", "reason": "restored"}
    ]
    assert sessions[-1]["params"] == {"PROLIFIC_PID": "alice", "STUDY_ID": "MISSING", "SESSION_ID": "MISSING"}
    assert "Traceback" not in third.log_path.read_text() + again.log_path.read_text()
