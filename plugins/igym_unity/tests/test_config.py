"""``UnityScene``'s validation, and the committed example build matches its generator."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from igym_core.config.validators import FieldError
from igym_unity import UnityScene
from igym_unity.testing import example_build_dir, write_fake_build


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


def test_the_example_build_is_written_on_first_use_and_rewritten_when_changed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    built = example_build_dir(cache)
    fresh = write_fake_build(tmp_path / "fresh")
    names = sorted(p.name for p in fresh.iterdir())
    assert sorted(p.name for p in (built / "Build").iterdir()) == names
    _match, mismatch, errors = filecmp.cmpfiles(built / "Build", fresh, names, shallow=False)
    assert mismatch == [] and errors == []
    assert cache.stat().st_mode & 0o777 == 0o700 and built.stat().st_mode & 0o777 == 0o700
    # Asked again: the same folder, untouched.
    loader = built / "Build" / "fake.loader.js"
    written_at = loader.stat().st_mtime_ns
    assert example_build_dir(cache) == built and loader.stat().st_mtime_ns == written_at
    # A file changed since (by hand, or by someone else): written again before it is served.
    loader.write_text("window.createUnityInstance = () => alert(1);", encoding="utf-8")
    assert example_build_dir(cache) == built
    assert loader.read_bytes() == (fresh / "fake.loader.js").read_bytes()
    assert not [p for p in cache.iterdir() if p.name.startswith(".writing-")]
    # The example study serves it.
    from igym_unity.examples.fake_game import experiment

    [unity] = [s for s in experiment.scenes if isinstance(s, UnityScene)]
    assert (Path(unity.build_dir) / "Build" / "fake.loader.js").is_file()
