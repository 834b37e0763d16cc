"""Process settings: read once at the entry point (CLI flags, then ``IGYM_*`` environment variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs

from igym_core.errors import ConfigError

__all__ = ["Settings"]


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@attrs.frozen(kw_only=True)
class Settings:
    """How this server process runs (not what the experiment is).

    Environment variables: ``IGYM_DATA_DIR``, ``IGYM_HOST``, ``IGYM_PORT``, ``IGYM_LOG_FORMAT``
    (``console`` or ``json``), ``IGYM_LOG_LEVEL``, ``IGYM_BLOCKED_PLUGINS`` (comma-separated),
    ``IGYM_DISABLE_PLUGIN_AUTOLOAD``, ``IGYM_PLUGINS`` (comma-separated modules to load as plugins,
    in addition to installed ones), ``IGYM_MAX_MESSAGE_BYTES``, ``IGYM_STRICT_PLUGINS``,
    ``IGYM_TICK_GROUPS`` (server games tick in this many phase-shifted groups per tick rate; 0 gives
    every game a task of its own), ``IGYM_HELLO_TIMEOUT_MS``, and each participant socket's limits:
    ``IGYM_WS_MESSAGES_PER_S``, ``IGYM_WS_MESSAGE_BURST``, ``IGYM_WS_BYTES_PER_S``,
    ``IGYM_WS_BYTE_BURST``, ``IGYM_WS_MAX_ERRORS``, ``IGYM_WS_SEND_QUEUE_MESSAGES``,
    ``IGYM_WS_SEND_QUEUE_BYTES``, ``IGYM_WS_PING_INTERVAL_S``, ``IGYM_WS_PING_TIMEOUT_S``.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = attrs.field(default=Path("data"), converter=Path)
    log_format: Literal["console", "json", "auto"] = "auto"
    log_level: str = "info"
    blocked_plugins: tuple[str, ...] = ()
    autoload_plugins: bool = True
    extra_plugins: tuple[object, ...] = ()
    strict_plugins: bool = False
    max_message_bytes: int = 64 * 1024
    flush_interval_ms: int = 500
    hello_timeout_ms: int = 10_000
    tick_groups: int = 4

    # What one participant's WebSocket may cost the server (igym_core/server/budget.py; README,
    # "Limits"). Messages and bytes are token buckets: a burst, refilling at the rate; a connection
    # past either is not read until they refill. More than ws_max_errors error replies in 10 s
    # close it with 1008. A client that lets more than ws_send_queue_* replies wait is dropped.
    ws_messages_per_s: float = attrs.field(default=200.0, validator=attrs.validators.gt(0))
    ws_message_burst: int = attrs.field(default=400, validator=attrs.validators.ge(1))
    ws_bytes_per_s: int = attrs.field(default=256 * 1024, validator=attrs.validators.gt(0))
    ws_byte_burst: int = attrs.field(default=512 * 1024, validator=attrs.validators.ge(1024))
    ws_max_errors: int = attrs.field(default=50, validator=attrs.validators.ge(1))
    ws_send_queue_messages: int = attrs.field(default=256, validator=attrs.validators.ge(1))
    ws_send_queue_bytes: int = attrs.field(default=4 * 1024 * 1024, validator=attrs.validators.ge(1024))
    # WebSocket keepalive (uvicorn's ws_ping_interval / ws_ping_timeout): a socket whose peer does
    # not answer a ping within the timeout is closed.
    ws_ping_interval_s: float = attrs.field(default=20.0, validator=attrs.validators.gt(0))
    ws_ping_timeout_s: float = attrs.field(default=20.0, validator=attrs.validators.gt(0))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``IGYM_*`` variables; ``overrides`` (CLI flags) win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        try:
            if "IGYM_DATA_DIR" in env:
                values["data_dir"] = Path(env["IGYM_DATA_DIR"])
            if "IGYM_HOST" in env:
                values["host"] = env["IGYM_HOST"]
            if "IGYM_PORT" in env:
                values["port"] = int(env["IGYM_PORT"])
            if "IGYM_LOG_FORMAT" in env:
                values["log_format"] = env["IGYM_LOG_FORMAT"]
            if "IGYM_LOG_LEVEL" in env:
                values["log_level"] = env["IGYM_LOG_LEVEL"]
            if "IGYM_BLOCKED_PLUGINS" in env:
                values["blocked_plugins"] = _split(env["IGYM_BLOCKED_PLUGINS"])
            if _flag(env.get("IGYM_DISABLE_PLUGIN_AUTOLOAD", "")):
                values["autoload_plugins"] = False
            if "IGYM_PLUGINS" in env:
                values["extra_plugins"] = _split(env["IGYM_PLUGINS"])
            if "IGYM_MAX_MESSAGE_BYTES" in env:
                values["max_message_bytes"] = int(env["IGYM_MAX_MESSAGE_BYTES"])
            if "IGYM_TICK_GROUPS" in env:
                values["tick_groups"] = int(env["IGYM_TICK_GROUPS"])
            for name, convert in _BUDGET_VARIABLES.items():
                if f"IGYM_{name.upper()}" in env:
                    values[name] = convert(env[f"IGYM_{name.upper()}"])
            if _flag(env.get("IGYM_STRICT_PLUGINS", "")):
                values["strict_plugins"] = True
        except ValueError as exc:
            raise ConfigError(
                f"an IGYM_* environment variable has an invalid value: {exc}", title="Bad settings"
            ) from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("log_format", "auto") not in ("console", "json", "auto"):
            raise ConfigError(
                f"log format must be 'console', 'json' or 'auto'; got {values['log_format']!r}.",
                title="Bad settings",
            )
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValueError as exc:  # a validator's message names the field, its bound and the value
            raise ConfigError(f"a setting is out of range: {exc}", title="Bad settings") from exc


#: Settings read from ``IGYM_<NAME>`` (upper case), with their types.
_BUDGET_VARIABLES: dict[str, type] = {
    "hello_timeout_ms": int,
    "ws_messages_per_s": float,
    "ws_message_burst": int,
    "ws_bytes_per_s": int,
    "ws_byte_burst": int,
    "ws_max_errors": int,
    "ws_send_queue_messages": int,
    "ws_send_queue_bytes": int,
    "ws_ping_interval_s": float,
    "ws_ping_timeout_s": float,
}
