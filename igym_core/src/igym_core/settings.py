"""Process settings: read once at the entry point (CLI flags, then ``IGYM_*`` environment variables)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import attrs

from igym_core.errors import ConfigError

__all__ = ["ENVIRONMENT_VARIABLES", "Settings", "recorded_settings"]


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _non_negative(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise ConfigError(
            f"{attribute.name} must be 0 or more; got {value}. Set it to a non-negative number.",
            title="Bad settings",
        )


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _positive_seconds(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not (isinstance(value, int | float) and value > 0):
        env = f"IGYM_{attribute.name.upper()}"
        raise ConfigError(
            f"{attribute.name} must be a number of seconds above 0; got {value!r}. Set {env} to, "
            f"for example, {attribute.default}.",
            title="Bad settings",
        )


def _origins(instance: object, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    for origin in value:
        scheme, sep, rest = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
            raise ConfigError(
                f"allowed origins must look like https://host or http://host:port (no path); got "
                f"{origin!r}. Fix IGYM_ALLOWED_ORIGINS (comma-separated).",
                title="Bad settings",
            )


def _ice_servers(value: object) -> tuple[dict[str, object], ...] | None:
    """``IGYM_P2P_ICE_SERVERS``: a JSON list of RTCIceServer maps (the plugin checks each field)."""
    import json

    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(
                f"IGYM_P2P_ICE_SERVERS is not JSON ({exc}); expected a list like "
                '[{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "c"}].'
            ) from None
    if not isinstance(value, list | tuple) or not all(isinstance(v, dict) and "urls" in v for v in value):
        raise ValueError(
            "IGYM_P2P_ICE_SERVERS: expected a JSON list of maps, each with 'urls' (and 'username', "
            "'credential' for a TURN server)."
        )
    return tuple(dict(v) for v in value)


def _index_url(instance: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is None:
        return
    scheme, sep, rest = value.partition("://")
    if scheme not in ("http", "https") or not sep or not rest.partition("/")[0] or value != value.strip():
        raise ConfigError(
            f"the Pyodide extra index must be an http(s) URL of a package index (PEP 503 or PEP 691), "
            f"such as https://pypi.org/simple; got {value!r}. Fix IGYM_PYODIDE_EXTRA_INDEX_URL, or unset "
            "it (the browser then installs only what igym serves itself).",
            title="Bad settings",
        )
    if "@" in rest.partition("/")[0]:
        raise ConfigError(
            "IGYM_PYODIDE_EXTRA_INDEX_URL holds a user name or password (user:token@host); every "
            "participant's browser receives this URL, so it must be a public index without credentials.",
            title="Bad settings",
        )


#: Field metadata: a field hidden from ``repr`` (it holds secrets) that the run's snapshot still
#: records, with every map entry named like a secret replaced by :data:`HIDDEN`.
_RECORDED_WITHOUT_SECRETS = "igym_recorded_without_secrets"


def _token(instance: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and (len(value) < 16 or value != value.strip()):
        raise ConfigError(
            f"the operator token must be at least 16 characters without surrounding spaces; got "
            f"{len(value)} characters. Set IGYM_OPERATOR_TOKEN to a long random string (for example "
            f"the output of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or unset "
            f"it and igym run makes one.",
            title="Bad settings",
        )


def _admin_token(instance: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and (len(value) < 24 or value != value.strip()):
        raise ConfigError(
            f"the admin token must be at least 24 characters without surrounding spaces; got "
            f"{len(value)} characters. Set IGYM_ADMIN_TOKEN to a long random string (for example the "
            f"output of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or unset it "
            f"and igym run makes one and prints it once.",
            title="Bad settings",
        )


@attrs.frozen(kw_only=True)
class Settings:
    """How this server process runs (not what the experiment is).

    Environment variables: ``IGYM_DATA_DIR``, ``IGYM_HOST``, ``IGYM_PORT``, ``IGYM_LOG_FORMAT``
    (``console`` or ``json``), ``IGYM_LOG_LEVEL``, ``IGYM_BLOCKED_PLUGINS`` (comma-separated),
    ``IGYM_DISABLE_PLUGIN_AUTOLOAD``, ``IGYM_PLUGINS`` (comma-separated modules to load as plugins,
    in addition to installed ones), ``IGYM_MAX_MESSAGE_BYTES``, ``IGYM_STRICT_PLUGINS``,
    ``IGYM_TICK_GROUPS`` (server games tick in this many phase-shifted groups per tick rate; 0 gives
    every game a task of its own), ``IGYM_STEP_WORKERS`` and ``IGYM_STEP_WORKER_TIMEOUT_S`` (the
    worker processes of scenes with ``runtime_options={"step_in_worker": True}``).

    HTTP hardening (see docs/deployment.md): ``IGYM_HEADER_TIMEOUT_S`` (a request's headers must
    arrive within this time of its first byte), ``IGYM_IDLE_TIMEOUT_S`` (a connection with no request
    in progress, never used or kept alive, is closed after this), ``IGYM_OPERATOR_TOKEN`` (the bearer
    token for ``/stats``; a random one is made at start if unset), ``IGYM_ALLOWED_ORIGINS``
    (comma-separated origins, such as ``https://study.example.org``, allowed to open the participant
    WebSocket besides the serving host itself), ``IGYM_DEV`` (development mode: source maps are served).

    Limits on participants (see the fields below): (``IGYM_MAX_URL_PARAMS``,
    ``IGYM_MAX_URL_PARAM_NAME_CHARS``, ``IGYM_MAX_URL_PARAM_VALUE_CHARS``, ``IGYM_MAX_DRAFT_BYTES``,
    ``IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN``, ``IGYM_MAX_PARTICIPANTS_IN_MEMORY``,
    ``IGYM_PARTICIPANT_EVICT_FINISHED_S``, ``IGYM_PARTICIPANT_EVICT_IDLE_S``).

    ``IGYM_SAVE_FAILURE_REMINDER_S``: while a data sink cannot write, the log repeats its error this often.
    ``IGYM_MAX_UNSAVED_BYTES``: records waiting to be stored past which running games pause.

    Each participant socket's limits: ``IGYM_HELLO_TIMEOUT_MS``, ``IGYM_WS_MESSAGES_PER_S``,
    ``IGYM_WS_MESSAGE_BURST``, ``IGYM_WS_BYTES_PER_S``, ``IGYM_WS_BYTE_BURST``, ``IGYM_WS_MAX_ERRORS``,
    ``IGYM_WS_SEND_QUEUE_MESSAGES``, ``IGYM_WS_SEND_QUEUE_BYTES``, ``IGYM_WS_PING_INTERVAL_S``,
    ``IGYM_WS_PING_TIMEOUT_S``.

    Games that run in the browser (plugin igym-pyodide-p2p): ``IGYM_PYODIDE_EXTRA_INDEX_URL`` (a package
    index for packages that are not pure Python, such as numpy; off by default).
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
    # --- HTTP hardening -----------------------------------------------------------------------
    header_timeout_s: float = attrs.field(default=10.0, validator=_positive_seconds)
    idle_timeout_s: float = attrs.field(default=5.0, validator=_positive_seconds)
    operator_token: str | None = attrs.field(default=None, repr=False, validator=_token)
    allowed_origins: tuple[str, ...] = attrs.field(
        default=(), converter=lambda v: tuple(o.rstrip("/").lower() for o in v), validator=_origins
    )
    dev: bool = False

    # --- limits on what an untrusted participant can make the server hold ----------------------
    # (0 turns off those marked so; see README "What participants can do to you")
    max_url_params: int = attrs.field(default=16, validator=_non_negative)
    """URL parameters a link may carry (``IGYM_MAX_URL_PARAMS``); more: the participant is refused."""
    max_url_param_name_chars: int = attrs.field(default=64, validator=_non_negative)
    """Length of a URL parameter's name (``IGYM_MAX_URL_PARAM_NAME_CHARS``)."""
    max_url_param_value_chars: int = attrs.field(default=256, validator=_non_negative)
    """Length of a URL parameter's value (``IGYM_MAX_URL_PARAM_VALUE_CHARS``)."""
    max_draft_bytes: int = attrs.field(default=16 * 1024, validator=_non_negative)
    """Size of a scene's typed-but-unsubmitted answers, msgpack-encoded (``IGYM_MAX_DRAFT_BYTES``)."""
    max_page_events_per_participant: int = attrs.field(default=1000, validator=_non_negative)
    """``page_event`` records kept per participant (tab hidden, window blurred, full screen;
    ``IGYM_MAX_PAGE_EVENTS_PER_PARTICIPANT``); past it they are counted, not recorded."""
    max_new_participants_per_ip_per_min: int = attrs.field(default=30, validator=_non_negative)
    """New participants one client address may start in 60 s (``IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN``;
    0 = no limit, for lab kiosks sharing one address). Resumes are never counted or refused."""
    max_participants_in_memory: int = attrs.field(default=10_000, validator=_non_negative)
    """Participants held at once (``IGYM_MAX_PARTICIPANTS_IN_MEMORY``; 0 = no limit); past it new
    participants are refused until finished or idle ones are evicted."""
    participant_evict_finished_s: float = attrs.field(default=600.0, validator=_non_negative)
    """A finished participant leaves memory this long after their last socket closed
    (``IGYM_PARTICIPANT_EVICT_FINISHED_S``; 0 = never)."""
    participant_evict_idle_s: float = attrs.field(default=6 * 3600.0, validator=_non_negative)
    """An unfinished participant with no socket for this long leaves memory, unless they are in a game
    or waiting room (``IGYM_PARTICIPANT_EVICT_IDLE_S``; 0 = never). Both come back from the records."""

    # --- data that cannot be saved ---------------------------------------------------------------
    save_failure_reminder_s: float = attrs.field(default=60.0)

    @save_failure_reminder_s.validator
    def _check_reminder(self, _attribute: object, value: float) -> None:
        if not value > 0:
            raise ConfigError(
                f"IGYM_SAVE_FAILURE_REMINDER_S must be a number of seconds above 0; got {value!r}. "
                "It sets how often the log repeats that a data sink cannot write (default 60).",
                title="Bad settings",
            )

    max_unsaved_bytes: int = attrs.field(default=256 * 1024 * 1024, validator=_non_negative)
    """Records waiting in memory to be stored, in bytes (``IGYM_MAX_UNSAVED_BYTES``). While a required
    sink fails and this much waits, every running game pauses (its players see the saving message)
    until the data can be saved again; 0 pauses games as soon as a required sink fails."""

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

    # --- games that run in the browser (runtime="pyodide", plugin igym-pyodide-p2p) --------------
    pyodide_extra_index_url: str | None = attrs.field(
        default=None,
        converter=lambda v: v.rstrip("/") if isinstance(v, str) and v.strip() else None,
        validator=_index_url,
    )
    """A package index (PEP 503/691 URL) the participant's browser may install packages from that are
    not pure Python, such as numpy (``IGYM_PYODIDE_EXTRA_INDEX_URL``; unset = off: the browser then
    installs only the wheels igym builds and serves itself, and ``igym check`` refuses a browser-run
    scene that needs anything else). Its origin is added to the ``connect-src`` of the runtime's files."""

    # --- peer-to-peer games (runtime="pyodide_p2p", plugin igym-pyodide-p2p) --------------------
    p2p_ice_servers: tuple[dict[str, object], ...] | None = attrs.field(
        default=None, converter=_ice_servers, repr=False, metadata={_RECORDED_WITHOUT_SECRETS: True}
    )
    """STUN/TURN servers for every peer-to-peer game's direct connection (``IGYM_P2P_ICE_SERVERS``,
    JSON: ``[{"urls": "turn:turn.example.org:3478", "username": "...", "credential": "..."}]``);
    they replace the scenes' ``ice_servers``. Unset: the scenes' (default none). Hidden from
    ``repr`` so that credentials never reach the logs; the run's snapshot records the servers with
    their ``username`` and ``credential`` replaced by ``"<hidden>"``."""

    # --- the admin dashboard (/admin; igym_core/admin, docs/admin.md) ---------------------------
    admin_token: str | None = attrs.field(default=None, repr=False, validator=_admin_token)
    """The dashboard's login token (``IGYM_ADMIN_TOKEN``, at least 24 characters); unset: a random
    one is made at start and ``igym run`` prints it once. There is no default password."""
    admin_session_s: float = attrs.field(default=8 * 3600.0, validator=_positive_seconds)
    """How long an admin login lasts (``IGYM_ADMIN_SESSION_S``); then the cookie expires and the
    dashboard's socket is closed."""
    admin_logins_per_ip_per_min: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    """Login attempts one client address may make in 60 s (``IGYM_ADMIN_LOGINS_PER_IP_PER_MIN``);
    past it: 429 with ``Retry-After``."""
    admin_logins_per_min: int = attrs.field(default=60, validator=attrs.validators.ge(1))
    """Login attempts from all addresses together in 60 s (``IGYM_ADMIN_LOGINS_PER_MIN``)."""
    admin_cookie_secure: bool = False
    """``IGYM_ADMIN_COOKIE_SECURE``: always mark the admin cookie ``Secure``. Without it, the cookie
    is ``Secure`` when the request came over HTTPS (directly, or through a proxy uvicorn trusts,
    whose ``X-Forwarded-Proto`` it applies)."""
    admin_export_timeout_s: float = attrs.field(default=900.0, validator=_positive_seconds)
    """How long the dashboard's export of the tables (``igym export``) may take
    (``IGYM_ADMIN_EXPORT_TIMEOUT_S``); past it the export is stopped, and the dashboard says to
    raise it or download the raw files."""

    # --- the server runtime's step workers (scenes with runtime_options={"step_in_worker": True}) ---
    step_workers: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional([attrs.validators.ge(0), attrs.validators.le(64)]),
    )
    """``IGYM_STEP_WORKERS``: worker processes that step the envs of scenes with
    ``runtime_options={"step_in_worker": True}`` (started with the first such game). None: one less
    than the machine's CPUs, at least 1. 0: such scenes are refused at start."""
    step_worker_timeout_s: float = attrs.field(default=10.0, validator=_positive_seconds)
    """``IGYM_STEP_WORKER_TIMEOUT_S``: a step worker that has not answered a request for this long
    is killed; its games end with an error (recorded), the others go on."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``IGYM_*`` variables; ``overrides`` (CLI flags) win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        try:
            for variable, (field, parse) in _VARIABLES.items():
                if variable in env:
                    values[field] = parse(env[variable])
            for variable, (field, value) in _FLAGS.items():
                if _flag(env.get(variable, "")):
                    values[field] = value
            if env.get("IGYM_OPERATOR_TOKEN"):  # empty: unset (igym run makes one)
                values["operator_token"] = env["IGYM_OPERATOR_TOKEN"]
            if env.get("IGYM_ADMIN_TOKEN"):  # empty: unset (igym run makes one)
                values["admin_token"] = env["IGYM_ADMIN_TOKEN"]
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


#: ``IGYM_*`` variables read as values: variable → (field, parser).
_VARIABLES: dict[str, tuple[str, Callable[[str], object]]] = {
    "IGYM_DATA_DIR": ("data_dir", Path),
    "IGYM_HOST": ("host", str),
    "IGYM_PORT": ("port", int),
    "IGYM_LOG_FORMAT": ("log_format", str),
    "IGYM_LOG_LEVEL": ("log_level", str),
    "IGYM_BLOCKED_PLUGINS": ("blocked_plugins", _split),
    "IGYM_PLUGINS": ("extra_plugins", _split),
    "IGYM_MAX_MESSAGE_BYTES": ("max_message_bytes", int),
    "IGYM_FLUSH_INTERVAL_MS": ("flush_interval_ms", int),
    "IGYM_TICK_GROUPS": ("tick_groups", int),
    "IGYM_SAVE_FAILURE_REMINDER_S": ("save_failure_reminder_s", float),
    "IGYM_MAX_UNSAVED_BYTES": ("max_unsaved_bytes", int),
    "IGYM_HEADER_TIMEOUT_S": ("header_timeout_s", float),
    "IGYM_IDLE_TIMEOUT_S": ("idle_timeout_s", float),
    "IGYM_ALLOWED_ORIGINS": ("allowed_origins", _split),
    "IGYM_HELLO_TIMEOUT_MS": ("hello_timeout_ms", int),
    "IGYM_WS_MESSAGES_PER_S": ("ws_messages_per_s", float),
    "IGYM_WS_MESSAGE_BURST": ("ws_message_burst", int),
    "IGYM_WS_BYTES_PER_S": ("ws_bytes_per_s", int),
    "IGYM_WS_BYTE_BURST": ("ws_byte_burst", int),
    "IGYM_WS_MAX_ERRORS": ("ws_max_errors", int),
    "IGYM_WS_SEND_QUEUE_MESSAGES": ("ws_send_queue_messages", int),
    "IGYM_WS_SEND_QUEUE_BYTES": ("ws_send_queue_bytes", int),
    "IGYM_WS_PING_INTERVAL_S": ("ws_ping_interval_s", float),
    "IGYM_WS_PING_TIMEOUT_S": ("ws_ping_timeout_s", float),
    "IGYM_MAX_URL_PARAMS": ("max_url_params", int),
    "IGYM_MAX_URL_PARAM_NAME_CHARS": ("max_url_param_name_chars", int),
    "IGYM_MAX_URL_PARAM_VALUE_CHARS": ("max_url_param_value_chars", int),
    "IGYM_MAX_DRAFT_BYTES": ("max_draft_bytes", int),
    "IGYM_MAX_PAGE_EVENTS_PER_PARTICIPANT": ("max_page_events_per_participant", int),
    "IGYM_MAX_NEW_PARTICIPANTS_PER_IP_PER_MIN": ("max_new_participants_per_ip_per_min", int),
    "IGYM_MAX_PARTICIPANTS_IN_MEMORY": ("max_participants_in_memory", int),
    "IGYM_PARTICIPANT_EVICT_FINISHED_S": ("participant_evict_finished_s", float),
    "IGYM_PARTICIPANT_EVICT_IDLE_S": ("participant_evict_idle_s", float),
    "IGYM_PYODIDE_EXTRA_INDEX_URL": ("pyodide_extra_index_url", str),
    "IGYM_P2P_ICE_SERVERS": ("p2p_ice_servers", _ice_servers),
    "IGYM_ADMIN_SESSION_S": ("admin_session_s", float),
    "IGYM_ADMIN_LOGINS_PER_IP_PER_MIN": ("admin_logins_per_ip_per_min", int),
    "IGYM_ADMIN_LOGINS_PER_MIN": ("admin_logins_per_min", int),
    "IGYM_ADMIN_EXPORT_TIMEOUT_S": ("admin_export_timeout_s", float),
    "IGYM_STEP_WORKERS": ("step_workers", int),
    "IGYM_STEP_WORKER_TIMEOUT_S": ("step_worker_timeout_s", float),
}

#: ``IGYM_*`` switches (``1``, ``true``, ``yes`` or ``on``): variable → (field, value when set).
_FLAGS: dict[str, tuple[str, bool]] = {
    "IGYM_DISABLE_PLUGIN_AUTOLOAD": ("autoload_plugins", False),
    "IGYM_STRICT_PLUGINS": ("strict_plugins", True),
    "IGYM_DEV": ("dev", True),
    "IGYM_ADMIN_COOKIE_SECURE": ("admin_cookie_secure", True),
}

#: Every variable ``Settings.from_env`` reads (the docs list each one; a test checks).
ENVIRONMENT_VARIABLES: tuple[str, ...] = (*_VARIABLES, *_FLAGS, "IGYM_OPERATOR_TOKEN", "IGYM_ADMIN_TOKEN")

#: Words in a setting's name that make it a secret, never written to the data (as does ``repr=False``).
_SECRET_WORDS = ("token", "secret", "password", "key")

#: Words in a map entry's name (inside a setting) that make its value a secret: written as ``HIDDEN``.
_SECRET_ENTRY_WORDS = (*_SECRET_WORDS, "credential", "username", "passphrase")

#: What the snapshot holds in place of a secret inside a recorded setting.
HIDDEN = "<hidden>"


def recorded_settings(settings: Settings) -> dict[str, object]:
    """Every setting except secrets, as JSON values, for the run's snapshot: the data says which
    limits applied. A secret is a field hidden from ``repr`` or named like one (``operator_token``);
    a hidden field that holds secrets among other values (the ICE servers) is recorded with those
    entries replaced by ``"<hidden>"``. Maps are written as JSON objects, never by their type's name."""
    out: dict[str, object] = {}
    for field in attrs.fields(Settings):
        if any(word in field.name.split("_") for word in _SECRET_WORDS):
            continue
        if not field.repr and not field.metadata.get(_RECORDED_WITHOUT_SECRETS):
            continue
        out[field.name] = _json_value(getattr(settings, field.name))
    return out


def _json_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {
            str(key): HIDDEN if _secret_entry(str(key)) else _json_value(item) for key, item in value.items()
        }
    # A plugin object given in Python (extra_plugins): its module or class, by name.
    name = getattr(value, "__name__", None) or type(value).__qualname__
    module = getattr(value, "__module__", None)
    return f"{module}:{name}" if module and module != name else str(name)


def _secret_entry(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_ENTRY_WORDS)
