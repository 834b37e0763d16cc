"""Every process setting can be set from the environment, and every variable is documented."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from igym_core import settings as settings_module
from igym_core.errors import ConfigError
from igym_core.settings import ENVIRONMENT_VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[2]


def _field_of(variable: str) -> str:
    if variable in settings_module._VARIABLES:
        return settings_module._VARIABLES[variable][0]
    if variable in settings_module._FLAGS:
        return settings_module._FLAGS[variable][0]
    secrets = {"IGYM_OPERATOR_TOKEN": "operator_token", "IGYM_ADMIN_TOKEN": "admin_token"}
    assert variable in secrets
    return secrets[variable]


def test_every_setting_has_exactly_one_environment_variable() -> None:
    fields = [_field_of(variable) for variable in ENVIRONMENT_VARIABLES]
    assert sorted(fields) == sorted(f.name for f in attrs.fields(Settings)), (
        "a Settings field without an IGYM_* variable (or with two): add it to _VARIABLES or _FLAGS"
    )


def test_every_environment_variable_is_documented() -> None:
    docs = (ROOT / "README.md").read_text(encoding="utf-8") + "".join(
        page.read_text(encoding="utf-8") for page in sorted((ROOT / "docs").glob("*.md"))
    )
    missing = [variable for variable in ENVIRONMENT_VARIABLES if variable not in docs]
    assert not missing, (
        f"not in README.md or docs/*.md: {missing} (limits: docs/security.md; the rest: docs/deployment.md)"
    )


_NUMERIC = [
    (variable, field, parse)
    for variable, (field, parse) in settings_module._VARIABLES.items()
    if parse in (int, float)
]


@pytest.mark.parametrize(("variable", "field", "parse"), _NUMERIC, ids=[v for v, _f, _p in _NUMERIC])
@given(value=st.integers(min_value=1, max_value=10**6))
def test_a_numeric_variable_sets_its_field(variable: str, field: str, parse: type, value: int) -> None:
    try:
        settings = Settings.from_env({variable: str(value)})
    except ConfigError as exc:  # some settings have an upper bound or a relation to another
        assert field in str(exc) or variable in str(exc) or "out of range" in str(exc)
        return
    assert getattr(settings, field) == parse(value)


@pytest.mark.parametrize(("variable", "field", "parse"), _NUMERIC, ids=[v for v, _f, _p in _NUMERIC])
def test_a_variable_that_is_not_a_number_names_the_problem(variable: str, field: str, parse: type) -> None:
    with pytest.raises(ConfigError, match="IGYM_"):
        Settings.from_env({variable: "lots"})


def test_the_pyodide_extra_index_is_off_by_default_and_must_be_a_public_http_url() -> None:
    assert Settings.from_env({}).pyodide_extra_index_url is None
    assert Settings.from_env({"IGYM_PYODIDE_EXTRA_INDEX_URL": ""}).pyodide_extra_index_url is None
    given = Settings.from_env({"IGYM_PYODIDE_EXTRA_INDEX_URL": "https://pypi.org/simple/"})
    assert given.pyodide_extra_index_url == "https://pypi.org/simple"
    for bad in ("pypi.org/simple", "ftp://host/simple", "https://", "https://user:token@host/simple"):
        with pytest.raises(ConfigError, match="IGYM_PYODIDE_EXTRA_INDEX_URL"):
            Settings.from_env({"IGYM_PYODIDE_EXTRA_INDEX_URL": bad})
