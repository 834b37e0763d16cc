"""The HTTP-hardening settings: read from IGYM_* variables, checked, and their errors say how to fix them."""

from __future__ import annotations

import pytest

from igym_core.errors import ConfigError
from igym_core.settings import Settings

TOKEN = "a-long-enough-operator-token"


def test_defaults() -> None:
    settings = Settings()
    assert (settings.header_timeout_s, settings.idle_timeout_s) == (10.0, 5.0)
    assert settings.operator_token is None and settings.allowed_origins == () and settings.dev is False


def test_read_from_the_environment_and_overridden_by_flags() -> None:
    settings = Settings.from_env(
        {
            "IGYM_HEADER_TIMEOUT_S": "2.5",
            "IGYM_IDLE_TIMEOUT_S": "1",
            "IGYM_OPERATOR_TOKEN": TOKEN,
            "IGYM_ALLOWED_ORIGINS": "https://Study.Example.org/, http://localhost:5173",
            "IGYM_DEV": "1",
        },
        dev=None,
    )
    assert (settings.header_timeout_s, settings.idle_timeout_s) == (2.5, 1.0)
    assert settings.operator_token == TOKEN
    assert settings.allowed_origins == ("https://study.example.org", "http://localhost:5173")
    assert settings.dev is True
    assert TOKEN not in repr(settings)  # a token never reaches a log through the settings' repr
    assert Settings.from_env({"IGYM_OPERATOR_TOKEN": ""}).operator_token is None  # empty: unset


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"IGYM_HEADER_TIMEOUT_S": "0"}, "IGYM_HEADER_TIMEOUT_S"),
        ({"IGYM_IDLE_TIMEOUT_S": "-1"}, "IGYM_IDLE_TIMEOUT_S"),
        ({"IGYM_HEADER_TIMEOUT_S": "ten"}, "invalid value"),
        ({"IGYM_ALLOWED_ORIGINS": "study.example.org"}, "https://host"),
        ({"IGYM_ALLOWED_ORIGINS": "https://study.example.org/path"}, "no path"),
        ({"IGYM_ALLOWED_ORIGINS": "ftp://study.example.org"}, "IGYM_ALLOWED_ORIGINS"),
        ({"IGYM_OPERATOR_TOKEN": "short"}, "at least 16 characters"),
        ({"IGYM_OPERATOR_TOKEN": f" {TOKEN} "}, "surrounding spaces"),
    ],
)
def test_bad_values_are_refused_with_the_fix(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env(env)
    assert says in str(error.value)
