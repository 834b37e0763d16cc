"""The pyodide runtime's page module and Web Worker in headless Chromium, on a real igym page.

`igym run` serves the runtime's files (/plugins/pyodide/) and igym_onnx's browser module; the test
serves Pyodide (from npm) and a bundle of the browser's Python (the lean igym_core modules the
browser code declares, the stepping code, the slime env and attrs) as the load plan names them.
The test plays the server's part of the wire protocol: it issues episodes and acknowledges batches.

Checked: the loader shows its stages and a growing bar, the worker plays Slime Volleyball against
the trained ONNX bot at the scene's fps, held keys move the participant's slime, every step leaves
in numbered batches (at least once a second, and at the episode's end) with `episode_done` after
the last; and the same episode replayed under CPython from the recorded seed, keys and bot actions
gives the same rewards, infos and state hashes, with the bot's actions those igym_onnx's Python
policy chooses.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from igym_core import EndScene, Experiment, GymScene
from igym_core.envs import agent_seed
from igym_core.plugins.manager import create_plugin_manager
from igym_core.runtime.records import flatten as _flatten
from igym_core.serving import validate_for_serving
from igym_core.settings import Settings
from igym_pyodide_p2p.browser.spec import GameSpec
from igym_pyodide_p2p.browser.stepper import BrowserGame
from igym_pyodide_p2p.game_spec import browser_game_spec
from igym_slime.bots import trained_policy
from igym_slime.env import make_env
from igym_slime.render import HEIGHT, WIDTH, draw

sys.path.insert(0, str(Path(__file__).parent))
from browser_support import Standin

from igym_core.testing import LiveServer
from igym_core.testing.support import in_chromium


@pytest.fixture
def igym_server(tmp_path: Path) -> Iterator[str]:
    """`igym run` of the example survey study with this plugin and igym-onnx loaded."""
    with LiveServer(
        "igym_core.examples.survey_study:experiment",
        tmp_path / "data",
        plugins=["igym_pyodide_p2p.plugin", "igym_onnx.plugin"],
    ) as server:
        yield server.url


@pytest.fixture
def run_page(igym_server: str) -> Callable[..., Any]:
    """``run_page(script, args, participant, standin=None)``: ``script`` evaluated (with ``args``) in
    Chromium on a participant page of ``igym_server`` whose Pyodide packages ``standin`` serves (a
    :class:`Standin` of the slime scene by default); its result, the page's errors and console errors."""

    def run(
        script: str, args: dict[str, Any], participant: str, standin: Standin | None = None
    ) -> tuple[Any, list[str], list[str]]:
        standin = standin or Standin(igym_server, ("slime",), always=True)

        def work(browser: Any) -> Any:
            context = browser.new_context()
            context.route("**/*", standin.route)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.goto(f"{igym_server}/?PROLIFIC_PID={participant}")
            return page.evaluate(script, args), errors, console

        outcome = in_chromium(work)
        assert standin.blocked == [], "every request stays on loopback"
        return outcome

    return run


#: The page side of every test: the runtime's module and a host as the gym scene gives it
#: (``makeHost(spec, {drawFrame, style})`` → ``{stage, sent, game, deliver, until}``); each script
#: starts with it. ``until(test, ms)`` waits for ``test()`` and throws, saying what was sent, if it
#: does not come true in time.
HOST = """
const makeHost = async (spec, {drawFrame = () => {}, style = {}} = {}) => {
  const runtime = await import("/plugins/pyodide/runtime.js");
  const stage = document.createElement("div");
  Object.assign(stage.style, {position: "relative"}, style);
  document.body.append(stage);
  const handlers = {};
  const sent = [];
  const host = {
    stage,
    scene: {scene_id: "slime", runtime_view: {game: spec}},
    send: (m) => sent.push(structuredClone(m)),
    onMessage: (type, fn) => { (handlers[type] ??= []).push(fn); return () => {}; },
    drawFrame,
  };
  const game = runtime.createPyodideGame(host);
  const deliver = (m) => (handlers[m.type] || []).forEach((fn) => fn(m));
  const until = async (test, ms = 60000) => {
    const end = performance.now() + ms;
    while (!test()) {
      if (performance.now() > end) {
        const types = JSON.stringify(sent.map((m) => m.type));
        const why = JSON.stringify({failed: game.state.failed, loadFailed: game.state.load_failed});
        throw new Error("timed out; sent: " + types + " " + why);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const loaded = async () => {
    await until(() => sent.some((m) => m.type === "runtime_loaded" || m.type === "runtime_load_failed"));
    return sent.find((m) => m.type === "runtime_loaded" || m.type === "runtime_load_failed");
  };
  return {stage, sent, game, deliver, until, loaded};
};
"""


def page_script(body: str) -> str:
    """An async page function of ``{spec, seeds}`` whose ``body`` can use ``makeHost`` (:data:`HOST`)."""
    return "async ({spec, seeds}) => {\n" + HOST + body + "\n}"


def slime_scene() -> GymScene:
    return GymScene(
        scene_id="slime",
        env_factory=make_env,
        env_kwargs={"lives": 3, "max_steps": 3000},
        human_seat="left",
        policies={"right": trained_policy()},
        render_fn=draw,
        action_mapping={
            "ArrowLeft": 1,
            "ArrowRight": 2,
            "ArrowUp": 3,
            "ArrowUp+ArrowLeft": 4,
            "ArrowUp+ArrowRight": 5,
        },
        default_action=0,
        fps=30,
        num_episodes=2,
        max_steps=75,
        countdown_s=0,
        canvas_width=WIDTH,
        canvas_height=HEIGHT,
    )


def prepared_scene() -> Any:
    experiment = Experiment(experiment_id="worker", seed=3, scenes=(slime_scene(), EndScene(scene_id="end")))
    plugins = create_plugin_manager(
        autoload=False, strict=True, extra=[__import__("igym_onnx.plugin").plugin]
    )
    plan = validate_for_serving(experiment, plugins, Settings())
    (prepared,) = [p for p in plan.prepared.values() if getattr(p, "scene", None) is not None]
    return prepared


PAGE_SCRIPT = page_script("""
  spec.bots.right.onnx.model = new Uint8Array(spec.bots.right.onnx.model);
  const frames = [];
  const objects = {};
  const loaderSeen = {stages: new Set(), fractions: []};
  const drawFrame = (f) => {
    if (f.key) for (const k of Object.keys(objects)) delete objects[k];
    for (const id of f.rm || []) delete objects[id];
    for (const o of f.add || []) objects[o.id] = {...o};
    for (const u of f.upd || []) Object.assign(objects[u.id], u);
    const x = objects.left_slime && objects.left_slime.x;
    frames.push({step: f.step, episode: f.episode, key: f.key, x, hud: f.hud, at: performance.now()});
  };
  const {stage, sent, game, deliver, until, loaded: whenLoaded} =
    await makeHost(spec, {drawFrame, style: {width: "768px", height: "384px"}});
  const watch = setInterval(() => {
    const bar = stage.querySelector(".igym-pyodide-loader");
    if (bar) {
      loaderSeen.stages.add(bar.dataset.stage);
      loaderSeen.fractions.push(Number(bar.getAttribute("aria-valuenow")));
      loaderSeen.text = bar.textContent;
    }
  }, 20);
  deliver({type: "game_status", game_id: "g1", phase: "loading"});
  const loaded = await whenLoaded();
  if (loaded.type === "runtime_load_failed") return {loaded, sent};
  clearInterval(watch);
  const acks = [];
  const ackAll = () => {
    for (const m of sent) if (m.type === "step_batch" && !acks.includes(m.batch)) {
      acks.push(m.batch);
      deliver({type: "batch_ack", game_id: "g1", batch: m.batch});
    }
  };
  // Episode 1: hold the left arrow for a while, then the right arrow.
  game.keys(["ArrowLeft"]);
  const started = performance.now();
  const episode = (n) => ({type: "pyodide_episode", game_id: "g1", episode: n, seed: seeds[n - 1],
                           num_episodes: 2, max_steps: 75, fps: 30});
  deliver(episode(1));
  await until(() => frames.some((f) => f.step >= 30), 10000);
  const xAfterLeft = objects.left_slime.x;
  game.keys(["ArrowRight"]);
  await until(() => sent.some((m) => m.type === "episode_done" && m.episode === 1), 10000);
  const episodeMs = performance.now() - started;
  const xAfterRight = objects.left_slime.x;
  // A reconnect before any acknowledgement: every batch and the episode's end go again, in order.
  const before = sent.length;
  deliver({type: "welcome"});
  await until(() => sent.length > before, 2000);
  const resent = sent.slice(before).map((m) => [m.type, m.batch ?? m.episode]);
  ackAll();
  game.keys([]);
  deliver(episode(2));
  await until(() => sent.some((m) => m.type === "episode_done" && m.episode === 2), 10000);
  ackAll();
  const state = {...game.state};
  deliver({type: "game_status", game_id: "g1", phase: "ended"});
  game.destroy();
  return {loaded, sent, frames, xAfterLeft, xAfterRight, episodeMs, state, resent,
          loader: {stages: [...loaderSeen.stages], fractions: loaderSeen.fractions, text: loaderSeen.text},
          loaderGone: stage.querySelector(".igym-pyodide-loader") === null};
""")


def test_the_worker_plays_slime_against_the_onnx_bot_and_streams_every_step(run_page):
    prepared = prepared_scene()
    spec = browser_game_spec(prepared)
    seeds = [prepared.episode_seed(0, ["p"], 1), prepared.episode_seed(0, ["p"], 2)]
    page_spec = {**spec, "bots": {"right": {**spec["bots"]["right"]}}}
    page_spec["bots"]["right"]["onnx"] = {
        **spec["bots"]["right"]["onnx"],
        "model": list(spec["bots"]["right"]["onnx"]["model"]),
    }

    result, errors, console = run_page(PAGE_SCRIPT, {"spec": page_spec, "seeds": seeds}, "pyodide")
    assert result["loaded"]["type"] == "runtime_loaded", result["loaded"]
    assert errors == [] and console == [], (errors, console)
    stages = result["loaded"]["stages"]
    assert set(stages) == {"runtime_ms", "packages_ms", "env_ms", "model_ms"}
    assert stages["runtime_ms"] > 0 and stages["model_ms"] > 0
    # The loader showed its stages with sizes and a bar that grew, and went away with the first frame.
    loader = result["loader"]
    assert {"runtime", "packages"} <= set(loader["stages"])
    assert (
        "Python runtime (" in loader["text"]
        and "MB)" in loader["text"]
        and "Computer player (" in loader["text"]
    )
    assert (
        loader["fractions"] == sorted(loader["fractions"])
        and loader["fractions"][-1] > loader["fractions"][0]
    )
    assert result["loaderGone"]

    # Held keys moved the participant's slime: left first, then right.
    start_x = result["frames"][0]["x"]
    assert result["xAfterLeft"] < start_x < result["xAfterRight"]
    # 75 steps at 30 fps: about 2.5 s (a generous bound: the machine is shared).
    assert 2000 < result["episodeMs"] < 6000

    sent = [m for m in result["sent"]]
    first_batches = list(
        dict.fromkeys(m["batch"] for m in sent if m["type"] == "step_batch" and m["episode"] == 1)
    )
    assert result["resent"] == [*(["step_batch", n] for n in first_batches), ["episode_done", 1]]
    # From here on, the messages as the server would keep them (the re-sent copies are duplicates).
    seen: set[tuple[str, int]] = set()
    unique = []
    for m in sent:
        key = (m["type"], m.get("batch", m.get("episode", 0)))
        if m["type"] in ("step_batch", "episode_done") and key in seen:
            continue
        seen.add(key)
        unique.append(m)
    sent = unique
    batches = [m for m in sent if m["type"] == "step_batch"]
    assert [b["batch"] for b in batches] == list(range(1, len(batches) + 1))
    assert result["state"]["unacked"] == 0 and result["state"]["batches_acked"] == len(batches)
    for episode, seed in ((1, seeds[0]), (2, seeds[1])):
        mine = [b for b in batches if b["episode"] == episode]
        steps = [s for b in mine for s in b["steps"]]
        assert [s["step"] for s in steps] == list(range(1, 76)), "every step exactly once, in order"
        assert all(len(b["steps"]) <= 31 for b in mine), "a batch at least once a second"
        done_at = next(
            i for i, m in enumerate(sent) if m["type"] == "episode_done" and m["episode"] == episode
        )
        assert sent[done_at] == {
            "type": "episode_done",
            "game_id": "g1",
            "episode": episode,
            "steps": 75,
            "end_reason": "max_steps",
        }
        assert sent.index(mine[-1]) < done_at
        hashes = [h for b in mine for h in b["hashes"]]
        assert [h[0] for h in hashes] == [0, 30, 60, 75]
        replay_and_compare(prepared, spec, episode, seed, steps, hashes)
    left = [s for b in batches if b["episode"] == 1 for s in b["steps"]]
    assert left[0]["keys"]["left"] == ["ArrowLeft"] and left[0]["actions"]["left"] == 1
    assert left[-1]["keys"]["left"] == ["ArrowRight"] and left[-1]["actions"]["left"] == 2


def replay_and_compare(prepared: Any, spec: dict, episode: int, seed: int, steps: list, hashes: list) -> None:
    """CPython replays the browser's episode: same rewards, infos and state hashes; the ONNX bot's
    actions are what igym_onnx's Python policy chooses for the same observations and seed."""
    game = BrowserGame(GameSpec.from_json(spec), game_id="g1")
    game.start_episode(episode, seed)
    env = prepared.make_env()[0]
    policy = prepared.load_policy("right", env)
    policy.reset(seed=agent_seed(seed, "right"))
    for record in steps:
        (due,) = game.js_due()
        assert due[0] == "right"
        assert policy.act(due[1]) == record["actions"]["right"], f"the bot's action at step {record['step']}"
        game.set_held(record["keys"]["left"])
        game.step(record["t_ms"], {"right": record["actions"]["right"]})
    batch = game.take_batch()
    assert batch is not None
    for mine, theirs in zip(batch["steps"], steps, strict=True):
        for field in ("actions", "sources", "keys", "rewards", "terminated", "truncated"):
            assert mine[field] == theirs[field], (field, mine["step"])
        assert {a: _flatten(i) for a, i in mine["infos"].items()} == {
            a: _flatten(i) for a, i in theirs["infos"].items()
        }
    assert batch["hashes"] == hashes, "the same states in Pyodide and CPython"


FAILING_PAGE = page_script("""
  const {stage, sent, game, deliver, until} = await makeHost(spec);
  deliver({type: "game_status", game_id: "g9", phase: "loading"});
  await until(() => sent.some((m) => m.type === "runtime_load_failed"));
  const loader = stage.querySelector(".igym-pyodide-loader");
  const shown = loader && {state: loader.dataset.state, text: loader.textContent};
  return {sent, state: {...game.state}, loader: shown};
""")


def test_a_package_that_cannot_be_fetched_fails_the_load_at_its_stage(igym_server, run_page):
    prepared = prepared_scene()
    spec = {**browser_game_spec(prepared), "bots": {}}
    spec["bots"] = {"right": {"kind": "random", "n": 6, "start": 0, "act_every": 1, "between": "repeat"}}
    standin = Standin(igym_server, ("slime",), always=True)
    standin.manifest["scenes"]["slime"]["wheels"] = [
        {
            "project": "gone",
            "filename": "gone-1.0-py3-none-any.whl",
            "url": "/test-packages/gone.whl",
            "bytes": 10,
        }
    ]

    result, _errors, _console = run_page(FAILING_PAGE, {"spec": spec}, "failing", standin)
    failed = [m for m in result["sent"] if m["type"] == "runtime_load_failed"]
    assert len(failed) == 1 and failed[0]["game_id"] == "g9" and failed[0]["stage"] == "packages"
    assert "gone.whl" in failed[0]["message"] and "404" in failed[0]["message"]
    assert not any(m["type"] == "runtime_loaded" for m in result["sent"])
    assert result["loader"]["state"] == "failed" and "could not be loaded" in result["loader"]["text"]


STALL_PAGE = page_script("""
  const {sent, game, deliver, until, loaded} = await makeHost(spec);
  deliver({type: "game_status", game_id: "g2", phase: "loading"});
  await loaded();
  deliver({type: "pyodide_episode", game_id: "g2", episode: 1, seed: 3, num_episodes: 1,
           max_steps: 60, fps: 30});
  await until(() => sent.some((m) => m.type === "episode_done"));
  return {sent, state: {...game.state}};
""")


def test_the_worker_keeps_its_deadlines_and_skips_the_ones_a_stall_missed(igym_server, run_page):
    """A bot holds the worker for 150 ms (4.5 periods) once: the ticks it made late skip the
    deadlines they missed (counted) instead of catching up in a burst, and the episode stays on its
    grid: step n is made at deadline n + (deadlines skipped before it), never drifting later."""
    spec = {
        "scene_id": "slime",
        "env_factory": "igym_slime.env:make_env",
        "env_kwargs": {"lives": 3},
        "render_fn": "igym_slime.render:draw",
        "hud": None,
        "agents": ["left", "right"],
        "human_seat": "left",
        "action_mapping": {"ArrowLeft": 1},
        "default_action": 0,
        "input_mode": "held",
        "fps": 30,
        "num_episodes": 1,
        "max_steps": 60,
        "bots": {"right": {"kind": "python", "target": "stall_bot:stall_once"}},
        "action_spaces": {"left": [6, 0], "right": [6, 0]},
    }
    standin = Standin(
        igym_server, ("slime",), extra={"stall_bot.py": Path(__file__).with_name("stall_bot.py")}, always=True
    )

    result, _errors, _console = run_page(STALL_PAGE, {"spec": spec}, "stall", standin)
    state = result["state"]
    steps = [s for m in result["sent"] if m["type"] == "step_batch" for s in m["steps"]]
    assert [s["step"] for s in steps] == list(range(1, 61))
    period = state["period_ms"]
    assert abs(period - 1000 / 30) < 1e-6
    # The stalled tick ends 4.5 periods after its deadline: the next three deadlines are past.
    assert state["ticks_skipped"] >= 3, state
    # Drift-free: the last step ran at its deadline (60 + skipped periods after the start), late by
    # less than a period; a scheduler that waited a period after each late tick would be 150 ms late.
    span = steps[-1]["t_ms"] - state["episode_started_ms"]
    assert 0 <= span - (60 + state["ticks_skipped"]) * period < period, (span, state)
    # The stall: one gap of at least four periods, then the steps go on at the scene's rate.
    gaps = [b["t_ms"] - a["t_ms"] for a, b in itertools.pairwise(steps)]
    assert max(gaps) >= 4 * period


DELAYED_PAGE = page_script("""
  const frames = [];
  const drawFrame = (f) =>
    frames.push({step: f.step, key: f.key, at: performance.timeOrigin + performance.now()});
  const {sent, deliver, until, loaded} = await makeHost(spec, {drawFrame});
  deliver({type: "game_status", game_id: "g3", phase: "loading"});
  await loaded();
  const issued = performance.timeOrigin + performance.now();
  deliver({type: "pyodide_episode", game_id: "g3", episode: 1, seed: 4, num_episodes: 1, max_steps: 30,
           fps: 30, start_in_ms: 1000});
  await until(() => sent.some((m) => m.type === "episode_done"));
  return {sent, frames, issued};
""")


def test_an_episode_issued_at_the_countdowns_start_shows_its_first_frame_and_steps_after_it(run_page):
    """``start_in_ms``: the reset frame is drawn at once (under the countdown, as the server runtime
    draws it) and the first step is made when the countdown ends."""
    spec = {**browser_game_spec(prepared_scene())}
    spec["bots"] = {"right": {"kind": "random", "n": 6, "start": 0, "act_every": 1, "between": "repeat"}}
    result, _errors, _console = run_page(DELAYED_PAGE, {"spec": spec}, "delayed")
    first = result["frames"][0]
    assert first["key"] is True and first["step"] == 0
    assert first["at"] - result["issued"] < 500, "the reset frame is drawn at once"
    steps = [s for m in result["sent"] if m["type"] == "step_batch" for s in m["steps"]]
    assert [s["step"] for s in steps] == list(range(1, 31))
    assert steps[0]["t_ms"] - result["issued"] >= 1000, "the first step waits for the countdown"


REFUSAL_PAGE = page_script(
    """
  const {sent, game, deliver, until} = await makeHost(spec);
  const batches = (episode) => sent.filter((m) => m.type === "step_batch" && m.episode === episode);
  deliver({type: "game_status", game_id: "g1", phase: "loading"});
  await until(() => sent.some((m) => m.type === "runtime_loaded"), 60000);
  const episode = (n, extra) => ({type: "pyodide_episode", game_id: "g1", episode: n, seed: seeds[n - 1],
                                  num_episodes: 2, max_steps: 300, fps: 30, ...extra});
  deliver(episode(1));
  await until(() => batches(1).length >= 3, 10000);
  await new Promise((r) => setTimeout(r, 200));  // steps of episode 1 wait for their batch
  deliver({type: "batch_ack", game_id: "g1", batch: 1});
  // The server refused batch 2 (it ended episode 1 there) and issued episode 2 from batch 2, while
  // the page is still stepping episode 1.
  const why = "batch 2 refused: step 20: the info of 'left' takes more than 1024 bytes";
  deliver({type: "error", code: "bad_batch", message: why, seq: null});
  deliver(episode(2, {next_batch: 2}));
  await until(() => batches(2).length >= 1, 10000);
  const failed = game.state.failed;
  const first1 = batches(1).map((m) => [m.batch, m.first_step]);
  const first2 = batches(2).map((m) => [m.batch, m.first_step]);
  const before = sent.length;
  deliver({type: "welcome"});  // a reconnect: what is not acknowledged goes again
  await new Promise((r) => setTimeout(r, 300));
  const resent = sent.slice(before).filter((m) => m.type === "step_batch").map((m) => [m.episode, m.batch]);
  const unackedBefore = game.state.unacked;
  const last = Math.max(...batches(2).map((m) => m.batch));
  deliver({type: "batch_ack", game_id: "g1", batch: last});  // one ack covers every batch up to it
  const state = {...game.state};
  deliver({type: "game_status", game_id: "g1", phase: "ended"});
  game.destroy();
  return {failed, resent, unackedBefore, last, state, first1, first2};
"""
)


def test_a_refused_batch_ends_the_pages_episode_and_it_numbers_the_next_from_next_batch(igym_server):
    """The page's side of a refusal that ended an episode: the worker takes the new episode while it
    still has steps of the old one (it drops them), numbers its batches from ``next_batch``, and no
    batch of the old episode is sent again; a ``batch_ack`` covers every batch up to its number."""
    scene = attrs.evolve(slime_scene(), policies={"right": "random"})
    experiment = Experiment(experiment_id="worker", seed=3, scenes=(scene, EndScene(scene_id="end")))
    plan = validate_for_serving(experiment, create_plugin_manager(autoload=False, strict=True), Settings())
    (prepared,) = [p for p in plan.prepared.values() if getattr(p, "scene", None) is not None]
    spec = browser_game_spec(prepared)
    standin = Standin(igym_server, ("slime",), always=True)
    seeds = [prepared.episode_seed(0, ["p"], 1), prepared.episode_seed(0, ["p"], 2)]

    def work(browser: Any) -> Any:
        context = browser.new_context()
        context.route("**/*", standin.route)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{igym_server}/?PROLIFIC_PID=pyodide")
        return page.evaluate(REFUSAL_PAGE, {"spec": spec, "seeds": seeds}), errors

    result, errors = in_chromium(work)
    assert errors == [] and result["failed"] is None, (errors, result)
    first1, first2 = result["first1"], result["first2"]
    assert [b for b, _ in first1] == [1, 2, 3]
    assert first2[0] == [2, 1] and [b for b, _ in first2] == list(range(2, 2 + len(first2)))
    # After the reconnect only episode 2's batches (not acknowledged yet) went again, in order.
    assert result["resent"] and {e for e, _ in result["resent"]} == {2}
    assert [b for _, b in result["resent"]] == sorted(b for _, b in result["resent"])
    assert result["unackedBefore"] >= 1 and result["state"]["unacked"] <= 1  # a batch may be on its way
