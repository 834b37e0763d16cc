"""``UnityScene.score_episode``: the server scores each episode from its recorded bridge events,
through the app and a scripted page; the game's claimed score never counts; a failing callback is
recorded and the game goes on; the callback survives the experiment's snapshot; ``igym check``
refuses a callback that cannot take the episode."""

from __future__ import annotations

import json
import math
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

import igym_unity.plugin
from igym_core import ByCondition, EndScene, Experiment, RepeatScene, StaticScene
from igym_core.config.converter import structure_or_raise
from igym_core.config.validators import FieldError
from igym_core.config.value_text import fill_value_text
from igym_core.errors import ConfigError
from igym_core.testing import ScriptedParticipant, make_test_app, read_records
from igym_unity import EpisodeEvents, UnityScene
from igym_unity.examples.fake_game import score_from_events
from igym_unity.scoring import episode_score_from
from igym_unity.testing import write_fake_build

from .support import unity_study
from .test_bridge import bridge, in_unity_scene, loaded

SEEN: list[EpisodeEvents] = []


def coins(episode: EpisodeEvents) -> dict[str, Any]:
    """One point per ``{"coin": 1}`` log the server recorded; the payloads' claims are ignored."""
    SEEN.append(episode)
    points = sum(1 for e in episode.events if e.event == "log" and e.value == {"coin": 1})
    return {"score": points, "bonus": 0.25 * points, "coins": points, "last": episode.events[-1].event}


def play(p: ScriptedParticipant, game_id: str, logs: list[str], ended: dict[str, Any]) -> None:
    bridge(p, game_id, "episode_started", "{}")
    p.receive_type("game_status")
    for payload in logs:
        bridge(p, game_id, "log", payload)
    bridge(p, game_id, "episode_ended", json.dumps(ended))


def test_the_servers_score_ignores_the_games_claimed_score_and_winner(tmp_path: Path) -> None:
    SEEN.clear()
    before_ms = time.time() * 1000
    with in_unity_scene(tmp_path, num_episodes=2, score_episode=coins) as (_client, p, game_id):
        loaded(p, game_id)
        claim = {"score": 1000, "winner": "player", "bonus": 99}
        play(p, game_id, ['{"coin": 1}', '{"coin": 1}', '{"coin": 5}'], claim)
        assert p.receive_type("game_status")["score"] == 2.0
        play(p, game_id, ['{"coin": 1}'], {**claim, "coins": 50})
        final = p.receive_type("game_status")
        assert (final["phase"], final["episodes_done"], final["score"]) == ("ended", 2, 3.0)
    after_ms = time.time() * 1000
    # The callback got the server's copies: every event of the episode, server-timestamped.
    assert [[e.event for e in s.events] for s in SEEN] == [
        ["episode_started", "log", "log", "log", "episode_ended"],
        ["episode_started", "log", "episode_ended"],
    ]
    assert [s.episode for s in SEEN] == [1, 2]
    for seen in SEEN:
        times = [e.server_time_ms for e in seen.events]
        assert before_ms - 1 <= times[0] and times == sorted(times) and times[-1] <= after_ms + 1
        assert all(e.client_time_ms == 1.7e12 for e in seen.events)  # the page's claim, kept apart
        assert seen.events[-1].value["winner"] == "player" and seen.participant_id
    episodes = read_records(tmp_path / "data", "unity_test", "episodes")
    assert [
        (e["returns"], e["bonus"], e["bonus_total"], e["score_fields"], e["score_error"], e["score_source"])
        for e in episodes
    ] == [
        ({"player": 2.0}, 0.5, 0.5, {"coins": 2, "last": "episode_ended"}, None, "server"),
        ({"player": 1.0}, 0.25, 0.75, {"coins": 1, "last": "episode_ended"}, None, "server"),
    ]
    ended = next(g for g in read_records(tmp_path / "data", "unity_test", "games") if g["event"] == "ended")
    assert (ended["score"], ended["bonus"]) == (3.0, 0.75)


FAILURES: list[int] = []


def flaky(episode: EpisodeEvents) -> Any:
    """Raises in episode 1, returns a wrong type in 2, a non-finite score in 3, then scores 7."""
    FAILURES.append(episode.episode)
    if episode.episode == 1:
        raise KeyError("level")
    if episode.episode == 2:
        return "12"
    if episode.episode == 3:
        return {"score": float("nan")}
    return {"score": 7, "when": {"set": object()}} if episode.episode == 4 else {"score": 7}


def test_a_failing_score_callback_is_recorded_and_the_game_goes_on(tmp_path: Path) -> None:
    FAILURES.clear()
    with in_unity_scene(tmp_path, num_episodes=5, score_episode=flaky) as (_client, p, game_id):
        loaded(p, game_id)
        for episode in range(1, 6):
            play(p, game_id, [], {"score": 500})
            status = p.receive_type("game_status")
            assert status["episodes_done"] == episode
        assert (status["phase"], status["score"]) == ("ended", 7.0)
        assert p.receive_type("scene")["scene"]["scene_id"] == "after"
    assert FAILURES == [1, 2, 3, 4, 5]
    episodes = read_records(tmp_path / "data", "unity_test", "episodes")
    assert [e["returns"]["player"] for e in episodes] == [0.0, 0.0, 0.0, 0.0, 7.0]
    assert [e["counted"] for e in episodes] == [True] * 5
    errors = [e["score_error"] for e in episodes]
    assert errors[0] == "score_episode raised KeyError: 'level'"
    assert errors[1].startswith("score_episode returned a value igym cannot use: expected a dict")
    assert "'score' must be a finite number; got nan" in errors[2]
    assert "other values must be JSON" in errors[3]
    assert errors[4] is None


def test_the_callback_survives_the_snapshot_and_scores_the_reloaded_study(tmp_path: Path) -> None:
    write_fake_build(tmp_path / "build")
    study = unity_study(tmp_path / "build", score_episode=score_from_events)
    app = make_test_app(study, tmp_path / "first", extra_plugins=[igym_unity.plugin])
    with TestClient(app):
        pass
    [path] = (tmp_path / "first" / "unity_test" / "snapshots").glob("*.json")
    data = json.loads(path.read_text(encoding="utf-8"))["experiment"]
    assert data["scenes"][1]["score_episode"] == "igym_unity.examples.fake_game:score_from_events"
    reloaded = structure_or_raise(app.state.converter, data, Experiment, title="snapshot")
    assert reloaded.scenes[1].score_episode == "igym_unity.examples.fake_game:score_from_events"
    # The reloaded study scores on the server with the same function.
    again = make_test_app(reloaded, tmp_path / "second", extra_plugins=[igym_unity.plugin])
    with TestClient(again) as client, ScriptedParticipant(client) as p:
        p.submit({})
        game_id = p.receive_type("game_status")["game_id"]
        loaded(p, game_id)
        play(p, game_id, ["{}", "{}", "{}"], {"score": 1000})
        assert p.receive_type("game_status")["score"] == 3.0
    [episode] = read_records(tmp_path / "second", "unity_test", "episodes")
    assert (episode["returns"], episode["bonus"]) == ({"player": 3.0}, 0.15)


def test_a_lambda_in_the_snapshot_is_refused_by_name_when_loaded(tmp_path: Path) -> None:
    write_fake_build(tmp_path / "build")
    study = unity_study(tmp_path / "build", score_episode=lambda e: {"score": 1})
    app = make_test_app(study, tmp_path / "data", extra_plugins=[igym_unity.plugin])
    data = app.state.converter.unstructure(study)
    assert "not_loadable" in data["scenes"][1]["score_episode"]
    with pytest.raises(ConfigError) as caught:
        structure_or_raise(app.state.converter, json.loads(json.dumps(data)), Experiment, title="snapshot")
    assert "score_episode" in str(caught.value) and "without an import path" in str(caught.value)


def test_igym_check_refuses_a_score_callback_that_cannot_take_the_episode(tmp_path: Path) -> None:
    write_fake_build(tmp_path / "build")
    (tmp_path / "study.py").write_text(
        "from igym_core import EndScene, Experiment\n"
        "from igym_unity import UnityScene\n"
        "def score(game, episode):\n"
        "    return {'score': 1}\n"
        "experiment = Experiment(experiment_id='bad_score', scenes=(\n"
        "    UnityScene(scene_id='game', build_dir='build', score_episode=score),\n"
        "    UnityScene(scene_id='game2', build_dir='build', score_episode='study_nowhere:score'),\n"
        "    EndScene(scene_id='end'),\n"
        "))\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "check", f"{tmp_path / 'study.py'}:experiment"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    message = done.stdout + done.stderr
    assert done.returncode != 0, message
    assert "$.scenes[0].score_episode: score_episode is called with one argument" in message, message
    assert "scenes[1]" in message and "study_nowhere" in message, message


def test_without_a_callback_the_games_score_counts_as_before(tmp_path: Path) -> None:
    with in_unity_scene(tmp_path) as (_client, p, game_id):
        loaded(p, game_id)
        play(p, game_id, [], {"score": 4})
        assert p.receive_type("game_status")["score"] == 4.0
    [episode] = read_records(tmp_path / "data", "unity_test", "episodes")
    assert episode["score_source"] == "game" and "bonus" not in episode
    UnityScene(scene_id="x", build_dir="b")  # the field is optional


def test_the_servers_totals_become_the_participants_values_and_survive_a_restart(tmp_path: Path) -> None:
    write_fake_build(tmp_path / "build")
    study = unity_study(tmp_path / "build", num_episodes=2, score_episode=coins)
    app = make_test_app(study, tmp_path / "data", extra_plugins=[igym_unity.plugin])
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        p.submit({})
        game_id = p.receive_type("game_status")["game_id"]
        loaded(p, game_id)
        play(p, game_id, ['{"coin": 1}'], {"score": 9})
        p.receive_type("game_status")
        play(p, game_id, ['{"coin": 1}', '{"coin": 1}'], {"score": 9})
        assert p.receive_type("game_status")["phase"] == "ended"
        assert p.receive_type("scene")["scene"]["scene_id"] == "after"
        [participant] = app.state.study.by_id.values()
        pid = participant.participant_id
        assert {k: participant.values[k] for k in ("game_score", "game_bonus")} == {
            "game_score": 3.0,
            "game_bonus": 0.75,
        }
    sessions = read_records(tmp_path / "data", "unity_test", "sessions")
    added = [s for s in sessions if s["event"] == "values_added"]
    assert [(s["participant_id"], s["detail"]["values"]) for s in added] == [
        (pid, {"game_score": 3.0, "game_bonus": 0.75})
    ]
    # A new server process on the same data restores them with the participant.
    again = make_test_app(study, tmp_path / "data", extra_plugins=[igym_unity.plugin])
    with TestClient(again):
        restored = again.state.study.by_id[pid]
        assert (restored.values["game_score"], restored.values["game_bonus"]) == (3.0, 0.75)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(
    value=_json
    | st.dictionaries(st.sampled_from(["score", "bonus", "x", 1]), _json | st.just(object()), max_size=4)
)
def test_any_callback_value_is_taken_or_refused_with_a_reason(value: Any) -> None:
    try:
        scored = episode_score_from(value)
    except ValueError as exc:  # the only way a value is refused, with what is wrong
        assert str(exc)
        return
    assert value is None or isinstance(value, dict)
    given_score = value.get("score", 0) if isinstance(value, dict) else 0
    assert scored.score == given_score and math.isfinite(scored.score)
    assert json.loads(json.dumps(scored.fields, allow_nan=False)) == scored.fields
    assert "score" not in scored.fields and "bonus" not in scored.fields


def test_a_scene_played_twice_sums_its_plays_and_the_end_page_shows_the_totals(tmp_path: Path) -> None:
    write_fake_build(tmp_path / "build")
    study = Experiment(
        experiment_id="unity_twice",
        scenes=(
            StaticScene(scene_id="intro"),
            RepeatScene(
                scene=UnityScene(scene_id="game", build_dir=str(tmp_path / "build"), score_episode=coins),
                times=2,
            ),
            EndScene(scene_id="end", values_text="Coins: {game_score:.0f}, bonus: £{game_bonus:.2f} {{ok}}"),
        ),
    )
    app = make_test_app(study, tmp_path / "data", extra_plugins=[igym_unity.plugin])
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        p.submit({})
        for coins_this_play in (3, 2):
            game_id = p.receive_type("game_status")["game_id"]
            loaded(p, game_id)
            play(p, game_id, ['{"coin": 1}'] * coins_this_play, {"score": 9})
            assert p.receive_type("game_status")["phase"] == "ended"
            p.scene = p.receive_type("scene")
        assert p.scene["scene"]["scene_id"] == "end"
        assert p.scene["context"]["values_text"] == "Coins: 5, bonus: £1.25 {ok}"
    sessions = read_records(tmp_path / "data", "unity_twice", "sessions")
    added = [(s["instance"], s["detail"]) for s in sessions if s["event"] == "values_added"]
    assert added == [
        (
            0,
            {
                "values": {"game_score": 3.0, "game_bonus": 0.75},
                "increments": {"game_score": 3.0, "game_bonus": 0.75},
            },
        ),
        (
            1,
            {
                "values": {"game_score": 5.0, "game_bonus": 1.25},
                "increments": {"game_score": 2.0, "game_bonus": 0.5},
            },
        ),
    ]
    # In the exported data: the finished record holds the participant's values.
    [finished] = [s for s in sessions if s["event"] == "finished"]
    assert (finished["detail"]["values"]["game_score"], finished["detail"]["values"]["game_bonus"]) == (
        5.0,
        1.25,
    )


def test_a_participant_who_never_played_sees_the_declared_default_never_an_empty_text(tmp_path: Path) -> None:
    write_fake_build(tmp_path / "build")
    study = Experiment(
        experiment_id="unity_branch",
        conditions=("plays", "reads"),
        scenes=(
            StaticScene(scene_id="intro"),
            ByCondition(
                branches={
                    "plays": (
                        UnityScene(scene_id="game", build_dir=str(tmp_path / "build"), score_episode=coins),
                    ),
                    "reads": (StaticScene(scene_id="story"),),
                }
            ),
            EndScene(scene_id="end", values_text="Bonus: {game_bonus:.2f}"),
        ),
    )
    app = make_test_app(study, tmp_path / "data", extra_plugins=[igym_unity.plugin])
    with TestClient(app) as client:
        for _ in range(2):  # balanced conditions: one of the two reads
            with ScriptedParticipant(client) as p:
                p.submit({})
                if p.scene["scene"]["scene_id"] == "story":
                    assert p.submit({})["context"]["values_text"] == "Bonus: 0.00"
                    return
    raise AssertionError("no participant was given the condition without the game")


def test_igym_check_refuses_a_values_text_with_a_value_no_scene_gives(tmp_path: Path) -> None:
    write_fake_build(tmp_path / "build")
    source = (
        "from igym_core import EndScene, Experiment\n"
        "from igym_unity import UnityScene\n"
        "def coins(episode):\n    return {'score': 1}\n"
        "experiment = Experiment(experiment_id='texts', scenes=(\n"
        "    UnityScene(scene_id='game', build_dir='build', SCORING),\n"
        "    EndScene(scene_id='end', values_text='Bonus: {game_bonuss:.2f}'),\n"
        "))\n"
    )

    def check(text: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "study.py").write_text(text, encoding="utf-8")
        return subprocess.run(
            [sys.executable, "-m", "igym_core.cli", "check", f"{tmp_path / 'study.py'}:experiment"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = check(source.replace("SCORING", "score_episode=coins"))
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert (
        "$.scenes[1].values_text: no scene of the experiment gives participants the value {game_bonuss}"
        in (message)
    )
    assert "Did you mean 'game_bonus'?" in message
    # Without score_episode the game gives no values: the right name is refused too.
    done = check(source.replace("SCORING", "num_episodes=1").replace("game_bonuss", "game_bonus"))
    assert done.returncode != 0 and "the value {game_bonus}" in done.stdout + done.stderr
    assert (
        check(
            source.replace("SCORING", "score_episode=coins").replace("game_bonuss", "game_bonus")
        ).returncode
        == 0
    )
    with pytest.raises(FieldError, match="not a number format"):
        EndScene(scene_id="end", values_text="{game_bonus:.2q}")
    with pytest.raises(FieldError, match="not a plain value name"):
        EndScene(scene_id="end", values_text="{game.__class__}")


@given(
    text=st.lists(st.sampled_from(["{a}", "{b:.2f}", "{c:>4}", " x ", "{{", "}}", "é"]), max_size=8).map(
        "".join
    ),
    values=st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.none() | st.integers() | st.floats() | st.text(max_size=3) | st.booleans(),
    ),
)
def test_every_placeholder_is_filled_with_some_text(text: str, values: dict[str, Any]) -> None:
    defaults = {"a": 0.0, "b": 0.0, "c": "none"}
    filled = fill_value_text(text, values, defaults)
    expected_slots = text.replace("{{", "").replace("}}", "").count("{")
    # Each placeholder's replacement is non-empty: the filled text is at least as long as its literals
    # plus one character per placeholder.
    literal = "".join(part for part, _n, _s, _c in string.Formatter().parse(text))
    assert len(filled) >= len(literal) + expected_slots
