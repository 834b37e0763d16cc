"""The runtime seam: a runtime plugin (``turn_runtime.py``, the example of docs/runtimes.md) gets a
typed prepared game, adds its own message type (decoded, validated, routed to its game), refuses
scenes at start through ``check_scene`` (``igym check`` and ``igym run`` alike), and takes typed
``runtime_options``; a message type declared twice refuses the server's start."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import attrs
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from igym_core import EndScene, Experiment, GymScene, StaticScene, hookimpl
from igym_core.builtin.runtime_server.pooled import ServerRuntimeOptions
from igym_core.envs import resolve_callable
from igym_core.errors import ConfigError, PluginError, ProtocolError
from igym_core.plugins.manager import create_plugin_manager
from igym_core.protocol.messages import MessageDecoder
from igym_core.runtime.interface import PreparedGame, Runtime, RuntimeCheck, RuntimeMessage, WaitingRoomRules
from igym_core.server.app import create_app
from igym_core.server.security import page_content_security_policy
from igym_core.serving import validate_for_serving
from igym_core.settings import Settings
from igym_core.testing import ScriptedParticipant, make_test_app, read_records

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
turn_runtime = resolve_callable(f"{HERE / 'turn_runtime.py'}:TurnRuntime", what="test runtime")
turns_module = sys.modules[turn_runtime.__module__]
Turn = turns_module.Turn
Duel = resolve_callable(f"{HERE / 'game_envs.py'}:Duel", what="test env")
Corridor = resolve_callable(f"{HERE / 'game_envs.py'}:Corridor", what="test env")
draw_corridor = resolve_callable(f"{HERE / 'game_envs.py'}:draw_corridor", what="test render_fn")


def duel_scene(**overrides: Any) -> GymScene:
    options: dict[str, Any] = dict(
        scene_id="duel",
        env_factory=Duel,
        env_kwargs={"target": 1000},
        human_seat="human",
        policies={"bot": "random"},
        default_action=0,
        num_episodes=2,
        runtime="turns",
        runtime_options={"max_turns": 3},
    )
    options.update(overrides)
    return GymScene(**options)


def study(game: GymScene, experiment_id: str = "turns_test") -> Experiment:
    return Experiment(
        experiment_id=experiment_id,
        seed=3,
        scenes=(game, StaticScene(scene_id="after", body="Thanks"), EndScene(scene_id="end")),
    )


def plan_for(experiment: Experiment, *extra: object) -> Any:
    plugins = create_plugin_manager(autoload=False, extra=[turns_module, *extra], strict=True)
    return validate_for_serving(experiment, plugins, Settings(log_format="console"))


# --- the typed prepared game ----------------------------------------------------------------------
def test_a_prepared_gym_scene_is_a_prepared_game_with_every_field_of_the_protocol() -> None:
    game = duel_scene(runtime="server", runtime_options={}, human_seats=(), human_seat="human")
    plan = plan_for(study(game))
    prepared = plan.prepared[id(plan.experiment.scenes[0])]
    assert isinstance(prepared, PreparedGame)
    assert isinstance(prepared.waiting_room, WaitingRoomRules)
    members = [name for name in vars(PreparedGame) if not name.startswith("_")]
    members += list(PreparedGame.__annotations__)
    for name in members:
        assert hasattr(prepared, name), name
    assert (prepared.scene_id, prepared.runtime) == ("duel", "server")
    assert prepared.runtime_options == ServerRuntimeOptions(step_in_worker=False)  # structured
    assert prepared.human_seats == ("human",) and dict(prepared.bot_seats) == {"bot": "random"}
    assert prepared.partner_description is None and prepared.same_group_as is None
    # What a runtime that steps the env elsewhere reads too (the pyodide runtimes do).
    assert prepared.abandon_after_s == game.abandon_after_s and len(prepared.agents) == 2
    assert set(prepared.callbacks) >= {"on_episode_end", "on_game_end"}


def test_core_reads_no_game_scene_field_through_getattr() -> None:
    source = (ROOT / "igym_core" / "src" / "igym_core" / "session" / "games.py").read_text()
    calls = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr")
    ]
    assert calls == []


# --- a runtime's own messages -----------------------------------------------------------------------
def test_a_runtimes_message_is_decoded_validated_and_routed_to_its_game(tmp_path: Path) -> None:
    app = make_test_app(study(duel_scene()), tmp_path, extra_plugins=[turns_module])
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        scene = p.scene["scene"]
        assert (scene["kind"], scene["runtime"]) == ("gym", "turns")
        assert "runtime_module" not in scene  # a runtime without a client module
        status = p.receive_type("game_status")
        game_id = status["game_id"]
        # Strictly validated like a built-in message, each problem named in the error reply.
        for bad, named in [
            ({"type": "turn", "game_id": game_id}, "'action' must be an integer"),
            ({"type": "turn", "game_id": game_id, "action": "1"}, "'action' must be an integer, got str"),
            ({"type": "turn", "game_id": game_id, "action": True}, "'action' must be an integer, got bool"),
            ({"type": "turn", "game_id": game_id, "action": 5000}, "from 0 to 1023"),
            ({"type": "turn", "game_id": "", "action": 1}, "'game_id' must be a string"),
        ]:
            p.send(bad)
            error = p.receive_type("error")
            assert error["code"] == "bad_message" and named in error["message"], error
        # The same game-id check as an input: another game's turn is refused.
        p.send({"type": "turn", "game_id": "g-nope", "action": 1})
        assert p.receive_type("error")["code"] == "not_in_game"
        # The game checks the action against its space (Discrete(5)) and says so.
        p.send({"type": "turn", "game_id": game_id, "action": 7})
        error = p.receive_type("error")
        assert (error["code"], error["message"]) == ("bad_message", "action 7 is not in Discrete(5)")
        # Keys are not this runtime's input: its own refusal reaches the page.
        p.hold(game_id, "ArrowUp")
        assert "takes 'turn' messages" in p.receive_type("error")["message"]
        # Two episodes of max_turns=3: the sixth turn ends the game and the study moves on.
        for action in (1, 2, 3, 4, 0, 1):
            p.send({"type": "turn", "game_id": game_id, "action": action})
        nxt, _seen = p.receive_until(lambda m: m["type"] == "scene")
        assert nxt["scene"]["scene_id"] == "after"
    steps = read_records(tmp_path, "turns_test", "steps")
    human = [(r["episode"], r["step"], r["action"]) for r in steps if r["agent"] == "human"]
    assert human == [(1, 1, 1), (1, 2, 2), (1, 3, 3), (2, 1, 4), (2, 2, 0), (2, 3, 1)]
    assert sum(r["agent"] == "bot" for r in steps) == 6


def test_the_client_view_names_the_runtime_and_its_client_module(tmp_path: Path) -> None:
    class BrowserTurns(turn_runtime):
        kind = "browser_turns"
        messages = ()
        client_module = "/plugins/turns/runtime.js"

    class Plugin:
        @hookimpl
        def igym_register_runtimes(self) -> list[type[Runtime]]:
            return [BrowserTurns]

    plan = plan_for(study(duel_scene(runtime="browser_turns")), Plugin())
    view = plan.views[id(plan.experiment.scenes[0])]
    assert (view["runtime"], view["runtime_module"]) == ("browser_turns", "/plugins/turns/runtime.js")
    # A module the page's Content-Security-Policy would not run is refused at start.
    BrowserTurns.client_module = "https://cdn.example/runtime.js"
    with pytest.raises(ConfigError) as raised:
        plan_for(study(duel_scene(runtime="browser_turns")), Plugin())
    assert "client_module 'https://cdn.example/runtime.js' is not a path under /plugins/" in str(raised.value)
    server = plan_for(study(duel_scene(runtime="server", runtime_options={})))
    view = server.views[id(server.experiment.scenes[0])]
    assert view["runtime"] == "server" and "runtime_module" not in view


def test_a_runtime_may_widen_the_pages_script_src_by_blob_only(tmp_path: Path) -> None:
    class BlobTurns(turn_runtime):
        kind = "blob_turns"
        messages = ()
        asked: tuple[str, ...] = ("blob:",)

        @classmethod
        def check_scene(cls, scene: Any, prepared: Any, settings: Any) -> RuntimeCheck:
            return RuntimeCheck(script_sources=cls.asked)

    class Plugin:
        @hookimpl
        def igym_register_runtimes(self) -> list[type[Runtime]]:
            return [BlobTurns]

    plan = plan_for(study(duel_scene(runtime="blob_turns")), Plugin())
    assert plan.script_sources == ("blob:",)
    assert "script-src 'self' blob: 'wasm-unsafe-eval'" in page_content_security_policy(
        (), plan.script_sources
    )
    assert plan_for(study(duel_scene(runtime="server", runtime_options={}))).script_sources == ()
    BlobTurns.asked = ("https://cdn.example",)
    with pytest.raises(ConfigError) as raised:
        plan_for(study(duel_scene(runtime="blob_turns")), Plugin())
    assert "asks the page to run scripts from 'https://cdn.example'; igym allows only blob:" in str(
        raised.value
    )


@attrs.frozen
class _EchoAgain(RuntimeMessage):
    type: ClassVar[str] = "rtt_echo"

    @classmethod
    def decode(cls, data: Any) -> _EchoAgain:
        return cls(game_id="g")


@attrs.frozen
class _TurnAgain(RuntimeMessage):
    type: ClassVar[str] = "turn"

    @classmethod
    def decode(cls, data: Any) -> _TurnAgain:
        return cls(game_id="g")


@attrs.frozen
class _InputAgain(RuntimeMessage):
    type: ClassVar[str] = "input"


def _runtime_plugin(kind: str, *messages: type[RuntimeMessage]) -> object:
    runtime = type(f"Runtime_{kind}", (turn_runtime,), {"kind": kind, "messages": messages})

    class Plugin:
        @hookimpl
        def igym_register_runtimes(self) -> list[type[Runtime]]:
            return [runtime]

    return Plugin()


@pytest.mark.parametrize(
    ("message", "named"),
    [
        (_TurnAgain, ["runtime 'turns' (", ".Turn)", "runtime 'other' (", "._TurnAgain)", "declared twice"]),
        (_EchoAgain, ["runtime 'server' (igym_core.builtin.rtt_echo.RttEcho)", "._EchoAgain)"]),
        (_InputAgain, ["runtime 'other' (", "._InputAgain) declares message type 'input'", "built-in"]),
    ],
)
def test_a_message_type_declared_twice_refuses_the_start(
    message: type[RuntimeMessage], named: list[str], tmp_path: Path
) -> None:
    plugins = create_plugin_manager(autoload=False, extra=[turns_module, _runtime_plugin("other", message)])
    with pytest.raises(PluginError) as raised:
        create_app(Settings(data_dir=tmp_path, log_format="console"), study(duel_scene()), plugins=plugins)
    for fragment in named:
        assert fragment in str(raised.value)
    assert not (tmp_path / "turns_test").exists()


_DECODER = MessageDecoder.for_runtimes([("turns", [Turn])])
_values = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=70)
    | st.binary(max_size=4)
    | st.lists(st.integers(-(2**63), 2**64 - 1), max_size=3)
    | st.dictionaries(st.text(max_size=3), st.integers(-9, 9), max_size=2)
)
_maps = st.dictionaries(
    st.sampled_from(["type", "game_id", "action", "n", "seq"]) | st.text(max_size=4) | st.integers(-9, 9),
    _values,
    max_size=5,
)
_turns = st.builds(
    lambda base, extra: {**extra, **base},
    st.fixed_dictionaries(
        {"type": st.just("turn")},
        optional={"game_id": st.text(max_size=66) | _values, "action": st.integers(-5, 1030) | _values},
    ),
    _maps,
)


@settings(max_examples=600, deadline=None)
@given(data=_maps | _turns)
def test_the_decoder_never_crashes_on_a_map_only_refuses_it(data: dict[Any, Any]) -> None:
    frame = msgpack.packb(data, use_bin_type=True)
    try:
        message = _DECODER.decode(frame)
    except ProtocolError as exc:
        assert exc.code in ("bad_message", "unknown_type", "bad_frame")
        return
    if isinstance(message, Turn):
        assert data["type"] == "turn" and (message.game_id, message.action) == (
            data["game_id"],
            data["action"],
        )
        assert isinstance(data["action"], int) and not isinstance(data["action"], bool)
        assert 0 <= message.action < 1024 and 0 < len(message.game_id) <= 64
    else:
        assert message.type == data["type"]


def test_a_runtime_decode_that_raises_anything_else_is_a_bad_message() -> None:
    @attrs.frozen
    class Sloppy(RuntimeMessage):
        type: ClassVar[str] = "sloppy"

        @classmethod
        def decode(cls, data: Any) -> Sloppy:
            return cls(game_id=data["game_id"])  # a KeyError when it is missing

    decoder = MessageDecoder.for_runtimes([("sloppy", [Sloppy])])
    with pytest.raises(ProtocolError) as raised:
        decoder.decode(msgpack.packb({"type": "sloppy"}))
    assert raised.value.code == "bad_message" and "'sloppy' message could not be decoded" in str(raised.value)
    # Each app has its own decoder: the built-in one knows nothing of it.
    with pytest.raises(ProtocolError) as raised:
        MessageDecoder().decode(msgpack.packb({"type": "sloppy", "game_id": "g"}))
    assert raised.value.code == "unknown_type"


# --- igym check asks the runtime ----------------------------------------------------------------------
_STUDY = """
from pathlib import Path

import gymnasium
import numpy as np
from gymnasium import spaces

from igym_core import EndScene, Experiment, GymScene

class Dial(gymnasium.Env):
    metadata = {{"render_modes": []}}
    action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float64)
    observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros(1, dtype=np.float32), {{}}

    def step(self, action):
        return np.zeros(1, dtype=np.float32), 0.0, False, False, {{}}

experiment = Experiment(
    experiment_id="check_turns",
    scenes=(
        GymScene(
            scene_id="game",
            env_factory={env},
            render_fn=lambda env: [],
            default_action={default},
            runtime={runtime!r},
            runtime_options={options!r},
        ),
        EndScene(scene_id="end"),
    ),
)
"""


def _study_file(tmp_path: Path, name: str, **values: Any) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(_STUDY.format(**values)))
    return path


def _check(path: Path, data: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "IGYM_DATA_DIR": str(data),
        "IGYM_PLUGINS": "turn_runtime",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "check", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


_DIAL = dict(env="Dial", default="[0.0]", runtime="turns", options={})
_CORRIDOR = dict(env=f"'{HERE / 'game_envs.py'}:Corridor'", default="1", runtime="turns", options={})
_CASES = {
    "a Box action space": (
        _DIAL,
        ["$.scenes[0]: the 'turns' runtime needs whole-number actions; seat 'agent_0'"],
    ),
    "a wrong option": (
        {**_CORRIDOR, "options": {"max_turn": 3}},
        ["$.scenes[0].runtime_options: unknown field(s) max_turn for TurnOptions", "fields: max_turns"],
    ),
    "an option out of range": (
        {**_CORRIDOR, "options": {"max_turns": 0}},
        ["$.scenes[0].runtime_options", "max_turns", "must be >= 1"],
    ),
    "options for the server runtime": (
        {**_CORRIDOR, "runtime": "server", "options": {"max_turns": 3}},
        [
            "$.scenes[0].runtime_options: unknown field(s) max_turns for ServerRuntimeOptions",
            "fields: step_in_worker",
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_igym_check_and_the_server_refuse_what_the_runtime_refuses(case: str, tmp_path: Path) -> None:
    values, fragments = _CASES[case]
    path = _study_file(tmp_path, "study.py", **values)
    plugins = create_plugin_manager(autoload=False, extra=[turns_module], strict=True)
    with pytest.raises(ConfigError) as raised:
        create_app(Settings(data_dir=tmp_path / "data", log_format="json"), str(path), plugins=plugins)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message
    result = _check(path, tmp_path / "data")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines()[-len(message.splitlines()) :] == f"error: {message}".splitlines()
    assert not (tmp_path / "data").exists()


def test_igym_check_prints_the_runtimes_notes(tmp_path: Path) -> None:
    path = _study_file(tmp_path, "study.py", **{**_CORRIDOR, "options": {"max_turns": 7}})
    result = _check(path, tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["note: $.scenes[0] (game): turns: at most 7 turns an episode"]


def test_a_runtimes_bad_messages_count_against_the_connections_error_budget(tmp_path: Path) -> None:
    from litestar.exceptions import WebSocketDisconnect

    app = make_test_app(study(duel_scene()), tmp_path, extra_plugins=[turns_module], ws_max_errors=5)
    with TestClient(app) as client, ScriptedParticipant(client) as p:
        game_id = p.receive_type("game_status")["game_id"]
        for _ in range(6):
            p.send({"type": "turn", "game_id": game_id, "action": -1})
        errors = [p.receive_type("error") for _ in range(6)]
        assert {e["code"] for e in errors} == {"bad_message"}
        with pytest.raises(WebSocketDisconnect) as info:
            p.receive()
        assert info.value.code == 1008
    assert read_records(tmp_path, "turns_test", "steps") == []
