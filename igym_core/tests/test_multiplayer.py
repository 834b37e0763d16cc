"""Multiplayer game scenes over the socket: waiting rooms, matching, timeouts, partners who leave,
groups that stay together, round-trip times, and the records of all of it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar

import msgpack
import pytest
from litestar.testing import TestClient

from igym_core import EndScene, Experiment, GymScene, StaticScene, hookimpl
from igym_core.builtin.matchmakers import ConditionMatchmaker, FifoMatchmaker
from igym_core.builtin.rtt_echo import RttEcho
from igym_core.builtin.scene_gym import WaitingRoom
from igym_core.config.validators import FieldError
from igym_core.envs import resolve_callable
from igym_core.errors import ConfigError, ProtocolError
from igym_core.matchmaking.interface import Matchmaker, WaitingPlayer
from igym_core.protocol.messages import MessageDecoder
from igym_core.session.lobby import Lobby
from igym_core.testing import ScriptedParticipant, make_test_app, read_records

HERE = Path(__file__).resolve().parent
Duel = resolve_callable(f"{HERE / 'game_envs.py'}:Duel", what="test env")


def duel(**overrides: Any) -> GymScene:
    options: dict[str, Any] = dict(
        scene_id="duel",
        env_factory=Duel,
        human_seats=("human", "bot"),  # both agents played by people
        action_mapping={"ArrowUp": 4, "ArrowLeft": 1},
        default_action=0,
        fps=60,
        max_steps=30,
        countdown_s=0,
        waiting_room=WaitingRoom(timeout_s=5),
        reconnect_grace_s=0.5,
    )
    options.update(overrides)
    return GymScene(**options)


def study(*scenes: Any, experiment_id: str = "mp_test", **kwargs: Any) -> Experiment:
    return Experiment(
        experiment_id=experiment_id,
        seed=5,
        scenes=(*scenes, StaticScene(scene_id="after", body="Thanks"), EndScene(scene_id="end")),
        **kwargs,
    )


def status(p: ScriptedParticipant, phase: str | None = None) -> dict[str, Any]:
    return p.receive_until(lambda m: m["type"] == "game_status" and (phase is None or m["phase"] == phase))[0]


def matched_game(p: ScriptedParticipant) -> dict[str, Any]:
    """Read statuses until one names a game (the group was formed); say the page is ready."""
    found = p.receive_until(lambda m: m["type"] == "game_status" and m["game_id"] is not None)[0]
    p.game_ready(found["game_id"])
    return found


def test_two_participants_are_matched_play_together_and_both_move_on(tmp_path):
    events: list[tuple[str, Any]] = []

    class Spy:
        @hookimpl
        def igym_on_matched(self, game, waited_s):
            events.append(("matched", sorted(waited_s)))

    app = make_test_app(study(duel()), tmp_path, extra_plugins=[Spy()])
    with TestClient(app) as client, ScriptedParticipant(client, params={"PROLIFIC_PID": "A"}) as a:
        first = status(a)
        assert first["phase"] == "matching" and first["game_id"] is None
        assert first["waiting"]["count"] == 1 and first["waiting"]["group_size"] == 2
        assert first["waiting"]["timeout_ms"] == 5000 and first["message"]
        with ScriptedParticipant(client, params={"PROLIFIC_PID": "B"}) as b:
            game_b = matched_game(b)
            game_a = matched_game(a)
            assert game_a["game_id"] == game_b["game_id"]
            assert (game_a["seat"], game_b["seat"]) == ("human", "bot")  # first come, first seat
            assert [p["status"] for p in game_a["players"]] == ["connected", "connected"]
            a.hold(game_a["game_id"], "ArrowUp")
            b.hold(game_b["game_id"], "ArrowLeft")
            a.receive_until(lambda m: m["type"] == "scene")
            b.receive_until(lambda m: m["type"] == "scene")
            assert a.scene["scene"]["scene_id"] == b.scene["scene"]["scene_id"] == "after"
    steps = read_records(tmp_path, "mp_test", "steps")
    assert len(steps) == 60
    by_agent = {agent: [s for s in steps if s["agent"] == agent] for agent in ("human", "bot")}
    assert {s["participant_id"] for s in by_agent["human"]} == {a.participant_id}
    assert {s["participant_id"] for s in by_agent["bot"]} == {b.participant_id}
    assert all(s["seat"] == "human" for s in steps)  # both seats played by people
    assert any(s["action"] == 4 and s["keys_held"] == ["ArrowUp"] for s in by_agent["human"])
    assert any(s["action"] == 1 and s["keys_held"] == ["ArrowLeft"] for s in by_agent["bot"])
    matches = read_records(tmp_path, "mp_test", "matches")
    assert [m["event"] for m in matches] == ["queued", "queued", "matched", "game_ended"]
    matched = matches[2]
    assert [(m["participant_id"], m["seat"]) for m in matched["members"]] == [
        (a.participant_id, "human"),
        (b.participant_id, "bot"),
    ]
    assert matched["members"][0]["waited_s"] >= matched["members"][1]["waited_s"] >= 0
    assert matched["matchmaker"] == "fifo" and matches[3]["reason"] == "completed"
    assert events == [("matched", sorted([a.participant_id, b.participant_id]))]


def test_a_participant_waiting_alone_times_out_to_the_configured_scene(tmp_path):
    scene = duel(waiting_room=WaitingRoom(timeout_s=0.4, on_timeout="goto", timeout_scene="solo"))
    experiment = study(
        scene,
        StaticScene(scene_id="skipped", body="not for those who timed out"),
        StaticScene(scene_id="solo", body="Play alone instead"),
    )
    timeouts = []

    class Spy:
        @hookimpl
        def igym_on_waiting_timeout(self, participant, scene_id, waited_s, action):
            timeouts.append((scene_id, action, waited_s >= 0.4))

    app = make_test_app(experiment, tmp_path, extra_plugins=[Spy()])
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        assert status(p)["phase"] == "matching"
        p.receive_until(lambda m: m["type"] == "scene")
        assert p.scene["scene"]["scene_id"] == "solo"
        p.submit({})
        p.submit({})
        # The end scene knows how they got there (a code per outcome is the scene's choice).
        assert p.scene["scene"]["kind"] == "end" and p.scene["context"]["outcome"] == "waiting_timeout"
    assert timeouts == [("duel", "goto", True)]
    matches = read_records(tmp_path, "mp_test", "matches")
    assert [m["event"] for m in matches] == ["queued", "timeout"]
    assert matches[1]["action"] == "goto" and matches[1]["waited_s"] >= 0.4
    sessions = read_records(tmp_path, "mp_test", "sessions")
    assert any(e["event"] == "waiting_timeout" for e in sessions)
    (finished,) = [e for e in sessions if e["event"] == "finished"]
    assert finished["detail"]["outcome"] == "waiting_timeout"


def test_timeout_with_redirect_sends_the_url_after_the_data_is_stored_and_again_on_reload(tmp_path):
    scene = duel(
        waiting_room=WaitingRoom(
            timeout_s=0.3,
            show_count=False,
            on_timeout="redirect",
            timeout_redirect_url="https://app.prolific.com/submissions/complete?cc=NOPARTNER&pid={PROLIFIC_PID}",
        )
    )
    app = make_test_app(study(scene, url_params=("PROLIFIC_PID",)), tmp_path)
    with TestClient(app) as client:
        with ScriptedParticipant(client, params={"PROLIFIC_PID": "a b&c"}) as p:
            assert status(p)["waiting"]["count"] is None  # the scene hides the count
            final = status(p, "ended")
            # The data is on disk before the page is told to leave.
            finished = [e for e in read_records(tmp_path, "mp_test", "sessions") if e["event"] == "finished"]
            assert finished and finished[0]["detail"]["outcome"] == "waiting_timeout"
        assert final["final"] is True
        assert (
            final["redirect_url"]
            == "https://app.prolific.com/submissions/complete?cc=NOPARTNER&pid=a%20b%26c"
        )
        with ScriptedParticipant(client, token=p.token) as again:
            assert again.scene["scene"]["scene_id"] == "duel"
            assert status(again)["redirect_url"] == final["redirect_url"]
    # After a server restart too: the final status comes back from the session records.
    restarted = make_test_app(study(scene, url_params=("PROLIFIC_PID",)), tmp_path)
    with TestClient(restarted) as client, ScriptedParticipant(client, token=p.token) as again:
        assert again.scene["scene"]["scene_id"] == "duel"
        after_restart = status(again)
        assert after_restart["phase"] == "ended" and after_restart["final"] is True
        assert after_restart["redirect_url"] == final["redirect_url"]
        assert after_restart["message"] == final["message"]


def test_partner_who_leaves_ends_the_game_for_the_other_after_the_grace_period(tmp_path):
    left = []

    class Spy:
        @hookimpl
        def igym_on_partner_left(self, game, participant_id, outcome):
            left.append((participant_id, outcome))

    app = make_test_app(
        study(duel(max_steps=100_000, on_partner_left="end")), tmp_path, extra_plugins=[Spy()]
    )
    with TestClient(app) as client, ScriptedParticipant(client) as a:
        b = ScriptedParticipant(client).connect()
        game = matched_game(b)
        matched_game(a)
        status(a, "playing")
        b_id = b.participant_id
        b.close()  # closes the tab
        away = a.receive_until(lambda m: m["type"] == "game_status" and m.get("notice"))[0]
        assert "connection dropped" in away["notice"]
        assert [p["status"] for p in away["players"]] == ["connected", "away"]
        ended = status(a, "ended")
        assert ended["message"] == "Your partner has left the game."
        a.receive_until(lambda m: m["type"] == "scene")
        assert a.scene["scene"]["scene_id"] == "after"
    assert left == [(b_id, "end")]
    games = read_records(tmp_path, "mp_test", "games")
    assert [g["event"] for g in games] == ["started", "partner_left", "ended"]
    assert games[1]["left"] == b_id and games[2]["reason"] == "partner_left"
    episodes = read_records(tmp_path, "mp_test", "episodes")
    assert episodes[-1]["end_reason"] == "partner_left"
    steps = [s for s in read_records(tmp_path, "mp_test", "steps") if s["participant_id"] == b_id]
    assert steps[-1]["action_source"] == "absent"  # during the grace period the seat idled
    matches = read_records(tmp_path, "mp_test", "matches")
    assert [m["event"] for m in matches][-2:] == ["partner_left", "game_ended"]
    assert game["game_id"] == matches[-1]["game_id"]


def test_partner_who_leaves_is_replaced_by_a_bot_and_gets_the_seat_back_on_return(tmp_path):
    scene = duel(max_steps=150, on_partner_left="bot", partner_policy="random")
    app = make_test_app(study(scene), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as a:
        b = ScriptedParticipant(client).connect()
        matched_game(b)
        game = matched_game(a)
        status(a, "playing")
        b_id = b.participant_id
        b.close()
        notice = a.receive_until(
            lambda m: m["type"] == "game_status" and "computer player" in m.get("notice", "")
        )[0]
        assert [p["status"] for p in notice["players"]] == ["connected", "bot"]
        time.sleep(0.2)
        with ScriptedParticipant(client, token=b.token) as back:  # the same participant returns
            assert status(back)["game_id"] == game["game_id"]
            back.game_ready(game["game_id"])
            a.receive_until(lambda m: m["type"] == "scene")
            back.receive_until(lambda m: m["type"] == "scene")
    sources = [s["action_source"] for s in read_records(tmp_path, "mp_test", "steps") if s["agent"] == "bot"]
    # The left seat: played by its human, idle while away, a bot after the grace period, then the
    # human again (the default action until they press a key).
    assert "absent" in sources and "bot" in sources
    assert sources.index("absent") < sources.index("bot")
    assert sources[-1] in ("human", "default")
    games = read_records(tmp_path, "mp_test", "games")
    assert [g["event"] for g in games] == ["started", "partner_left", "seat_returned", "ended"]
    assert games[1]["outcome"] == "bot" and games[2]["participant_id"] == b_id
    bot_rows = [s for s in read_records(tmp_path, "mp_test", "steps") if s["action_source"] == "bot"]
    assert all(s["agent"] == "bot" for s in bot_rows)


def test_a_reload_in_the_waiting_room_keeps_the_place(tmp_path):
    app = make_test_app(study(duel()), tmp_path)
    with TestClient(app) as client:
        a = ScriptedParticipant(client).connect()
        assert status(a)["phase"] == "matching"
        token = a.token
        a.close()
        with ScriptedParticipant(client, token=token) as again, ScriptedParticipant(client) as b:
            assert status(again)["phase"] == "matching"
            game = matched_game(b)
            assert game["seat"] == "bot"  # the reloaded participant kept the first place
            assert matched_game(again)["seat"] == "human"
    matches = read_records(tmp_path, "mp_test", "matches")
    assert [m["event"] for m in matches][:3] == ["queued", "queued", "matched"]


def test_groups_stay_together_in_a_later_scene_in_the_same_seats(tmp_path):
    first = duel(scene_id="round1", max_steps=5)
    second = duel(scene_id="round2", max_steps=5, same_group_as="round1")
    app = make_test_app(study(first, second), tmp_path)
    with TestClient(app) as client:
        people = [ScriptedParticipant(client, params={"PROLIFIC_PID": str(i)}).connect() for i in range(4)]
        seats: dict[str, str] = {}
        games: dict[str, str] = {}
        for p in people:
            found = matched_game(p)
            seats[p.participant_id] = found["seat"]
            games[p.participant_id] = found["game_id"]
        for p in people:
            p.receive_until(lambda m: m["type"] == "scene")  # on to round 2
        second_games: dict[str, str] = {}
        for p in reversed(people):  # arriving in another order must not regroup them
            found = matched_game(p)
            assert found["seat"] == seats[p.participant_id]
            second_games[p.participant_id] = found["game_id"]
        for p in people:
            p.receive_until(lambda m: m["type"] == "scene")
            p.close()
    pairs_1 = {frozenset(pid for pid in games if games[pid] == g) for g in games.values()}
    pairs_2 = {
        frozenset(pid for pid in second_games if second_games[pid] == g) for g in second_games.values()
    }
    assert pairs_1 == pairs_2 and len(pairs_1) == 2
    matched = [m for m in read_records(tmp_path, "mp_test", "matches") if m["event"] == "matched"]
    assert [m["group_of"] is not None for m in matched] == [False, False, True, True]


def test_group_member_gone_falls_back_to_a_bot(tmp_path):
    first = duel(scene_id="round1", max_steps=100_000, on_partner_left="end")
    second = duel(scene_id="round2", max_steps=10, same_group_as="round1", same_group_fallback="bot")
    app = make_test_app(study(first, second), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as a:
        b = ScriptedParticipant(client).connect()
        matched_game(b)
        matched_game(a)
        b.close()  # leaves for good: round 1 ends for a with partner_left
        a.receive_until(lambda m: m["type"] == "scene")
        assert a.scene["scene"]["scene_id"] == "round2"
        game = matched_game(a)  # at once, with a bot in b's seat
        assert [p["status"] for p in game["players"]] == ["connected", "bot"]
        a.receive_until(lambda m: m["type"] == "scene")
    games = read_records(tmp_path, "mp_test", "games")
    round2 = next(g for g in games if g["scene_id"] == "round2" and g["event"] == "started")
    assert [(s["agent"], s["type"]) for s in round2["seats"]] == [("human", "human"), ("bot", "bot")]


def test_round_trip_times_are_measured_and_recorded_per_player(tmp_path):
    app = make_test_app(study(duel(max_steps=150, rtt_interval_s=0.3)), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as a, ScriptedParticipant(client) as b:
        matched_game(a)
        matched_game(b)
        # Read as a page does, as messages come (a probe is answered when it is read).
        done = {"a": False, "b": False}
        while not all(done.values()):
            for name, p in (("a", a), ("b", b)):
                if not done[name]:
                    done[name] = p.receive()["type"] == "scene"
    episode = read_records(tmp_path, "mp_test", "episodes")[0]
    assert set(episode["rtt_ms"]) == {a.participant_id, b.participant_id}
    for summary in episode["rtt_ms"].values():
        assert summary["n"] >= 3 and 0 <= summary["median"] <= summary["p95"] <= summary["max"] < 1000
    # A Python client reports no page delay: none is recorded, and nothing is taken out.
    assert all(summary["n"] == 0 for summary in episode["page_delay_ms"].values())
    assert a.rtt_probes_answered >= 3


def test_a_pages_own_delay_is_taken_out_of_the_round_trip_and_recorded_apart(tmp_path):
    # A page whose main thread is busy answers a probe late, and says by how much (page_delay_ms):
    # rtt_ms is the round trip less that (the network's share), page_delay_ms the page's part.
    # a: waits 80 ms before answering and says so. b: answers at once but claims more than the
    # whole round trip (the server cannot tell): its page delay is capped at the round trip.
    waited_ms = 80.0
    app = make_test_app(study(duel(max_steps=150, rtt_interval_s=0.3)), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as a, ScriptedParticipant(client) as b:
        matched_game(a)
        matched_game(b)
        a.answer_rtt_probes = b.answer_rtt_probes = False
        done = {"a": False, "b": False}
        while not all(done.values()):
            for name, p in (("a", a), ("b", b)):
                if done[name]:
                    continue
                message = p.receive()
                if message["type"] == "rtt_probe":
                    echo = {"type": "rtt_echo", "game_id": message["game_id"], "n": message["n"]}
                    if name == "a":
                        time.sleep(waited_ms / 1000)
                        p.send({**echo, "page_delay_ms": waited_ms})
                    else:
                        p.send({**echo, "page_delay_ms": 60_000})
                done[name] = message["type"] == "scene"
    episode = read_records(tmp_path, "mp_test", "episodes")[0]
    rtt, page = episode["rtt_ms"], episode["page_delay_ms"]
    assert rtt[a.participant_id]["n"] >= 3 and page[a.participant_id]["n"] == rtt[a.participant_id]["n"]
    assert page[a.participant_id]["median"] == page[a.participant_id]["max"] == waited_ms
    assert rtt[b.participant_id]["n"] >= 3 and page[b.participant_id]["n"] == rtt[b.participant_id]["n"]
    assert rtt[b.participant_id]["median"] == rtt[b.participant_id]["max"] == 0
    assert 0 < page[b.participant_id]["median"] <= page[b.participant_id]["max"] < 10_000


def test_page_delay_in_an_echo_must_be_a_plausible_number():
    _server_decode = MessageDecoder.for_runtimes([("server", (RttEcho,))]).decode
    ok = _server_decode(msgpack.packb({"type": "rtt_echo", "game_id": "g", "n": 1, "page_delay_ms": 2.5}))
    assert ok == RttEcho(game_id="g", n=1, page_delay_ms=2.5)
    assert _server_decode(msgpack.packb({"type": "rtt_echo", "game_id": "g", "n": 1})).page_delay_ms is None
    for bad in (-1, 60_001, "5", True, float("nan")):
        with pytest.raises(ProtocolError, match="page_delay_ms"):
            _server_decode(msgpack.packb({"type": "rtt_echo", "game_id": "g", "n": 1, "page_delay_ms": bad}))


def test_config_errors_for_multiplayer_scenes():
    with pytest.raises(FieldError, match="not both"):
        duel(human_seat="human")
    with pytest.raises(FieldError, match="timeout_scene"):
        WaitingRoom(on_timeout="goto")
    for bad in (float("nan"), float("inf"), 0):
        with pytest.raises(FieldError, match="finite number greater than 0"):
            WaitingRoom(timeout_s=bad)
    with pytest.raises(FieldError, match="timeout_redirect_url"):
        WaitingRoom(on_timeout="redirect")
    with pytest.raises(ConfigError, match="matchmaker 'elo' is not installed"):
        make_test_app(study(duel(matchmaker="elo")), Path("/tmp/igym-unused"))


class TeamMatchmaker(Matchmaker):
    """Pairs players of the same team (the link's ``team`` parameter), first come first paired."""

    kind: ClassVar[str] = "by_team"

    def propose(self, waiting: Sequence[WaitingPlayer], group_size: int) -> list[tuple[str, ...]]:
        teams: dict[str | None, list[str]] = {}
        for player in waiting:
            teams.setdefault(player.params.get("team"), []).append(player.participant_id)
        return [
            tuple(ids[i : i + group_size])
            for ids in teams.values()
            for i in range(0, len(ids) - group_size + 1, group_size)
        ]

    def could_group(self, player: WaitingPlayer, other: WaitingPlayer) -> bool:
        return player.params.get("team") == other.params.get("team")


class Teams:
    @hookimpl
    def igym_register_matchmakers(self) -> list[type[Matchmaker]]:
        return [TeamMatchmaker]


def test_the_waiting_count_shows_only_players_the_matchmaker_could_group_together(tmp_path):
    app = make_test_app(study(duel(matchmaker="by_team")), tmp_path, extra_plugins=[Teams()])
    with TestClient(app) as client, ExitStack() as people:
        red = people.enter_context(ScriptedParticipant(client, params={"team": "red"}))
        assert status(red)["waiting"]["count"] == 1
        blue = people.enter_context(ScriptedParticipant(client, params={"team": "blue"}))
        # Two people wait, but they can never play together: each is alone in their waiting room.
        assert status(blue)["waiting"]["count"] == 1
        assert status(red)["waiting"]["count"] == 1  # told again when blue arrived
        red_too = people.enter_context(ScriptedParticipant(client, params={"team": "red"}))
        game = matched_game(red_too)
        assert matched_game(red)["game_id"] == game["game_id"]
        assert status(blue)["waiting"]["count"] == 1


def test_the_waiting_count_of_by_condition_counts_the_same_condition():
    lobby = Lobby(seats=("a", "b", "c"), matchmaker=ConditionMatchmaker(), timeout_s=60, grace_s=5)
    for pid, condition in [("p1", "x"), ("p2", "y"), ("p3", "x"), ("p4", None)]:
        lobby.arrive(pid, now=0.0, condition=condition)
    assert [lobby.waiting_count(pid, now=1.0) for pid in ("p1", "p2", "p3", "p4")] == [2, 1, 2, 1]
    lobby.disconnected("p3", now=1.0)
    assert lobby.waiting_count("p1", now=1.0) == 1  # only connected players count
    # The fifo matchmaker groups anyone with anyone.
    fifo = Lobby(seats=("a", "b", "c"), matchmaker=FifoMatchmaker(), timeout_s=60, grace_s=5)
    for pid in ("p1", "p2"):
        fifo.arrive(pid, now=0.0, condition=pid)
    assert fifo.waiting_count("p1") == 2


def test_fifo_and_by_condition_matchmakers():
    def players(*conditions: str | None) -> list[WaitingPlayer]:
        return [
            WaitingPlayer(participant_id=f"p{i}", condition=c, waited_s=10.0 - i)
            for i, c in enumerate(conditions)
        ]

    assert FifoMatchmaker().propose(players("a", "b", "a", "b", "a"), 2) == [("p0", "p1"), ("p2", "p3")]
    by_condition = ConditionMatchmaker()
    groups = by_condition.propose(players("a", "b", "a", "b", "a"), 2)
    assert groups == [("p0", "p2"), ("p1", "p3")]  # never mixed; oldest condition first on a tie
    by_condition.formed(players("a", "a"))
    by_condition.formed(players("a", "a"))
    # Condition a already has two groups, b none: b goes first when both could form one.
    assert by_condition.propose(players("a", "a", "b", "b"), 2)[0] == ("p2", "p3")


def test_scenes_named_by_a_game_scene_must_exist():
    from igym_core.config.experiment import experiment_problems

    message = "\n".join(
        experiment_problems(
            study(
                duel(scene_id="round2", same_group_as="round0"),
                duel(scene_id="round3", waiting_room=WaitingRoom(on_timeout="goto", timeout_scene="nowhere")),
            )
        )
    )
    assert "$.scenes[0].same_group_as: names the scene 'round0'" in message
    assert "$.scenes[1].waiting_room.timeout_scene: names the scene 'nowhere'" in message
    problems = experiment_problems(study(duel(scene_id="round2", same_group_as="after")))
    assert any("'after' is not a game scene" in p for p in problems)


def test_each_player_sees_their_own_hud(tmp_path):
    def hud(view) -> str:
        return f"You play {view.seat}: {view.returns[view.seat]:g} points"

    app = make_test_app(study(duel(max_steps=20, hud=hud)), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as a, ScriptedParticipant(client) as b:
        matched_game(a)
        matched_game(b)
        a.hold(a.receive_until(lambda m: m["type"] == "frame")[0]["game_id"], "ArrowUp")  # +4 a step
        huds = {"a": [], "b": []}
        done = {"a": False, "b": False}
        while not all(done.values()):
            for name, p in (("a", a), ("b", b)):
                if not done[name]:
                    message = p.receive()
                    done[name] = message["type"] == "scene"
                    if message["type"] == "frame" and message.get("hud"):
                        huds[name].append(message["hud"])
    assert all(text.startswith("You play human:") for text in huds["a"])
    assert all(text.startswith("You play bot:") for text in huds["b"])
    assert huds["a"][-1] != "You play human: 0 points"  # a's own score went up
    assert huds["b"][-1] == "You play bot: 0 points"  # b held nothing


def test_group_members_gone_on_both_sides_rematch_the_others_together(tmp_path):
    first = duel(scene_id="round1", max_steps=100_000, on_partner_left="end")
    second = duel(scene_id="round2", max_steps=10, same_group_as="round1", same_group_fallback="rematch")
    app = make_test_app(study(first, second), tmp_path)
    with TestClient(app) as client:
        a = ScriptedParticipant(client).connect()
        b = ScriptedParticipant(client).connect()
        matched_game(a), matched_game(b)
        c = ScriptedParticipant(client).connect()
        d = ScriptedParticipant(client).connect()
        matched_game(c), matched_game(d)
        b.close()
        d.close()  # both partners leave for good: round 1 ends for a and c
        for p in (a, c):
            p.receive_until(lambda m: m["type"] == "scene")
            assert p.scene["scene"]["scene_id"] == "round2"
        game_a, game_c = matched_game(a), matched_game(c)  # a and c are grouped anew
        assert game_a["game_id"] == game_c["game_id"]
        for p in (a, c):
            p.receive_until(lambda m: m["type"] == "scene")
            p.close()
    matched = [m for m in read_records(tmp_path, "mp_test", "matches") if m["event"] == "matched"]
    assert [m["group_of"] is None for m in matched] == [True, True, True]
    assert {x["participant_id"] for x in matched[-1]["members"]} == {a.participant_id, c.participant_id}


def test_a_partner_gone_before_the_game_starts_does_not_hold_it_for_the_ready_timeout(tmp_path):
    scene = duel(max_steps=600, ready_timeout_s=30, on_partner_left="bot", partner_policy="random")
    app = make_test_app(study(scene), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as a:
        b = ScriptedParticipant(client).connect()
        b.receive_until(lambda m: m["type"] == "game_status" and m["game_id"] is not None)
        b.close()  # matched, then gone before the page said it was ready
        started = time.monotonic()
        matched_game(a)
        status(a, "playing")
        assert time.monotonic() - started < 10  # not the 30 s ready timeout
        a.receive_until(lambda m: m["type"] == "game_status" and "computer player" in m.get("notice", ""))
        assert time.monotonic() - started < 10
    games = read_records(tmp_path, "mp_test", "games")
    assert [g["event"] for g in games][:2] == ["started", "partner_left"]


@pytest.mark.parametrize("rule", ["resume", "skip"])
def test_after_a_server_restart_a_group_goes_back_through_the_waiting_room_or_skips(tmp_path, rule):
    """A multiplayer game the server stopped is not resumed: its members queue again and a new
    group plays the whole game, or, with ``on_restart="skip"``, move on (docs/games.md)."""
    scene = duel(max_steps=100_000, num_episodes=2, on_restart=rule)
    app = make_test_app(study(scene), tmp_path)
    with TestClient(app) as client:
        a = ScriptedParticipant(client, params={"PROLIFIC_PID": "A"}).connect()
        b = ScriptedParticipant(client, params={"PROLIFIC_PID": "B"}).connect()
        old = matched_game(b)["game_id"]
        matched_game(a)
        a.receive_until(lambda m: m["type"] == "frame" and m["step"] >= 5)
        tokens = (a.token, b.token)
        a.close()
        b.close()
    # The app stopped (the game ended server_stopped); a new app on the same data restores them.
    again = make_test_app(study(scene), tmp_path)
    with TestClient(again) as client:
        a2 = ScriptedParticipant(client, token=tokens[0]).connect()
        if rule == "skip":
            assert a2.scene["scene"]["scene_id"] == "after"
            a2.close()
            return
        assert status(a2)["phase"] == "matching"  # no game to resume: the waiting room again
        b2 = ScriptedParticipant(client, token=tokens[1]).connect()
        new = matched_game(b2)
        assert new["game_id"] != old and new["episode"] == 1
        a2.close()
        b2.close()
    games = read_records(tmp_path, "mp_test", "games")
    (started,) = [g for g in games if g["event"] == "started" and g["game_id"] == new["game_id"]]
    assert "continues" not in started
