"""The browser's stepping code (run here under CPython) against the server runtime.

A real server game of Slime Volleyball is played over the socket with changing held keys; the
browser's :class:`BrowserGame` then replays it from the recorded seeds and held keys and must
produce the same actions, action sources, keys, rewards, flags and infos at every step (everything
but timing), the same episode ends, and frames that draw the same objects with the server's HUD.
"""

from __future__ import annotations

import itertools
from typing import Any

import gymnasium
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from igym_core import Bot, EndScene, Experiment, GymScene, PythonPolicy, RandomPolicy, StaticScene
from igym_core.envs import agent_seed
from igym_core.plugins.manager import create_plugin_manager
from igym_core.rendering.delta import apply_delta
from igym_core.runtime.records import flatten as _flatten
from igym_core.serving import validate_for_serving
from igym_core.settings import Settings
from igym_core.testing import ScriptedParticipant, make_test_app, read_records
from igym_pyodide_p2p.browser.rng import DiscreteSampler, Pcg64
from igym_pyodide_p2p.browser.seeds import agent_seed as browser_agent_seed
from igym_pyodide_p2p.browser.spec import GameSpec
from igym_pyodide_p2p.browser.stepper import BrowserGame
from igym_pyodide_p2p.game_spec import browser_game_spec
from igym_slime.env import make_env
from igym_slime.render import draw

MAPPING = {
    "ArrowLeft": 1,
    "ArrowRight": 2,
    "ArrowUp": 3,
    "ArrowUp+ArrowLeft": 4,
    "ArrowUp+ArrowRight": 5,
}
#: Held-key states the participant cycles through (combinations and a key the game ignores).
KEY_STATES = [
    ("ArrowRight",),
    ("ArrowUp", "ArrowLeft"),
    (),
    ("ArrowLeft", "x"),
    ("ArrowUp",),
    ("ArrowRight", "ArrowUp"),
]


def slime_scene(policy: Any, **overrides: Any) -> GymScene:
    options: dict[str, Any] = dict(
        scene_id="slime",
        env_factory=make_env,
        env_kwargs={"lives": 2, "max_steps": 400},
        human_seat="left",
        policies={"right": policy},
        render_fn=draw,
        action_mapping=MAPPING,
        default_action=0,
        fps=120,
        num_episodes=2,
        max_steps=70,
        countdown_s=0,
    )
    options.update(overrides)
    return GymScene(**options)


def study(scene: GymScene) -> Experiment:
    return Experiment(
        experiment_id="parity",
        seed=11,
        scenes=(scene, StaticScene(scene_id="after", body="Thanks"), EndScene(scene_id="end")),
    )


def play_on_server(experiment: Experiment, tmp_path) -> tuple[list[dict], list[dict]]:
    """Play the game over the socket, changing the held keys every few frames; the step and
    episode records the server wrote."""
    app = make_test_app(experiment, tmp_path)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        status = p.receive_until(lambda m: m["type"] == "game_status")[0]
        game_id = status["game_id"]
        p.game_ready(game_id)
        states = itertools.cycle(KEY_STATES)
        frames = 0
        while True:
            message = p.receive()
            if message["type"] == "scene":
                break
            if message["type"] == "frame":
                frames += 1
                if frames % 7 == 0:
                    p.hold(game_id, *next(states))
    return (
        read_records(tmp_path, "parity", "steps"),
        read_records(tmp_path, "parity", "episodes"),
    )


def prepared_scene(experiment: Experiment) -> Any:
    plan = validate_for_serving(experiment, create_plugin_manager(autoload=False, strict=True), Settings())
    (prepared,) = [p for p in plan.prepared.values() if getattr(p, "scene", None) is not None]
    return prepared


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(Bot(policy=RandomPolicy(), act_every=3), id="random-every-3-repeat"),
        pytest.param(
            Bot(
                policy=PythonPolicy(target="igym_slime.bots:scripted_policy"), act_every=2, between="default"
            ),
            id="python-every-2-default",
        ),
    ],
)
def test_the_browser_stepper_records_what_the_server_runtime_records(tmp_path, policy):
    experiment = study(slime_scene(policy))
    steps, episodes = play_on_server(experiment, tmp_path)
    assert [e["episode"] for e in episodes] == [1, 2]
    spec = browser_game_spec(prepared_scene(experiment))
    game = BrowserGame(GameSpec.from_json(spec), game_id="g1")
    held_seen = set()
    for episode in episodes:
        rows = [r for r in steps if r["episode"] == episode["episode"]]
        by_step: dict[int, dict[str, dict]] = {}
        for row in rows:
            by_step.setdefault(row["step"], {})[row["agent"]] = row
        assert sorted(by_step) == list(range(1, episode["steps"] + 1))
        frame = game.start_episode(episode["episode"], episode["seed"])
        objects: dict[str, dict] = {}
        apply_delta(objects, key=True, add=frame["add"])
        assert frame["hud"] == "Score 0"
        made: list[dict] = []
        result: dict[str, Any] = {}
        for step in range(1, episode["steps"] + 1):
            human = by_step[step]["left"]
            held_seen.add(tuple(human["keys_held"]))
            game.set_held(human["keys_held"])
            result = game.step(1000.0 + step)
            made.append(result["frame"])
            frame = result["frame"]
            apply_delta(objects, add=frame.get("add", ()), upd=frame.get("upd", ()), rm=frame.get("rm", ()))
            assert result["done"] == (step == episode["steps"])
        assert result["end_reason"] == episode["end_reason"]
        batch = game.take_batch()
        assert batch is not None and batch["episode"] == episode["episode"] and batch["first_step"] == 1
        assert [s["step"] for s in batch["steps"]] == list(range(1, episode["steps"] + 1))
        for record in batch["steps"]:
            for agent, row in by_step[record["step"]].items():
                assert record["actions"][agent] == row["action"], (record["step"], agent)
                assert record["sources"][agent] == row["action_source"], (record["step"], agent)
                assert record["keys"].get(agent) == row["keys_held"]
                assert record["rewards"][agent] == row["reward"]
                assert record["terminated"][agent] == row["terminated"]
                assert record["truncated"][agent] == row["truncated"]
                assert _flatten(record["infos"][agent]) == row["info"]
        # Hashes after the reset, every 30 steps and at the end, each of the env's state then.
        assert [h[0] for h in batch["hashes"]] == sorted(
            {0, *range(30, episode["steps"] + 1, 30), episode["steps"]}
        )
        assert game.episode_done() == {
            "type": "episode_done",
            "game_id": "g1",
            "episode": episode["episode"],
            "steps": episode["steps"],
            "end_reason": episode["end_reason"],
        }
        # The frames draw what the renderer draws of the env now, and the HUD is the server's.
        expected: dict[str, dict] = {}
        apply_delta(expected, key=True, add=[o.to_wire() for o in draw(game.env)])
        assert objects == expected
        score = episode["returns"]["left"]
        assert game.hud_text == f"Score {score:g}"
    assert len(held_seen) >= 3, "the participant's keys changed during the game"


def test_a_human_seat_maps_combinations_and_press_mode_like_the_server():
    spec = GameSpec.from_json(
        {
            "scene_id": "s",
            "env_factory": "igym_slime.env:make_env",
            "env_kwargs": {"lives": 1},
            "render_fn": "igym_slime.render:draw",
            "hud": None,
            "agents": ["left", "right"],
            "human_seat": "left",
            "action_mapping": MAPPING,
            "default_action": 0,
            "input_mode": "press",
            "fps": 30,
            "num_episodes": 1,
            "max_steps": None,
            "bots": {"right": {"kind": "constant", "action": 3}},
            "action_spaces": {"left": [6, 0], "right": [6, 0]},
        }
    )
    game = BrowserGame(spec, game_id="g")
    game.press(["ArrowLeft"])  # before the episode: ignored, as on the server
    game.start_episode(1, 5)
    game.press(["ArrowLeft", "ArrowRight", "q"])
    sources = []
    for _ in range(3):
        game.step(0.0)
    batch = game.take_batch()
    assert batch is not None
    sources = [(s["actions"]["left"], s["sources"]["left"], s["keys"]["left"]) for s in batch["steps"]]
    assert sources == [(1, "human", ["ArrowLeft"]), (2, "human", ["ArrowRight"]), (0, "default", [])]
    assert [s["actions"]["right"] for s in batch["steps"]] == [3, 3, 3]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), n=st.integers(1, 2**32), start=st.integers(-5, 5))
def test_the_random_bot_draws_numpys_numbers(seed, n, start):
    generator = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    mine = Pcg64(seed)
    assert [int(generator.integers(n)) for _ in range(20)] == [mine.integers(n) for _ in range(20)]
    if n <= 1000:
        space = gymnasium.spaces.Discrete(n, start=start)
        space.seed(seed)
        sampler = DiscreteSampler(n, start)
        sampler.reset(seed=seed)
        assert [int(space.sample()) for _ in range(20)] == [sampler.act(None) for _ in range(20)]


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), agent=st.text(max_size=12))
def test_the_browser_derives_the_bots_seeds_as_the_server_does(seed, agent):
    assert browser_agent_seed(seed, agent) == agent_seed(seed, agent)


@pytest.mark.parametrize("record_observations", [False, True])
def test_the_browser_stepper_tells_the_env_which_seats_are_observed(record_observations, monkeypatch):
    """As the server runtime does: the bots' seats before the first reset (every seat when the
    scene records observations), so that the human's observation is never built."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[3] / "igym_core" / "tests"))
    spec = GameSpec.from_json(
        {
            "scene_id": "s",
            "env_factory": "observed_envs:Watched",
            "env_kwargs": {},
            "render_fn": None,
            "hud": None,
            "agents": ["human", "bot"],
            "human_seat": "human",
            "action_mapping": {"ArrowUp": 4},
            "default_action": 0,
            "input_mode": "held",
            "fps": 30,
            "num_episodes": 1,
            "max_steps": None,
            "record_observations": record_observations,
            "bots": {"bot": {"kind": "constant", "action": 3}},
            "action_spaces": {"human": [5, 0], "bot": [5, 0]},
        }
    )
    game = BrowserGame(spec, game_id="g")
    game.start_episode(1, 5)
    game.step(0.0)
    (step,) = game.take_batch()["steps"]
    expected = ["bot", "human"] if record_observations else ["bot"]
    assert step["infos"]["bot"]["observed"] == expected and step["infos"]["bot"]["told"] == 1
