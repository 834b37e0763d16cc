"""The pyodide runtime's options and its own answer to ``igym check``."""

from __future__ import annotations

import pytest

from igym_core.config.validators import FieldError
from igym_pyodide_p2p.options import PyodideOptions


def test_defaults_keep_a_closed_tab_within_a_second() -> None:
    options = PyodideOptions.from_mapping({})
    assert options.batch_interval_ms <= 1000
    assert (options.on_load_timeout, options.on_reload, options.hash_every_steps) == ("skip", "restart", 30)


@pytest.mark.parametrize(
    ("given", "field", "words"),
    [
        ({"load_timout_s": 5}, "runtime_options.load_timout_s", "Did you mean 'load_timeout_s'?"),
        ({"batch_interval_ms": 1500}, "batch_interval_ms", "from 50 to 1000"),
        ({"on_reload": "again"}, "on_reload", "restart"),
        ({"on_load_timeout": "end", "load_timeout_scene": "survey"}, "load_timeout_scene", "only with"),
        ({"hash_every_steps": 0}, "hash_every_steps", "from 1"),
        ({"load_timeout_s": True}, "load_timeout_s", "expected a number"),
    ],
)
def test_a_wrong_option_names_the_field_and_what_is_expected(given: dict, field: str, words: str) -> None:
    with pytest.raises(FieldError) as caught:
        PyodideOptions.from_mapping(given)
    assert caught.value.field == field and words in caught.value.message


def test_options_that_are_not_a_map_are_refused() -> None:
    with pytest.raises(FieldError, match="expected a map"):
        PyodideOptions.from_mapping(["load_timeout_s"])


def test_igym_check_refuses_a_browser_run_game_of_two_people() -> None:
    import subprocess
    import sys
    from pathlib import Path

    study = Path(__file__).parent / "studies" / "slime_pyodide.py"
    result = subprocess.run(
        [sys.executable, "-m", "igym_core.cli", "check", f"{study}:two_humans"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "plays one participant per game" in result.stdout + result.stderr
    assert "runtime='server'" in result.stdout + result.stderr
