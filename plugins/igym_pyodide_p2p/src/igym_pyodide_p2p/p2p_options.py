"""The ``pyodide_p2p`` runtime's scene options: ``GymScene(runtime="pyodide_p2p", runtime_options={...})``.

::

    GymScene(
        scene_id="slime_p2p", runtime="pyodide_p2p", human_seats=("left", "right"), ...,
        runtime_options={
            "input_delay": 2,          # frames (1-8), or "auto": from the measured round trip (1-4)
            "prediction_window": 8,    # frames a peer may run ahead of its partner's inputs, then it waits
            "hash_every_frames": 10,   # the peers compare a hash of the env's state this often
            "connect_timeout_s": 5,    # no direct connection by then: inputs go through the server
            "route": "auto",           # or "relay": never try a direct connection
            "partner_lost_s": 5,       # a partner silent this long is lost: the scene's on_partner_left
            "reload_grace_s": 30,      # ... unless their page is reloading: it may come back this long
        },
    )

Everything of :class:`~igym_pyodide_p2p.options.PyodideOptions` that applies to two pages (the load
timeout and its rule, batch interval and sizes) has the same name, default and meaning here.
``ice_servers`` (STUN/TURN for production) may also come from ``IGYM_P2P_ICE_SERVERS`` (JSON), which
then wins; their credentials are sent only to the game's two pages, never written to data or logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from igym_core.config.validators import FieldError, one_of
from igym_pyodide_p2p.options import (
    LOAD_FAILED_OUTCOME,
    PyodideOptions,
    between,
    options_from_mapping,
    whole,
)

__all__ = ["LOAD_FAILED_OUTCOME", "P2POptions", "check_ice_servers"]

#: What an ICE server entry may hold (RTCIceServer's fields).
_ICE_KEYS = frozenset({"urls", "username", "credential"})
_ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
_MAX_ICE_SERVERS = 8


def check_ice_servers(
    value: Any, field: str = "ice_servers", *, credentials: bool = True
) -> tuple[dict[str, Any], ...]:
    """``value`` as a tuple of RTCIceServer maps ``{urls, username?, credential?}``; raises
    :class:`FieldError` naming what is wrong. ``credentials=False`` (a scene's options, which the
    run's config snapshot records): STUN servers only; TURN servers and their credentials come
    from ``IGYM_P2P_ICE_SERVERS``."""
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise FieldError(
            field, f"expected a list of {{urls, username?, credential?}} maps; got {value!r:.80}."
        )
    if len(value) > _MAX_ICE_SERVERS:
        raise FieldError(field, f"expected at most {_MAX_ICE_SERVERS} ICE servers; got {len(value)}.")
    out = []
    for index, server in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(server, Mapping):
            raise FieldError(where, "expected a map {urls, username?, credential?}.")
        unknown = sorted(str(k) for k in server if k not in _ICE_KEYS)
        if unknown:
            raise FieldError(
                where, f"{unknown[0]!r} is not a field of an ICE server (urls, username, credential)."
            )
        urls = server.get("urls")
        listed = [urls] if isinstance(urls, str) else urls
        if not isinstance(listed, list | tuple) or not listed or not all(isinstance(u, str) for u in listed):
            raise FieldError(f"{where}.urls", "expected a URL or a list of URLs (stun:…, turn:…).")
        for url in listed:
            if not url.startswith(_ICE_SCHEMES) or len(url) > 500:
                raise FieldError(
                    f"{where}.urls", f"expected stun:, stuns:, turn: or turns: URLs; got {url[:80]!r}."
                )
        entry: dict[str, Any] = {"urls": list(listed)}
        for key in ("username", "credential"):
            if key in server and not credentials:
                raise FieldError(
                    f"{where}.{key}",
                    "the experiment's config is written to the data, so credentials do not belong in "
                    "it; set TURN servers with IGYM_P2P_ICE_SERVERS (JSON) on the server instead.",
                )
            if key in server:
                if not isinstance(server[key], str) or len(server[key]) > 500:
                    raise FieldError(f"{where}.{key}", "expected a string (at most 500 characters).")
                entry[key] = server[key]
        if (
            any(u.startswith(("turn:", "turns:")) for u in listed)
            and not {"username", "credential"} <= entry.keys()
        ):
            raise FieldError(
                where,
                "a TURN server needs a username and a credential; set TURN servers with "
                "IGYM_P2P_ICE_SERVERS (JSON) on the server, not in the experiment (its config is "
                "written to the data).",
            )
        out.append(entry)
    return tuple(out)


def _input_delay(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value == "auto" and isinstance(value, str):
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8:
        raise FieldError(
            attribute.name, f"expected a whole number of frames from 1 to 8, or 'auto'; got {value!r}."
        )


def _ice(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    check_ice_servers(value, attribute.name, credentials=False)


@attrs.frozen(kw_only=True)
class P2POptions:
    """How a two-person game runs in its players' browsers, and what the server accepts from them."""

    # --- as the pyodide runtime's (see PyodideOptions for each) -------------------------------
    load_timeout_s: float = attrs.field(default=120.0, validator=between(5, 3600))
    """From the game's start, how long both pages may take to load (``runtime_loaded`` from each)
    before ``on_load_timeout`` applies to both players. A page that reports a failed load gets the
    same rule at once, and so does a game whose connected pages send no steps for this long."""
    on_load_timeout: Literal["skip", "end"] = attrs.field(default="skip", validator=one_of("skip", "end"))
    load_timeout_scene: str | None = None
    batch_interval_ms: int = attrs.field(default=500, validator=whole(50, 1000))
    max_batch_steps: int = attrs.field(default=240, validator=whole(1, 10_000))
    max_batch_bytes: int = attrs.field(default=48 * 1024, validator=whole(1024, 16 * 1024 * 1024))
    max_info_bytes: int = attrs.field(default=1024, validator=whole(0, 1024 * 1024))
    future_tolerance_s: float = attrs.field(default=2.0, validator=between(0, 60))

    # --- peer to peer -------------------------------------------------------------------------
    input_delay: Any = attrs.field(default=2, validator=_input_delay)
    """Frames between a key press and the frame it acts in (1-8), or ``"auto"``: from the round
    trip the pages measure before the first episode, ``clamp(ceil(rtt_p50 / 2 / frame_ms), 1, 4)``."""
    prediction_window: int = attrs.field(default=8, validator=whole(1, 8))
    """Frames a page may play past the last frame it has its partner's input for; then it waits."""
    hash_every_frames: int = attrs.field(default=10, validator=whole(1, 10_000))
    """The pages compare a hash of the env's full state every this many confirmed frames (a
    mismatch is repaired from the authority's state) and send it in their records."""
    connect_timeout_s: float = attrs.field(default=5.0, validator=between(0.5, 60))
    """No open direct connection (WebRTC DataChannel) by then: inputs go through the server's relay."""
    route: Literal["auto", "relay"] = attrs.field(default="auto", validator=one_of("auto", "relay"))
    """``auto``: try a direct connection, relay when none forms; ``relay``: always the relay."""
    ice_servers: tuple[dict[str, Any], ...] = attrs.field(default=(), converter=tuple, validator=_ice)
    """STUN servers for the direct connection (``[{urls}]``); none by default (then only peers that
    reach each other directly connect; the rest relay). TURN servers need credentials, which do not
    belong in the experiment (its config is written to the data): ``IGYM_P2P_ICE_SERVERS`` (JSON)
    holds them and replaces these for every scene."""
    max_state_bytes: int = attrs.field(default=64 * 1024, validator=whole(1024, 1024 * 1024))
    """The largest env state (``get_state()`` and the HUD's values, as JSON) a page sends its partner:
    the authority's state for a desync repair, a reloading partner's snapshot. A state larger than
    one 8 KB packet travels in chunks. ``igym check`` refuses an env whose state after reset is
    larger; a state that grows past it in play is not sent (a ``state_too_large`` event is recorded;
    a reloading partner cannot resume and the partner-left rule follows)."""
    silent_notice_ms: int = attrs.field(default=750, validator=whole(100, 60_000))
    """A page that has had no packet from its partner this long shows a notice."""
    partner_lost_s: float = attrs.field(default=5.0, validator=between(1, 600))
    """A partner silent this long is lost: the scene's ``on_partner_left`` rule applies (unless
    their page is reloading, see ``reload_grace_s``)."""
    reload_grace_s: float = attrs.field(default=30.0, validator=between(0, 3600))
    """A player whose socket closed (a reload) may come back this long; their page resumes from
    the partner's state. Past it, the scene's ``on_partner_left`` rule applies."""

    def __attrs_post_init__(self) -> None:
        if self.load_timeout_scene is not None and self.on_load_timeout != "skip":
            raise FieldError(
                "load_timeout_scene",
                f"is {self.load_timeout_scene!r}, but on_load_timeout is {self.on_load_timeout!r}; "
                "a scene to skip to applies only with on_load_timeout='skip'.",
            )

    @classmethod
    def from_mapping(cls, value: Any) -> P2POptions:
        """The options from a scene's ``runtime_options`` map; a ``FieldError`` names a wrong key."""
        return options_from_mapping(cls, value, "pyodide_p2p")

    def batch_rules(self) -> PyodideOptions:
        """The pyodide runtime's options that its batch checks read (``decode_step_batch``,
        ``GameLedger``), with this scene's values."""
        return PyodideOptions(
            load_timeout_s=self.load_timeout_s,
            hash_every_steps=self.hash_every_frames,
            batch_interval_ms=self.batch_interval_ms,
            max_batch_steps=self.max_batch_steps,
            max_batch_bytes=self.max_batch_bytes,
            max_info_bytes=self.max_info_bytes,
            future_tolerance_s=self.future_tolerance_s,
        )
