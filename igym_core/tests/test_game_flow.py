"""Server game scenes over the socket: the game starts, keys become actions, bots act, data is written,
and every player moves on when the game ends."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from litestar.testing import TestClient

from igym_core import Bot, GymScene, hookimpl
from igym_core.envs import episode_seed, resolve_callable
from igym_core.errors import ConfigError
from igym_core.rendering.delta import apply_delta
from igym_core.testing import ScriptedParticipant, make_test_app, read_records

HERE = Path(__file__).resolve().parent
_envs = f"{HERE / 'game_envs.py'}"
Duel = resolve_callable(f"{_envs}:Duel", what="test env")
corridor_scene = resolve_callable(f"{_envs}:corridor_scene", what="test scene")
study = resolve_callable(f"{_envs}:game_study", what="test study")


def play_until_next_scene(p: ScriptedParticipant, *, hold: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Ready up, hold keys, and read every message until the scene after the game arrives."""
    status = p.receive_until(lambda m: m["type"] == "game_status")[0] if p.kind == "gym" else None
    assert status is not None
    game_id = status["game_id"]
    p.game_ready(game_id)
    if hold:
        p.hold(game_id, *hold)
    _scene, seen = p.receive_until(lambda m: m["type"] == "scene")
    return [status, *seen]


def test_a_game_runs_its_episodes_records_every_step_and_moves_the_player_on(tmp_path):
    app = make_test_app(study(corridor_scene()), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        assert p.kind == "gym"
        view = p.scene["scene"]
        assert view["keys"] == ["ArrowLeft", "ArrowRight"]
        assert view["fps"] == 60 and view["canvas"]["width"] == 600
        messages = play_until_next_scene(p, hold=("ArrowRight",))
        assert p.scene["scene"]["scene_id"] == "after"

    statuses = [m for m in messages if m["type"] == "game_status"]
    assert statuses[0]["phase"] == "waiting"
    assert [s["phase"] for s in statuses][-1] == "ended"
    assert {s["episode"] for s in statuses if s["phase"] == "playing"} == {1, 2}
    frames = [m for m in messages if m["type"] == "frame"]
    assert frames[0]["key"] is True
    # Applying the frames as a browser does gives the objects of the last frame.
    state: dict[str, dict] = {}
    for frame in frames:
        apply_delta(
            state,
            key=frame["key"],
            add=frame.get("add", ()),
            upd=frame.get("upd", ()),
            rm=frame.get("rm", ()),
        )
    assert set(state) == {"floor", "walker", "label"}
    huds = [f["hud"] for f in frames if "hud" in f]  # sent when it changes, and in keyframes
    assert huds[0] == "Score 0" and all(h.startswith("Score ") for h in huds)
    assert frames[0]["episode"] == 1 and frames[-1]["episode"] == 2

    steps = read_records(tmp_path, "game_test", "steps")
    episodes = read_records(tmp_path, "game_test", "episodes")
    games = read_records(tmp_path, "game_test", "games")
    assert [e["episode"] for e in episodes] == [1, 2]
    assert all(e["steps"] == 15 and e["end_reason"] == "max_steps" for e in episodes)
    assert len(steps) == 30
    game_id = games[0]["game_id"]
    for episode in (1, 2):
        rows = [s for s in steps if s["episode"] == episode]
        assert [s["step"] for s in rows] == list(range(1, 16))
        expected_seed = episode_seed(7, f"walk#0#{rows[0]['participant_id']}", episode)
        assert episodes[episode - 1]["seed"] == expected_seed
    first = steps[0]
    assert first["agent"] == "agent_0" and first["seat"] == "human" and first["game_id"] == game_id
    assert first["participant_id"] == games[0]["participant_ids"][0]
    assert {"reward", "terminated", "truncated", "info", "t_server_ms", "keys_held", "action_source"} <= set(
        first
    )
    assert "observation" not in first
    # Keys held → ArrowRight → action 2; before the key arrived, the default action 1.
    held = [s for s in steps if s["keys_held"] == ["ArrowRight"]]
    assert held and all(s["action"] == 2 and s["action_source"] == "human" for s in held)
    assert all(s["action"] == 1 and s["action_source"] == "default" for s in steps if s["keys_held"] == [])
    # Info is flattened.
    assert "position" in steps[-1]["info"] and "detail.moved" in steps[-1]["info"]
    assert [g["event"] for g in games] == ["started", "ended"] and games[1]["reason"] == "completed"
    sessions = read_records(tmp_path, "game_test", "sessions")
    left = [s for s in sessions if s["event"] == "scene_left" and s["scene_id"] == "walk"]
    assert left and left[0]["detail"]["game_id"] == game_id


def test_observations_are_recorded_when_asked(tmp_path):
    app = make_test_app(
        study(corridor_scene(record_observations=True, num_episodes=1, max_steps=3)), tmp_path
    )
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        play_until_next_scene(p)
    steps = read_records(tmp_path, "game_test", "steps")
    assert [len(s["observation"]) for s in steps] == [1, 1, 1]
    # The observation an agent acted on: the first is the reset observation.
    episodes = read_records(tmp_path, "game_test", "episodes")
    assert steps[0]["observation"][0] in (0.0, 1.0, 2.0)
    assert episodes[0]["steps"] == 3


def test_bots_act_every_k_ticks_and_repeat_in_between(tmp_path):
    scene = GymScene(
        scene_id="duel",
        env_factory=Duel,
        human_seat="human",
        policies={"bot": Bot(policy="random", act_every=3)},
        action_mapping={"ArrowUp": 4},
        default_action=0,
        fps=60,
        max_steps=9,
        countdown_s=0,
    )
    app = make_test_app(study(scene), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        play_until_next_scene(p)
    steps = [s for s in read_records(tmp_path, "game_test", "steps") if s["agent"] == "bot"]
    assert [s["action_source"] for s in steps] == ["bot", "bot_repeat", "bot_repeat"] * 3
    for i in range(0, 9, 3):
        assert steps[i]["action"] == steps[i + 1]["action"] == steps[i + 2]["action"]
    assert all(s["seat"] == "bot" and s["participant_id"] is None and s["keys_held"] is None for s in steps)
    games = read_records(tmp_path, "game_test", "games")
    seats = {s["agent"]: s for s in games[0]["seats"]}
    assert seats["bot"]["type"] == "bot" and seats["bot"]["policy"] == "random"


def test_key_combinations_and_press_mode(tmp_path):
    combo = GymScene(
        scene_id="combo",
        env_factory=Duel,
        human_seat="human",
        policies={"bot": "random"},
        action_mapping={"ArrowUp": 1, "ArrowLeft": 2, "ArrowUp+ArrowLeft": 3},
        default_action=0,
        fps=30,
        max_steps=6,
        countdown_s=0,
    )
    presses = GymScene(
        scene_id="presses",
        env_factory=Duel,
        human_seat="human",
        policies={"bot": "random"},
        action_mapping={" ": 4, "x": 2},
        default_action=0,
        input_mode="press",
        fps=30,
        max_steps=8,
        countdown_s=0,
    )
    app = make_test_app(study(combo, presses), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        p.hold(status["game_id"], "ArrowLeft", "ArrowUp", "Shift")  # Shift is not listened to
        p.game_ready(status["game_id"])
        p.receive_until(lambda m: m["type"] == "scene")
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        p.game_ready(status["game_id"])
        p.receive_until(lambda m: m["type"] == "game_status" and m["phase"] == "playing")
        # Three presses in one message, uppercase X too: each is used at one tick, then the default.
        p.press(status["game_id"], " ", "X", " ")
        p.receive_until(lambda m: m["type"] == "scene")
    human = [s for s in read_records(tmp_path, "game_test", "steps") if s["agent"] == "human"]
    combo_rows = [s for s in human if s["scene_id"] == "combo"]
    assert all(s["action"] == 3 and s["keys_held"] == ["ArrowLeft", "ArrowUp"] for s in combo_rows)
    press_rows = [s for s in human if s["scene_id"] == "presses"]
    actions = [s["action"] for s in press_rows]
    first = actions.index(4)
    assert actions[first : first + 3] == [4, 2, 4]
    assert actions.count(0) == len(actions) - 3
    assert [s["keys_held"] for s in press_rows[first : first + 4]][:3] == [[" "], ["x"], [" "]]


def test_reload_mid_game_resumes_with_a_keyframe(tmp_path):
    app = make_test_app(study(corridor_scene(num_episodes=1, max_steps=240)), tmp_path)
    with TestClient(app) as client:
        p = ScriptedParticipant(client).connect()
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        p.game_ready(status["game_id"])
        p.receive_until(lambda m: m["type"] == "frame" and m["step"] >= 5)
        token = p.token
        p.close()
        again = ScriptedParticipant(client, token=token).connect()
        assert again.welcome["resumed"] is True and again.kind == "gym"
        resumed = again.receive_until(lambda m: m["type"] == "game_status")[0]
        assert resumed["game_id"] == status["game_id"] and resumed["phase"] == "playing"
        again.game_ready(status["game_id"])
        frame = again.receive_until(lambda m: m["type"] == "frame")[0]
        assert frame["key"] is True and frame["step"] > 5
        assert {o["id"] for o in frame["add"]} == {"floor", "walker", "label"}
        again.close()
    games = read_records(tmp_path, "game_test", "games")
    assert len([g for g in games if g["event"] == "started"]) == 1


def test_game_messages_are_checked(tmp_path):
    app = make_test_app(study(corridor_scene(num_episodes=1, max_steps=600)), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        p.hold("g-someone-else", "ArrowLeft")
        error = p.receive_until(lambda m: m["type"] == "error")[0]
        assert error["code"] == "not_in_game"
        p.send({"type": "input", "game_id": status["game_id"], "seq": 1, "keys": ["a"] * 17})
        assert p.receive_until(lambda m: m["type"] == "error")[0]["code"] == "bad_message"
        p.send({"type": "input", "game_id": status["game_id"], "seq": 1})
        assert p.receive_until(lambda m: m["type"] == "error")[0]["code"] == "bad_message"
        p.send({"type": "submit", "seq": 9, "position": p.position, "answers": {}})
        assert p.receive_until(lambda m: m["type"] == "error")[0]["code"] == "game_scene"
        assert p.kind == "gym"


def test_late_messages_for_a_game_that_just_ended_are_dropped_without_an_error(tmp_path):
    app = make_test_app(study(corridor_scene(num_episodes=1, max_steps=5, countdown_s=0)), tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        p.game_ready(status["game_id"])
        p.receive_until(lambda m: m["type"] == "scene" and m["scene"]["kind"] != "gym")
        # A key released while the game was ending (the page had not yet moved on): no error.
        p.send({"type": "input", "game_id": status["game_id"], "seq": 5, "keys": []})
        p.send({"type": "input", "game_id": "g-someone-else", "seq": 6, "keys": []})
        error, before = p.receive_until(lambda m: m["type"] == "error")
        assert error["code"] == "not_in_game" and error["seq"] == 6
        assert not [m for m in before if m["type"] == "error"]


def test_nobody_connected_ends_the_game_and_the_participant_comes_back_to_the_next_scene(tmp_path):
    app = make_test_app(
        study(
            corridor_scene(
                num_episodes=1,
                max_steps=100_000,
                abandon_after_s=0.3,
                ready_timeout_s=0.1,
                on_abandon="continue",
            )
        ),
        tmp_path,
    )
    with TestClient(app) as client:
        p = ScriptedParticipant(client).connect()
        token = p.token
        p.close()
        deadline = time.time() + 10
        games: list[dict] = []
        while time.time() < deadline:
            games = read_records(tmp_path, "game_test", "games")
            if any(g["event"] == "ended" for g in games):
                break
            time.sleep(0.1)
        assert games[-1]["reason"] == "abandoned"
        with ScriptedParticipant(client, token=token) as again:
            assert again.scene["scene"]["scene_id"] == "after"
    # The page closed before the first episode began: the game paused there, and no episode
    # was played with nobody at the keys.
    assert read_records(tmp_path, "game_test", "episodes") == []
    assert [g["event"] for g in games] == ["started", "paused", "ended"]


class Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def igym_on_game_started(self, game):
        self.calls.append(("game_started", game.game_id))

    @hookimpl
    def igym_on_episode_started(self, game, episode, seed):
        self.calls.append(("episode_started", episode))

    @hookimpl
    def igym_on_episode_ended(self, game, episode, summary):
        self.calls.append(("episode_ended", summary["end_reason"]))

    @hookimpl
    def igym_on_game_ended(self, game, reason):
        self.calls.append(("game_ended", reason))


def test_hooks_and_scene_callbacks_see_the_game(tmp_path):
    listener = Listener()
    callbacks: list[tuple[str, Any]] = []
    scene = corridor_scene(
        on_episode_start=lambda game, episode, seed: callbacks.append(("start", episode)),
        on_episode_end=lambda game, summary: callbacks.append(("end", summary["steps"])),
        on_game_end=lambda game, reason: callbacks.append(("game", reason)),
        max_steps=4,
    )
    app = make_test_app(study(scene), tmp_path, extra_plugins=[listener])
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        play_until_next_scene(p)
    assert [c[0] for c in listener.calls] == [
        "game_started",
        "episode_started",
        "episode_ended",
        "episode_started",
        "episode_ended",
        "game_ended",
    ]
    assert listener.calls[-1] == ("game_ended", "completed")
    assert callbacks == [("start", 1), ("end", 4), ("start", 2), ("end", 4), ("game", "completed")]


class FailingListener:
    @hookimpl
    def igym_on_episode_ended(self, game, episode, summary):
        raise RuntimeError("a plugin's bug")


def test_a_failing_hook_or_scene_callback_is_logged_and_the_game_goes_on(tmp_path):
    def broken(*args):
        raise ValueError("a researcher's bug")

    scene = corridor_scene(on_episode_start=broken, on_episode_end=broken, on_game_end=broken, max_steps=4)
    app = make_test_app(study(scene), tmp_path, extra_plugins=[FailingListener()])
    with (
        structlog.testing.capture_logs() as logs,
        TestClient(app) as client,
        ScriptedParticipant(client) as p,
    ):
        play_until_next_scene(p)
    failed = [
        (e["event"], e.get("callback") or e.get("hook")) for e in logs if e["event"].endswith("_failed")
    ]
    assert failed == [
        ("scene_callback_failed", "on_episode_start"),
        ("hook_failed", "igym_on_episode_ended"),  # the plugin manager's log (the test app is strict:
        ("game_hook_failed", "notify_episode_ended"),  # it raises on, and the game logs and goes on)
        ("scene_callback_failed", "on_episode_end"),
        ("scene_callback_failed", "on_episode_start"),
        ("hook_failed", "igym_on_episode_ended"),  # the plugin manager's log (the test app is strict:
        ("game_hook_failed", "notify_episode_ended"),  # it raises on, and the game logs and goes on)
        ("scene_callback_failed", "on_episode_end"),
        ("scene_callback_failed", "on_game_end"),
    ]
    episodes = read_records(tmp_path, "game_test", "episodes")
    assert [e["end_reason"] for e in episodes] == ["max_steps", "max_steps"]
    ended = [g for g in read_records(tmp_path, "game_test", "games") if g["event"] == "ended"]
    assert [g["reason"] for g in ended] == ["completed"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"policies": {"ghost": "random"}}, "policies names 'ghost', which is not an agent"),
        ({"policies": {"agent_0": "random"}}, "is a human seat"),
        ({"action_mapping": {"ArrowLeft": 7}}, "the action 7 for 'ArrowLeft' is not in the action space"),
        ({"env_factory": "no_such_module_xyz:make"}, "no_such_module_xyz"),
        ({"renderer": "vector"}, "renderer 'vector' is not installed"),
    ],
)
def test_broken_game_scenes_fail_at_start_with_the_fix(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_test_app(study(corridor_scene(**overrides)), tmp_path)


def test_seats_without_a_player_are_named(tmp_path):
    scene = GymScene(
        scene_id="duel", env_factory=Duel, human_seat="human", action_mapping={"a": 1}, default_action=0
    )
    with pytest.raises(ConfigError, match="agent 'bot' has no player; give it a policy"):
        make_test_app(study(scene), tmp_path)
    with pytest.raises(ConfigError, match="human_seat 'nobody' is not an agent"):
        make_test_app(
            study(
                GymScene(
                    scene_id="duel",
                    env_factory=Duel,
                    human_seat="nobody",
                    default_action=0,
                    policies={"bot": "random"},
                )
            ),
            tmp_path,
        )
    with pytest.raises(ConfigError, match="say which one the participant plays"):
        make_test_app(
            study(GymScene(scene_id="duel", env_factory=Duel, default_action=0, policies={"bot": "random"})),
            tmp_path,
        )


def test_batched_bots_are_evaluated_in_one_call_per_tick_across_games(tmp_path):
    """Bots whose policies share a batcher act through one act_batch call per tick for all the games
    ticking together (one tick group here), with the same actions the policy would choose alone."""
    echo = resolve_callable(f"{_envs}:BatchedEcho", what="policy class")
    batcher = echo.batcher
    batcher.calls.clear()
    echo.acted_alone = 0
    scene = GymScene(
        scene_id="duel",
        env_factory=Duel,
        human_seat="human",
        policies={"bot": echo},
        action_mapping={"ArrowUp": 4},
        default_action=0,
        fps=60,
        max_steps=20,
        countdown_s=0,
        ready_timeout_s=5,
    )
    app = make_test_app(study(scene), tmp_path, tick_groups=1)
    with TestClient(app) as client, ScriptedParticipant(client) as p1, ScriptedParticipant(client) as p2:
        s1 = p1.receive_until(lambda m: m["type"] == "game_status")[0]
        s2 = p2.receive_until(lambda m: m["type"] == "game_status")[0]
        p1.game_ready(s1["game_id"])
        p2.game_ready(s2["game_id"])
        p1.receive_until(lambda m: m["type"] == "scene")
        p2.receive_until(lambda m: m["type"] == "scene")
    steps = [s for s in read_records(tmp_path, "game_test", "steps") if s["agent"] == "bot"]
    assert len(steps) == 40 and all(s["action_source"] == "bot" for s in steps)
    assert sum(batcher.calls) + echo.acted_alone == 40
    assert max(batcher.calls) == 2  # both games' bots in one call
    # Each bot chose (the human's counter + its own calls so far) % 5; the human held nothing (the
    # default action adds 0), so the n-th step of each game has action n % 5, whichever path.
    for game_id in {s["game_id"] for s in steps}:
        rows = sorted((s for s in steps if s["game_id"] == game_id), key=lambda s: s["step"])
        assert [r["action"] for r in rows] == [n % 5 for n in range(1, 21)]
