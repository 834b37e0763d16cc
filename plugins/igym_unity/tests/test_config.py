"""``UnityScene``'s validation, and the committed example build matches its generator."""

from __future__ import annotations

import filecmp
from importlib.resources import files
from pathlib import Path

import pytest

from igym_core.config.validators import FieldError
from igym_unity import UnityScene
from igym_unity.testing import write_fake_build


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"num_episodes": 0}, "num_episodes"),
        ({"num_episodes": True}, "num_episodes"),
        ({"load_timeout_s": 1}, "load_timeout_s"),
        ({"timeout_s": float("nan")}, "timeout_s"),
        ({"on_failure": "retry"}, "on_failure"),
        ({"failure_scene": "x", "on_failure": "end"}, "failure_scene"),
        ({"send_message_object": "Game"}, "send_message_method"),
        ({"on_episode_start": "no_colon"}, "on_episode_start"),
        ({"on_episode_start": lambda g, e: 1}, "on_episode_start"),  # needs an object and method
        ({"build_dir": " "}, "build_dir"),
        ({"max_payload_bytes": 0}, "max_payload_bytes"),
    ],
)
def test_bad_fields_are_refused_by_name(fields: dict, named: str) -> None:
    values = {"scene_id": "game", "build_dir": "b", **fields}
    with pytest.raises(FieldError) as caught:
        UnityScene(**values)
    assert caught.value.field == named


def test_the_committed_example_build_is_what_the_generator_writes(tmp_path: Path) -> None:
    committed = Path(str(files("igym_unity") / "examples" / "fake_build" / "Build"))
    fresh = write_fake_build(tmp_path)
    names = sorted(p.name for p in committed.iterdir())
    assert names == sorted(p.name for p in fresh.iterdir())
    _match, mismatch, errors = filecmp.cmpfiles(committed, fresh, names, shallow=False)
    regenerate = "python -m igym_unity.testing plugins/igym_unity/src/igym_unity/examples/fake_build"
    assert mismatch == [] and errors == [], f"{mismatch} differ: run {regenerate}"
