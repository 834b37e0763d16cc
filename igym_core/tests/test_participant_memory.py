"""Participant state is bounded: evicted participants leave every per-participant map, and the
bookkeeping of new participants per address does not grow with the number of addresses."""

from __future__ import annotations

import gc
import time
import weakref
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from igym_core import EndScene, Experiment, GymScene, StaticScene, SurveyScene, TextQuestion
from igym_core.builtin.scene_gym import WaitingRoom
from igym_core.envs import resolve_callable
from igym_core.errors import ConfigError
from igym_core.examples.survey_study import experiment as example_study
from igym_core.session.admission import WINDOW_S, NewParticipantRate, address_key
from igym_core.settings import Settings
from igym_core.testing import ScriptedParticipant, make_test_app
from igym_core.testing.support import SURVEY_STUDY_ANSWERS as ANSWERS

HERE = Path(__file__).resolve().parent
Duel = resolve_callable(f"{HERE / 'game_envs.py'}:Duel", what="test env")
LATER = 10 * 24 * 3600.0  # far past every eviction time


def _experiment() -> Experiment:
    duel = GymScene(
        scene_id="duel",
        env_factory=Duel,
        human_seats=("human", "bot"),
        action_mapping={"ArrowUp": 4},
        default_action=0,
        fps=60,
        max_steps=20,
        countdown_s=0,
        waiting_room=WaitingRoom(timeout_s=60),
        reconnect_grace_s=60,  # a waiting participant who goes away keeps their place
    )
    return Experiment(
        experiment_id="memory_test",
        seed=3,
        scenes=(
            duel,
            SurveyScene(
                scene_id="notes",
                questions=(TextQuestion(id="note", prompt="Anything to add?", required=False),),
            ),
            StaticScene(scene_id="after", body="Thanks"),
            EndScene(scene_id="end", completion_code="auto"),
        ),
    )


def _per_participant_maps(study: Any) -> dict[str, set[str]]:
    """Every participant id that any per-participant structure of the study still holds."""
    games = study.games
    lobbies = [state.lobby for state in games._lobbies.values()]
    return {
        "by_id": set(study.by_id),
        "by_token_hash": {p.participant_id for p in study.by_token_hash.values()},
        "locks": set(study._locks),
        "game_of": set(games.game_of),
        "game_position": set(games._game_position),
        "waiting": set(games._waiting),
        "groups": {pid for _scene, pid in games._groups}
        | {m for g in games._groups.values() for m in g.seats},
        "left_group": {pid for left in games._left_group.values() for pid in left},
        "ended_game": set(games._ended_game),
        "finished": set(games._finished),
        "final_status": set(games.final_status),
        "lobby_entries": {pid for lobby in lobbies for pid in lobby._entries},
        "lobby_gone": {pid for lobby in lobbies for pid in lobby._gone},
    }


def test_eviction_empties_every_per_participant_map_and_frees_the_participant(tmp_path):
    app = make_test_app(
        _experiment(), tmp_path, participant_evict_finished_s=600, participant_evict_idle_s=3600
    )
    study = app.state.study
    with TestClient(app) as client:
        a = ScriptedParticipant(client).connect()
        b = ScriptedParticipant(client).connect()
        games = {}
        for p in (a, b):
            games[p] = p.receive_until(lambda m: m["type"] == "game_status" and m["game_id"] is not None)[0]
            p.game_ready(games[p]["game_id"])
        for p in (a, b):
            p.receive_until(lambda m: m["type"] == "scene")
            assert p.scene["scene"]["scene_id"] == "notes"
        assert a.draft({"note": "half"})["type"] == "ack"
        a.submit({"note": "done"})
        a.submit({})
        assert a.kind == "end"
        # b stops at the survey with a draft, and goes away (abandoned)
        assert b.draft({"note": "typed, never sent"})["type"] == "ack"
        # c waits in the waiting room for a partner, and closes the page
        c = ScriptedParticipant(client).connect()
        c.receive_until(lambda m: m["type"] == "game_status" and m["phase"] == "matching")
        refs = {p.participant_id: weakref.ref(study.by_id[p.participant_id]) for p in (a, b)}
        for p in (a, b, c):
            p.close()
        deadline = time.monotonic() + 10
        while any(p.connection_id is not None for p in study.by_id.values()):
            assert time.monotonic() < deadline, "the server did not notice the closed sockets"
            time.sleep(0.02)
        before = _per_participant_maps(study)
        assert {a.participant_id, b.participant_id} <= before["by_id"]
        assert a.participant_id in before["finished"] and before["groups"]

        # Not yet: a finished participant only 600 s after their socket closed.
        assert study.evict_idle(now=time.monotonic() + 300) == 0
        # Later: the finished and the abandoned leave; the one in the waiting room stays.
        assert study.evict_idle(now=time.monotonic() + LATER) == 2
        after = _per_participant_maps(study)
        for name, held in after.items():
            assert held <= {c.participant_id}, (name, held)
        assert after["by_id"] == {c.participant_id} and after["waiting"] == {c.participant_id}
        gc.collect()
        assert all(ref() is None for ref in refs.values()), "an evicted participant is still referenced"
        assert study.summary()["participants"] == 1
        assert study.summary()["participants_evicted"] == 2


def test_idle_participants_are_never_evicted_while_connected(tmp_path):
    app = make_test_app(
        _experiment(), tmp_path, participant_evict_finished_s=0.01, participant_evict_idle_s=0.01
    )
    study = app.state.study
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        p.receive_until(lambda m: m["type"] == "game_status")
        assert study.evict_idle(now=time.monotonic() + LATER) == 0
        assert p.participant_id in study.by_id


def test_zero_turns_eviction_off(tmp_path):
    app = make_test_app(example_study, tmp_path, participant_evict_finished_s=0, participant_evict_idle_s=0)
    study = app.state.study
    with TestClient(app) as client:
        with ScriptedParticipant(client) as p:
            pid = p.participant_id
        deadline = time.monotonic() + 10
        while study.by_id[pid].connection_id is not None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert study.evict_idle(now=time.monotonic() + LATER) == 0
        assert pid in study.by_id


def test_at_the_cap_finished_participants_make_room_and_come_back_from_the_records(tmp_path):
    app = make_test_app(example_study, tmp_path, max_participants_in_memory=2)
    study = app.state.study
    with TestClient(app) as client:
        done = ScriptedParticipant(client).connect()
        while done.kind != "end":
            done.submit(ANSWERS[done.scene["scene"]["scene_id"]])
        code = done.scene["context"]["completion_code"]
        done.close()
        deadline = time.monotonic() + 10
        while study.by_id[done.participant_id].connection_id is not None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with ScriptedParticipant(client) as busy, ScriptedParticipant(client) as newcomer:
            # the newcomer got the finished participant's place, long before their 600 s were up
            assert done.participant_id not in study.by_id
            assert set(study.by_id) == {busy.participant_id, newcomer.participant_id}
            full = ScriptedParticipant(client)
            with pytest.raises(AssertionError, match="server_full"):
                full.connect()
            full.close()
            # and the finished participant still gets back in, to the same end and code
            with ScriptedParticipant(client, token=done.token) as back:
                assert back.welcome["resumed"] is True
                assert back.participant_id == done.participant_id
                assert back.kind == "end" and back.scene["context"]["completion_code"] == code


# --- new participants per address ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


_events = st.lists(
    st.tuples(st.integers(0, 7), st.floats(0, 40, allow_nan=False)),  # (address, seconds passing first)
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(events=_events, limit=st.integers(1, 5))
def test_the_rate_allows_exactly_limit_per_address_window(events, limit):
    """Against a model: a window opens at an address's first new participant and lasts 60 s."""
    clock = Clock()
    rate = NewParticipantRate(limit, clock=clock)
    model: dict[str, tuple[float, int]] = {}
    for address_index, passing in events:
        clock.now += passing
        address = f"10.0.0.{address_index}"
        start, count = model.get(address, (None, 0))
        if start is None or clock.now - start >= WINDOW_S:
            start, count = clock.now, 0
        expected = count < limit
        if expected:
            count += 1
        model[address] = (start, count)
        assert rate.allow(address) is expected
        live = {a for a, (s, _c) in model.items() if clock.now - s < WINDOW_S}
        assert len(rate) <= len(live)


@settings(max_examples=50, deadline=None)
@given(addresses=st.lists(st.integers(0, 10**9), min_size=1, max_size=400), cap=st.integers(1, 50))
def test_the_rate_bookkeeping_stays_bounded(addresses, cap):
    clock = Clock()
    rate = NewParticipantRate(2, max_addresses=cap, clock=clock)
    for n in addresses:
        clock.now += 0.5
        rate.allow(f"a{n}")
        assert len(rate) <= cap
    clock.now += WINDOW_S
    rate.allow("someone")
    assert len(rate) == 1  # everything older than a window is gone


def test_zero_means_no_limit_and_no_bookkeeping():
    rate = NewParticipantRate(0)
    assert all(rate.allow("10.0.0.1") for _ in range(1000))
    assert len(rate) == 0


def test_ipv6_hosts_count_per_64_network():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key(None) == "unknown"


def test_limits_are_read_from_the_environment_and_checked():
    settings = Settings.from_env(
        {"IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN": "0", "IGYM_PARTICIPANT_EVICT_IDLE_S": "90.5"}
    )
    assert settings.max_new_participants_per_ip_per_min == 0
    assert settings.participant_evict_idle_s == 90.5
    assert settings.max_url_params == 16 and settings.max_draft_bytes == 16 * 1024
    with pytest.raises(ConfigError, match="max_draft_bytes must be 0 or more; got -1"):
        Settings.from_env({"IGYM_MAX_DRAFT_BYTES": "-1"})
    with pytest.raises(ConfigError, match="IGYM_"):
        Settings.from_env({"IGYM_MAX_URL_PARAMS": "many"})


# --- drafts ----------------------------------------------------------------------------------------

_draft_keys = st.sampled_from(["nickname", "age_group", "devices", "nick", "__proto__", "x" * 80])
_drafts = st.lists(
    st.dictionaries(
        _draft_keys, st.text(max_size=120) | st.lists(st.text(max_size=8), max_size=4), max_size=4
    ),
    min_size=1,
    max_size=6,
)


def test_a_reload_shows_the_last_draft_the_limits_allowed(tmp_path):
    """Against a model: a draft is kept iff its keys are the scene's and it fits the byte limit."""
    limit = 200
    app = make_test_app(example_study, tmp_path, max_draft_bytes=limit, max_new_participants_per_ip_per_min=0)
    own = {"nickname", "age_group", "devices"}
    with TestClient(app) as client:
        with ScriptedParticipant(client) as p:
            p.submit(ANSWERS["consent"])
            p.submit(ANSWERS["instructions"])
            token = p.token

        @settings(max_examples=60, deadline=None)
        @given(drafts=_drafts)
        def check(drafts: list[dict[str, Any]]) -> None:
            with ScriptedParticipant(client, token=token) as q:
                assert q.scene["scene"]["scene_id"] == "about_you"
                kept = q.scene["draft"]
                for draft in drafts:
                    reply = q.draft(draft)
                    fits = len(msgpack.packb(draft, use_bin_type=True)) <= limit
                    if set(draft) <= own and fits:
                        assert reply["type"] == "ack", reply
                        kept = draft
                    else:
                        code = "unknown_answers" if not set(draft) <= own else "draft_too_large"
                        assert (reply["type"], reply["code"]) == ("error", code), reply
            with ScriptedParticipant(client, token=token) as again:
                assert again.scene["draft"] == kept

        check()
