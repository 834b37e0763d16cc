"""A Unity scene (igym-unity) in real Chromium on a real `igym run`, with igym's fake Unity build.

The fake build (``igym_unity.testing``) has a real loader interface (``createUnityInstance`` with
progress), links the shipped ``Igym.jslib`` as Unity does and plays scripted episodes through it.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from igym_core.testing import read_records
from igym_unity.testing import TRICKY_LOG, write_fake_build

QUOTED_NOTE = 'round "one" \\ ü 🎮 </script>'


def state(page: Page) -> dict[str, Any]:
    return page.evaluate("() => window.igym && window.igym.state")


def fake(page: Page) -> dict[str, Any]:
    return page.evaluate("() => window.__fakeUnity || null") or {}


def poll(check: Callable[[], Any], page: Page, what: str, timeout_s: float = 15) -> Any:
    """Call ``check`` until it is truthy (the page's CSP forbids wait_for_function)."""
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (state: {state(page)})")
        page.wait_for_timeout(50)
    return result


def wait_scene(page: Page, scene_id: str, timeout_s: float = 15) -> None:
    poll(
        lambda: (s := state(page)) and s["connected"] and s["scene_id"] == scene_id,
        page,
        f"scene {scene_id}",
        timeout_s,
    )


def study(
    tmp_path: Path,
    build_parent: Path,
    *,
    num_episodes: int = 3,
    extra: str = "",
    load_timeout_s: float = 30,
    end_extra: str = "",
) -> str:
    """A study file: an intro, the Unity scene, a page for those who could not play, the end."""
    path = tmp_path / "unity_study.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from igym_core import EndScene, Experiment, StaticScene
            from igym_unity import UnityScene

            def condition_for(game, episode):
                return {{"episode": episode, "partner": 'Ana "the quick" \\\\ 🐇'}}

            def one_coin(episode):
                return {{"score": 1, "bonus": 0.5}}

            experiment = Experiment(
                experiment_id="unity_e2e",
                seed=1,
                scenes=(
                    StaticScene(scene_id="intro", body="A game comes next."),
                    UnityScene(
                        scene_id="game",
                        build_dir={str(build_parent)!r},
                        num_episodes={num_episodes},
                        send_message_object="GameManager",
                        send_message_method="Configure",
                        on_episode_start=condition_for,
                        load_timeout_s={load_timeout_s},
                        {extra}
                    ),
                    StaticScene(scene_id="after", body="Thanks for playing."),
                    StaticScene(scene_id="sorry", body="The game did not run in your browser."),
                    EndScene(scene_id="end", completion_code="PLAYED1",
                             codes_by_outcome={{"unity_load_failed": "NOGAME9"}}, {end_extra}),
                ),
            )
            """
        ),
        encoding="utf-8",
    )
    return f"{path}:experiment"


def script(**overrides: Any) -> dict[str, Any]:
    return {
        "load_ms": 1500,
        "start_ms": 100,
        "between_ms": 150,
        "episodes": [{"duration_ms": 1200, "score": 2.5, "note": QUOTED_NOTE, "logs": [TRICKY_LOG]}],
        **overrides,
    }


def test_a_participant_plays_the_build_a_refresh_resumes_the_episode_and_the_scene_ends(
    live_server: Any, new_page: Any, shots: Any, tmp_path: Path
) -> None:
    # gzip with hashed names: served with Content-Encoding, decoded by the browser.
    write_fake_build(tmp_path / "build", compression="gzip", hashed_names=True, script=script())
    server = live_server(study(tmp_path, tmp_path / "build"))
    page = new_page()
    page.goto(f"{server.url}/?PROLIFIC_PID=unity1")
    wait_scene(page, "intro")
    page.get_by_role("button", name="Continue", exact=True).click()

    wait_scene(page, "game")
    # The progress bar shows while the build loads (1.5 s in the fake build).
    progress = page.get_by_test_id("unity-progress")
    expect(progress).to_be_visible()
    poll(lambda: 0 < state(page)["unity"]["progress"] < 1, page, "progress between 0 and 1")
    shots(page, "01-loading")
    poll(lambda: state(page)["unity"]["loaded"], page, "the build loaded")
    expect(progress).to_be_hidden()
    steps = fake(page)["progress"]
    assert steps[0] == 0 and steps[-1] == 1 and any(0 < p < 1 for p in steps), steps

    # Episode 1 ends; episode 2 has started on the server once the game got its SendMessage.
    poll(lambda: len(fake(page).get("sent", [])) >= 2, page, "episode 2 started")
    expect(page.get_by_test_id("unity-status")).to_have_text("Episode 2 of 3")
    shots(page, "02-playing")
    sent = fake(page)["sent"]
    assert sent[0]["object"] == "GameManager" and sent[0]["method"] == "Configure"
    assert json.loads(sent[0]["value"]) == {"episode": 1, "partner": 'Ana "the quick" \\ 🐇'}
    assert json.loads(sent[1]["value"])["episode"] == 2

    # A refresh in the middle of episode 2: the server counted 1 episode; the page resumes at 2.
    page.reload()
    wait_scene(page, "game")
    poll(lambda: (state(page).get("unity") or {}).get("loaded"), page, "the build loaded again")
    expect(page.get_by_test_id("unity-status")).to_have_text("Episode 2 of 3")
    first = fake(page)["sent"]
    poll(lambda: len(fake(page).get("sent", [])) >= 1, page, "an episode started after the refresh")
    first = fake(page)["sent"]
    assert json.loads(first[0]["value"])["episode"] == 2  # the server's count, not the game's

    # Episodes 2 and 3 end: the scene ends and the participant moves on.
    wait_scene(page, "after", timeout_s=20)
    shots(page, "03-after")

    events = read_records(server.data_dir, "unity_e2e", "unity_events")
    started = [r["episode"] for r in events if r["event"] == "episode_started"]
    assert started == [1, 2, 2, 3], started
    ended = [r for r in events if r["event"] == "episode_ended"]
    assert [r["episode"] for r in ended] == [1, 2, 3]
    assert all(json.loads(r["payload"]) == {"score": 2.5, "note": QUOTED_NOTE} for r in ended)
    logs = [r for r in events if r["event"] == "log"]
    assert logs and all(r["payload"] == TRICKY_LOG for r in logs)  # byte for byte, as the game sent it
    for row in events:
        assert row["scene_id"] == "game" and row["participant_id"] == state(page)["participant_id"]
        assert row["server_time_ms"] > 0 and row["server_time"].endswith("Z")
        if row["event"] != "send_message":
            assert row["client_time_ms"] > 1.7e12
    episodes = read_records(server.data_dir, "unity_e2e", "episodes")
    assert [(e["episode"], e["end_reason"]) for e in episodes] == [
        (1, "ended"),
        (2, "interrupted"),
        (2, "ended"),
        (3, "ended"),
    ]
    games = read_records(server.data_dir, "unity_e2e", "games")
    end = next(g for g in games if g["event"] == "ended")
    assert end["reason"] == "completed" and end["episodes_played"] == 3 and end["score"] == 7.5
    assert [g["reload"] for g in games if g["event"] == "runtime_loaded"] == [False, False]
    assert page.errors == []


def test_a_build_that_fails_to_load_shows_the_message_and_the_way_out(
    live_server: Any, new_page: Any, shots: Any, tmp_path: Path
) -> None:
    write_fake_build(tmp_path / "build", script=script(load_ms=200, fail="out of memory (fake)"))
    server = live_server(study(tmp_path, tmp_path / "build", extra='failure_scene="sorry",'))
    page = new_page()
    page.goto(f"{server.url}/?PROLIFIC_PID=unity2")
    wait_scene(page, "intro")
    page.get_by_role("button", name="Continue", exact=True).click()
    wait_scene(page, "game")
    notice = page.get_by_test_id("unity-notice")
    expect(notice).to_contain_text("The game could not be loaded in this browser.")
    shots(page, "01-failed")
    assert state(page)["unity"]["failed"] == {"stage": "instance", "detail": "out of memory (fake)"}
    page.get_by_test_id("unity-way-out").click()
    wait_scene(page, "sorry")
    page.get_by_role("button", name="Continue", exact=True).click()
    wait_scene(page, "end")
    expect(page.get_by_text("NOGAME9")).to_be_visible()
    shots(page, "02-code")
    games = read_records(server.data_dir, "unity_e2e", "games")
    failed = [g for g in games if g["event"] == "runtime_load_failed"]
    assert [(g["stage"], g["message"]) for g in failed] == [("instance", "out of memory (fake)")]
    assert next(g for g in games if g["event"] == "ended")["reason"] == "runtime_load_failed"


def test_a_build_that_does_not_load_in_time_shows_the_message_and_the_way_out(
    live_server: Any, new_page: Any, shots: Any, tmp_path: Path
) -> None:
    # The fake build takes 60 s to load; the scene allows 5 s (the least load_timeout_s takes).
    write_fake_build(tmp_path / "build", script=script(load_ms=60_000))
    server = live_server(
        study(
            tmp_path,
            tmp_path / "build",
            extra='failure_scene="sorry", score_episode=one_coin,',
            load_timeout_s=5,
            end_extra="values_text='Your bonus: £{game_bonus:.2f} <b>x</b>'",
        )
    )
    page = new_page()
    page.goto(f"{server.url}/?PROLIFIC_PID=unity5")
    wait_scene(page, "intro")
    page.get_by_role("button", name="Continue", exact=True).click()
    wait_scene(page, "game")
    poll(lambda: 0 < state(page)["unity"]["progress"] < 1, page, "the build loading")
    notice = page.get_by_test_id("unity-notice")
    expect(notice).to_contain_text("The game could not be loaded in this browser.", timeout=15_000)
    shots(page, "01-timed-out")
    assert state(page)["unity"]["failed"]["stage"] == "timeout"
    # The participant stays on the message until they take the way out.
    page.wait_for_timeout(1500)
    assert state(page)["scene_id"] == "game"
    expect(page.get_by_test_id("unity-status")).to_have_text("The game could not be loaded")
    page.get_by_test_id("unity-way-out").click()
    wait_scene(page, "sorry")
    page.get_by_role("button", name="Continue", exact=True).click()
    wait_scene(page, "end")
    expect(page.get_by_text("NOGAME9")).to_be_visible()
    # The participant's values on the end page, as plain text (no game played: a bonus of 0).
    expect(page.get_by_test_id("values-text")).to_have_text("Your bonus: £0.00 <b>x</b>")
    games = read_records(server.data_dir, "unity_e2e", "games")
    assert [g["event"] for g in games] == ["started", "load_timeout", "ended"]
    assert games[-1]["reason"] == "load_timeout"
    assert page.errors == []


def test_a_small_window_waits_and_a_brotli_build_plays_once_it_is_large_enough(
    live_server: Any, new_page: Any, shots: Any, tmp_path: Path
) -> None:
    # brotli: Chromium decodes Content-Encoding: br from 127.0.0.1 (over plain HTTP elsewhere it would not).
    write_fake_build(
        tmp_path / "build",
        compression="brotli",
        script=script(load_ms=200, episodes=[{"duration_ms": 400, "score": 1}]),
    )
    server = live_server(
        study(tmp_path, tmp_path / "build", num_episodes=1, extra="min_width_px=1000, min_height_px=700,")
    )
    page = new_page()
    page.set_viewport_size({"width": 900, "height": 600})
    page.goto(f"{server.url}/?PROLIFIC_PID=unity3")
    wait_scene(page, "intro")
    page.get_by_role("button", name="Continue", exact=True).click()
    wait_scene(page, "game")
    notice = page.get_by_test_id("unity-notice")
    expect(notice).to_contain_text("at least 1000 × 700 pixels (it is 900 × 600 now)")
    shots(page, "01-too-small")
    assert state(page)["unity"]["phase"] == "screen" and fake(page) == {}  # nothing loaded yet
    page.set_viewport_size({"width": 1100, "height": 800})
    poll(lambda: state(page)["unity"]["loaded"], page, "the brotli build loaded")
    expect(notice).to_be_hidden()
    wait_scene(page, "after")
    events = read_records(server.data_dir, "unity_e2e", "unity_events")
    assert [r["event"] for r in events if r["event"] != "send_message"] == [
        "episode_started",
        "episode_ended",
    ]


def test_a_browser_without_webgl_is_told_before_loading_and_shown_the_way_out(
    live_server: Any, new_page: Any, shots: Any, tmp_path: Path
) -> None:
    write_fake_build(tmp_path / "build", script=script(load_ms=200))
    server = live_server(study(tmp_path, tmp_path / "build", extra='on_failure="end",'))
    page = new_page()
    # This browser has no WebGL: every WebGL context request fails, as on a machine without it.
    page.add_init_script(
        "const get = HTMLCanvasElement.prototype.getContext;"
        "HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {"
        "  return String(kind).startsWith('webgl') ? null : get.call(this, kind, ...rest); };"
    )
    page.goto(f"{server.url}/?PROLIFIC_PID=unity4")
    wait_scene(page, "intro")
    page.get_by_role("button", name="Continue", exact=True).click()
    wait_scene(page, "game")
    expect(page.get_by_test_id("unity-notice")).to_contain_text("could not be loaded")
    assert state(page)["unity"]["failed"]["stage"] == "webgl"
    assert fake(page) == {}  # the build was never loaded
    way_out = page.get_by_test_id("unity-way-out")
    expect(way_out).to_have_text("Finish the study")
    way_out.click()
    wait_scene(page, "end")  # on_failure="end": straight to the end scene, with the outcome's code
    expect(page.get_by_text("NOGAME9")).to_be_visible()
    games = read_records(server.data_dir, "unity_e2e", "games")
    assert [g["stage"] for g in games if g["event"] == "runtime_load_failed"] == ["webgl"]


def test_a_build_with_decompression_fallback_runs_its_framework_from_a_blob_url(
    live_server: Any, new_page: Any, tmp_path: Path
) -> None:
    # .unityweb: the loader fetches the framework, decompresses it and runs it from a blob: URL, as
    # Unity's does; the page's CSP allows blob: scripts for this study only.
    write_fake_build(
        tmp_path / "build",
        compression="unityweb",
        script=script(load_ms=200, episodes=[{"duration_ms": 400, "score": 1}]),
    )
    server = live_server(study(tmp_path, tmp_path / "build", num_episodes=1))
    page = new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{server.url}/?PROLIFIC_PID=unity6")
    wait_scene(page, "intro")
    page.get_by_role("button", name="Continue", exact=True).click()
    wait_scene(page, "game")
    poll(lambda: state(page)["unity"]["loaded"] or state(page)["unity"]["failed"], page, "the build loaded")
    assert state(page)["unity"]["failed"] is None and refused == []
    wait_scene(page, "after")
    assert page.errors == []
