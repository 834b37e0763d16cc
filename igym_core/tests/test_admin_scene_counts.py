"""The dashboard's participants-by-scene counts are kept as things happen (the participant index
follows each participant's scene, connection and end), never recounted over every participant.

A stateful test drives a real app (Litestar's test client, scripted participants) through random
sequences of joins, scene changes, leaving, coming back (also from the records after an eviction),
a second tab, evictions and server restarts, and checks after each step that the kept counts and
the dashboard's snapshot equal a recount over the participants in memory."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from litestar.testing import TestClient

from igym_core import EndScene, Experiment, StaticScene
from igym_core.admin.live import recount_by_scene
from igym_core.testing import ScriptedParticipant, make_test_app

EXPERIMENT = Experiment(
    experiment_id="scene_counts",
    seed=5,
    scenes=(
        StaticScene(scene_id="intro", body="One"),
        StaticScene(scene_id="middle", body="Two"),
        EndScene(scene_id="end", completion_code="auto"),
    ),
)
LATER = 10 * 24 * 3600.0  # past every eviction time


class Person:
    def __init__(self, page: ScriptedParticipant) -> None:
        self.page: ScriptedParticipant | None = page
        self.token = page.token
        self.participant_id = page.participant_id


class SceneCounts(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.data_dir = Path(tempfile.mkdtemp(prefix="igym-scene-counts-"))
        self.people: list[Person] = []
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        self.app = make_test_app(
            EXPERIMENT,
            self.data_dir,
            participant_evict_finished_s=1,
            participant_evict_idle_s=1,
            max_new_participants_per_ip_per_min=0,
        )
        self.client = TestClient(self.app)
        self.client.__enter__()
        self.study = self.app.state.study

    def _settle(self, person: Person) -> None:
        """Wait until the server has seen ``person``'s page close."""
        deadline = time.monotonic() + 10
        while True:
            participant = self.study.by_id.get(person.participant_id)
            if participant is None or participant.connection_id is None:
                return
            assert time.monotonic() < deadline, "the server did not notice the closed page"
            time.sleep(0.01)

    def _connected(self) -> list[Person]:
        return [p for p in self.people if p.page is not None]

    def _away(self) -> list[Person]:
        return [p for p in self.people if p.page is None]

    @rule()
    def join(self) -> None:
        self.people.append(Person(ScriptedParticipant(self.client).connect()))

    @precondition(lambda self: any(p.page is not None and p.page.kind != "end" for p in self.people))
    @rule(data=st.data())
    def next_scene(self, data: st.DataObject) -> None:
        person = data.draw(st.sampled_from([p for p in self._connected() if p.page.kind != "end"]))  # type: ignore[union-attr]
        person.page.submit({})  # type: ignore[union-attr]

    @precondition(lambda self: any(p.page is not None for p in self.people))
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        person = data.draw(st.sampled_from(self._connected()))
        person.page.close()  # type: ignore[union-attr]
        person.page = None
        self._settle(person)

    @precondition(lambda self: any(p.page is None for p in self.people))
    @rule(data=st.data())
    def come_back(self, data: st.DataObject) -> None:
        person = data.draw(st.sampled_from(self._away()))
        person.page = ScriptedParticipant(self.client, token=person.token).connect()
        assert person.page.participant_id == person.participant_id

    @precondition(lambda self: any(p.page is not None for p in self.people))
    @rule(data=st.data())
    def second_tab(self, data: st.DataObject) -> None:
        person = data.draw(st.sampled_from(self._connected()))
        old = person.page
        person.page = ScriptedParticipant(self.client, token=person.token).connect()
        old.close()  # type: ignore[union-attr]  # superseded already; its closing changes nothing

    @rule()
    def evict(self) -> None:
        self.study.evict_idle(now=time.monotonic() + LATER)

    @precondition(lambda self: self.restarts < 2)
    @rule()
    def restart(self) -> None:
        for person in self._connected():
            person.page.close()  # type: ignore[union-attr]
            person.page = None
        self.client.__exit__(None, None, None)
        self.restarts += 1
        self._start()

    @invariant()
    def counts_equal_a_recount(self) -> None:
        index = self.study.by_id
        by_scene, connected = recount_by_scene(list(index.values()))
        assert (+index.by_scene, +index.connected_by_scene) == (by_scene, connected)
        shown = self.app.state.admin.live.snapshot()["scenes"]
        assert {s["scene_id"]: s["participants"] for s in shown} == {
            sid: by_scene.get(sid, 0) for sid in ("intro", "middle", "end")
        }
        assert Counter({s["scene_id"]: s["connected"] for s in shown if s["connected"]}) == connected

    def teardown(self) -> None:
        for person in self._connected():
            person.page.close()  # type: ignore[union-attr]
        self.client.__exit__(None, None, None)
        shutil.rmtree(self.data_dir, ignore_errors=True)


TestSceneCounts = SceneCounts.TestCase
TestSceneCounts.settings = settings(
    max_examples=12,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_the_index_counts_by_scene_as_participants_move() -> None:
    """The bookkeeping itself, without a server: assignments move a participant between counts."""
    from igym_core.scenes.stager import expand_sequence
    from igym_core.session.participant import Participant, ParticipantIndex

    slots, _draws = expand_sequence(EXPERIMENT.scenes, participant_id="p", condition=None, experiment_seed=1)
    index = ParticipantIndex()
    someone = Participant(participant_id="p", token="t", params={})
    index["p"] = someone
    assert not index.by_scene  # no scenes yet
    someone.slots = slots
    someone.connection_id = 7
    assert index.by_scene == {"intro": 1} and index.connected_by_scene == {"intro": 1}
    someone.position = 1
    someone.connection_id = None
    assert index.by_scene == {"middle": 1} and not index.connected_by_scene
    someone.finished = True
    assert not index.by_scene
    someone.finished = False
    del index["p"]
    assert not index.by_scene
    someone.position = 0  # no longer held: nothing counts it
    assert not index.by_scene
