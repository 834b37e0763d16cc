"""The run's config snapshot is a loadable experiment (equal to the one that ran), Python code is
written by import path or marked as not loadable, and the settings in force are recorded."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any

import attrs
import pytest

import igym_core.examples
import igym_slime.examples
import igym_unity.examples
from igym_core import Experiment, GymScene
from igym_core.builtin.policies_basic import PythonPolicy
from igym_core.config.converter import make_converter
from igym_core.config.loader import load_experiment
from igym_core.envs import import_object
from igym_core.errors import ConfigError
from igym_core.plugins.manager import create_plugin_manager
from igym_core.policies.interface import PolicyConfig
from igym_core.scenes.stager import iter_scenes
from igym_core.settings import Settings
from igym_unity import UnityScene


def _examples() -> list[str]:
    found = []
    for package in (igym_core.examples, igym_slime.examples, igym_unity.examples):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            found += [f"{module.__name__}:{n}" for n, v in vars(module).items() if isinstance(v, Experiment)]
    return found


EXAMPLES = _examples()


@pytest.fixture(scope="module")
def converter() -> Any:
    return make_converter(create_plugin_manager(quiet=True).registry)


def _load_data(data: Any, converter: Any, tmp_path: Path) -> Experiment:
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(data), encoding="utf-8")  # no default=: the data is plain JSON
    return load_experiment(str(path), converter).experiment


def _resolved(value: Any) -> Any:
    """A scene as loaded from data, with each import path replaced by the object it names."""
    if isinstance(value, str) and ":" in value and not value.startswith(("http://", "https://", "/")):
        try:
            return import_object(value, what="snapshot")
        except ConfigError:
            return value
    if isinstance(value, PythonPolicy):
        return attrs.evolve(value, target=_resolved(value.target))
    if isinstance(value, GymScene):
        changes = {
            f.name: _resolved(getattr(value, f.name))
            for f in attrs.fields(GymScene)
            if f.name
            in ("env_factory", "render_fn", "hud", "on_episode_start", "on_episode_end", "on_game_end")
        }
        changes["policies"] = {agent: _resolved(p) for agent, p in value.policies.items()}
        changes["partner_policy"] = _resolved(value.partner_policy)
        return attrs.evolve(value, **changes)
    if isinstance(value, UnityScene):
        return attrs.evolve(
            value,
            on_episode_start=_resolved(value.on_episode_start),
            score_episode=_resolved(value.score_episode),
        )
    return value


def assert_same_experiment(loaded: Experiment, original: Experiment) -> None:
    assert attrs.evolve(loaded, scenes=original.scenes) == original
    pairs = list(zip(iter_scenes(loaded.scenes), iter_scenes(original.scenes), strict=True))
    for (scene, path), (expected, _) in pairs:
        assert _resolved(scene) == expected, path


def test_every_example_is_found() -> None:
    assert {"igym_core.examples.mountain_car:experiment", "igym_slime.examples.vs_ai:experiment"} <= set(
        EXAMPLES
    )
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("target", EXAMPLES)
def test_each_examples_snapshot_loads_back_into_an_equal_experiment(
    target: str, converter: Any, tmp_path: Path
) -> None:
    module, _, name = target.partition(":")
    original = getattr(importlib.import_module(module), name)
    data = json.loads(json.dumps(converter.unstructure(original)))
    loaded = _load_data(data, converter, tmp_path)
    assert_same_experiment(loaded, original)
    assert converter.unstructure(loaded) == data  # and it is written the same way again


def module_level_policy(observation: Any) -> int:
    return 0


def test_python_code_is_written_by_import_path_or_marked_not_loadable(converter: Any, tmp_path: Path) -> None:
    from igym_core.examples.mountain_car import experiment

    (scene,) = [s for s, _ in iter_scenes(experiment.scenes) if isinstance(s, GymScene)]
    named = attrs.evolve(scene, on_episode_end=module_level_policy, partner_policy=module_level_policy)
    data = converter.unstructure(named)
    assert data["on_episode_end"] == f"{__name__}:module_level_policy"
    assert data["partner_policy"] == f"{__name__}:module_level_policy"

    anonymous = attrs.evolve(
        scene,
        on_episode_end=lambda game, summary: None,
        partner_policy=lambda observation: 0,
        policies={"bot": PythonPolicy(target=lambda observation: 1)},
    )
    data = converter.unstructure(anonymous)
    test_name = "test_python_code_is_written_by_import_path_or_marked_not_loadable"
    marker = {"not_loadable": f"{test_name}.<locals>.<lambda> in module {__name__}"}
    assert data["on_episode_end"] == marker
    assert data["partner_policy"] == marker
    assert data["policies"]["bot"] == {"kind": "python", "target": marker}
    # Loading says which field held such an object and what to write instead.
    whole = converter.unstructure(attrs.evolve(experiment, scenes=(anonymous,)))
    with pytest.raises(ConfigError) as caught:
        _load_data(whole, converter, tmp_path)
    text = str(caught.value)
    assert "$.scenes[0].on_episode_end" in text and "without an import path" in text, text


def test_the_snapshot_of_a_run_loads_back_and_holds_the_settings_in_force(
    live_server: Any, tmp_path: Path
) -> None:
    token = "operator-token-that-must-stay-secret"
    turn_user, turn_password = "turn-user-1700000000", "turn-credential-that-must-stay-secret"
    ice = [
        {"urls": "stun:stun.example.org:3478"},
        {"urls": ["turn:turn.example.org:3478"], "username": turn_user, "credential": turn_password},
    ]
    server = live_server(
        "igym_slime.examples.vs_ai:experiment",
        env={
            "IGYM_MAX_DRAFT_BYTES": "1234",
            "IGYM_WS_MAX_ERRORS": "7",
            "IGYM_OPERATOR_TOKEN": token,
            "IGYM_P2P_ICE_SERVERS": json.dumps(ice),
        },
    )
    (path,) = (server.data_dir / "slime_vs_ai").glob("snapshots/*.json")
    text = path.read_text(encoding="utf-8")
    snapshot = json.loads(text)
    assert token not in text and "operator_token" not in snapshot["settings"]
    # Every setting but secrets (hidden from repr, or named as one: operator_token); the ICE
    # servers are there, as the maps they are, with the TURN user and credential hidden.
    secret = ("token", "secret", "password", "key")
    expected = {
        f.name for f in attrs.fields(Settings) if f.repr and not any(w in f.name.split("_") for w in secret)
    }
    assert "max_participants_in_memory" in expected and "ws_send_queue_bytes" in expected
    assert set(snapshot["settings"]) == expected | {"p2p_ice_servers"}
    assert snapshot["settings"]["p2p_ice_servers"] == [
        {"urls": "stun:stun.example.org:3478"},
        {"urls": ["turn:turn.example.org:3478"], "username": "<hidden>", "credential": "<hidden>"},
    ]
    assert turn_user not in text and turn_password not in text
    assert snapshot["settings"]["max_draft_bytes"] == 1234
    assert snapshot["settings"]["ws_max_errors"] == 7
    assert snapshot["settings"]["data_dir"] == str(server.data_dir)
    assert "not_loadable" not in text

    from igym_slime.examples.vs_ai import experiment

    converter = make_converter(create_plugin_manager(quiet=True).registry)
    assert_same_experiment(_load_data(snapshot["experiment"], converter, tmp_path), experiment)


def test_a_bot_with_frame_skip_is_written_as_a_table_that_validates_loads_and_serves(
    converter: Any, tmp_path: Path
) -> None:
    import jsonschema

    from igym_core import Bot
    from igym_core.serving import validate_for_serving
    from igym_slime.examples.vs_ai import BOT, experiment

    scenes = tuple(
        attrs.evolve(s, policies={"right": Bot(policy=BOT, act_every=3, between="default")})
        if isinstance(s, GymScene)
        else s
        for s in experiment.scenes
    )
    original = attrs.evolve(experiment, scenes=scenes)
    data = json.loads(json.dumps(converter.unstructure(original)))
    (game,) = [s for s in data["scenes"] if s["kind"] == "gym"]
    assert game["policies"]["right"] == {
        "policy": converter.unstructure(BOT, unstructure_as=PolicyConfig),
        "act_every": 3,
        "between": "default",
    }
    schema = json.loads((Path(__file__).parent.parent / "docs/experiment.schema.json").read_text())
    assert [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(data)] == []
    loaded = _load_data(data, converter, tmp_path)
    assert_same_experiment(loaded, original)
    # Served from the example's directory (the model path is relative to it), as `igym run` would.
    from igym_core.config.loader import LoadedExperiment

    base_dir = Path(importlib.import_module("igym_slime.examples.vs_ai").__file__).parent
    plan = validate_for_serving(
        LoadedExperiment(loaded, base_dir, "snapshot"), create_plugin_manager(quiet=True), Settings()
    )
    (prepared,) = [p for p in plan.prepared.values() if hasattr(p, "bots")]
    assert prepared.bots["right"][1] == Bot(policy=BOT, act_every=3, between="default")


@pytest.mark.parametrize(
    ("bot", "problem"),
    [
        ({"policy": "random", "act_every": 0}, "$.scenes[2].policies.right.act_every: must be"),
        ({"policy": "random", "between": "sometimes"}, "$.scenes[2].policies.right.between: must be one of"),
        (
            {"policy": {"not_loadable": "<lambda> in module x"}},
            "$.scenes[2].policies.right.policy: was a Python",
        ),
    ],
)
def test_a_wrong_bot_table_is_refused_with_its_path(
    bot: dict[str, Any], problem: str, converter: Any, tmp_path: Path
) -> None:
    from igym_slime.examples.vs_ai import experiment

    data = converter.unstructure(experiment)
    (game,) = [s for s in data["scenes"] if s["kind"] == "gym"]
    assert data["scenes"].index(game) == 2
    game["policies"] = {"right": bot}
    with pytest.raises(ConfigError) as caught:
        _load_data(data, converter, tmp_path)
    assert problem in str(caught.value), caught.value
