"""Entry screening: the page measures, the server decides (docs/recruitment.md, "Screening").

The page reports what it can measure (its user agent, window and screen size, touch points and
pointer media queries, WebGL, whether a key was pressed on the "press any key" step, and the
round-trip times of its pings over the study's WebSocket). The server applies the scene's
thresholds, judging the browser by the socket request's ``User-Agent`` header (the page's own is
recorded beside it), and records every check with its threshold and measured value. A participant
who fails any check goes to the end scene with the outcome ``screened_out``: they read why, and
the recruitment platform gets its screened-out code.

What a page can know about a keyboard: nothing for certain. ``require_keyboard`` asks for a key
press on a "press any key" step (a participant on a phone can do that only with an on-screen
keyboard, which this step does not open); ``navigator.maxTouchPoints`` and the ``(pointer: fine)``
and ``(hover: hover)`` media queries are recorded as hints, not judged.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from igym_core.config.validators import FieldError
from igym_core.plugins.markers import hookimpl
from igym_core.scenes.interface import SceneConfig, SceneContext, SceneJudgement

if TYPE_CHECKING:
    from cattrs import Converter

__all__ = ["ScreeningScene", "browser_of", "device_of"]

MIN_PINGS = 5
MAX_PINGS = 20
_MAX_RTT_MS = 60_000.0
_MAX_PIXELS = 100_000


def _browsers(instance: Any, attribute: attrs.Attribute, value: Mapping[str, int] | None) -> None:
    if value is None:
        return
    for name, version in value.items():
        if name not in BROWSER_FAMILIES:
            raise FieldError(
                f"{attribute.name}.{name}",
                f"{name!r} is not a browser igym recognises; use {', '.join(BROWSER_FAMILIES)}.",
            )
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise FieldError(
                f"{attribute.name}.{name}", f"expected a minimum major version, got {version!r}."
            )


def _optional_positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
        raise FieldError(attribute.name, f"expected a positive number or None (no check), got {value!r}.")


def _pings(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if not isinstance(value, int) or not MIN_PINGS <= value <= MAX_PINGS:
        raise FieldError(
            attribute.name,
            f"expected {MIN_PINGS}..{MAX_PINGS} pings (the median of at least {MIN_PINGS} is judged); "
            f"got {value!r}.",
        )


#: Browser families, in the order their user-agent tokens are tried (Edge and Opera also say Chrome).
BROWSER_FAMILIES: tuple[str, ...] = ("edge", "opera", "firefox", "chrome", "safari")
_FAMILY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("edge", re.compile(r"\bEdg(?:e|A|iOS)?/(\d+)")),
    ("opera", re.compile(r"\bOPR/(\d+)")),
    ("firefox", re.compile(r"\b(?:Firefox|FxiOS)/(\d+)")),
    ("chrome", re.compile(r"\b(?:HeadlessChrome|Chrome|Chromium|CriOS)/(\d+)")),
    ("safari", re.compile(r"\bVersion/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/")),
)


def browser_of(user_agent: str) -> tuple[str | None, int | None]:
    """The browser family and major version a ``User-Agent`` names (None, None: unrecognised)."""
    for family, pattern in _FAMILY_PATTERNS:
        match = pattern.search(user_agent)
        if match:
            return family, int(match.group(1))
    return None, None


def device_of(user_agent: str, max_touch_points: int = 0) -> str:
    """``phone``, ``tablet`` or ``desktop`` from the ``User-Agent`` (an iPad that reports a Mac
    user agent is told apart by its touch points)."""
    if re.search(r"iPhone|iPod|Windows Phone|Android.+Mobile|Mobile.+Firefox|\bMobi\b", user_agent):
        return "phone"
    if re.search(r"iPad|Android|Tablet", user_agent):
        return "tablet"
    if "Macintosh" in user_agent and max_touch_points > 1:
        return "tablet"
    return "desktop"


@attrs.frozen(kw_only=True)
class ScreeningScene(SceneConfig):
    """Entry screening before the study starts: each check is off when its setting is None/False.

    The page runs the checks by itself and moves on; a participant who fails one goes to the end
    scene with the outcome ``screened_out`` and reads why (``EndScene`` shows the reasons; the
    recruitment platform gets its ``screened_out`` code).
    """

    kind: ClassVar[str] = "screening"
    title: str = "Checking your device"
    body: str = "This takes a few seconds. Please keep this page open."
    browsers: Mapping[str, int] | None = attrs.field(default=None, validator=_browsers)
    """Allowed browsers and their minimum major version, e.g. ``{"chrome": 110, "firefox": 110}``
    (families: edge, opera, firefox, chrome, safari); None: any browser."""
    allow_phones: bool = False
    allow_tablets: bool = True
    min_window_width: int | None = attrs.field(default=None, validator=_optional_positive)
    min_window_height: int | None = attrs.field(default=None, validator=_optional_positive)
    min_screen_width: int | None = attrs.field(default=None, validator=_optional_positive)
    min_screen_height: int | None = attrs.field(default=None, validator=_optional_positive)
    require_webgl: bool = False
    require_keyboard: bool = False
    """Ask for a key press ("press any key") before going on; no key within
    ``keyboard_timeout_s`` screens the participant out."""
    keyboard_timeout_s: float = attrs.field(default=30.0, validator=_optional_positive)
    max_rtt_ms: float | None = attrs.field(default=None, validator=_optional_positive)
    """The highest median round-trip time to the server allowed; None: measured and recorded only."""
    pings: int = attrs.field(default=MIN_PINGS, validator=_pings)
    """How many pings the page sends (the median is judged)."""

    def client_view(self, converter: Converter, base_dir: Path) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scene_id": self.scene_id,
            "title": self.title,
            "body": self.body,
            "pings": self.pings,
            "require_keyboard": self.require_keyboard,
            "keyboard_timeout_ms": round(self.keyboard_timeout_s * 1000),
        }

    def answer_ids(self) -> frozenset[str]:
        return frozenset(_MEASURES)

    def validate_response(self, answers: Mapping[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        for key, check in _MEASURES.items():
            problem = check(answers.get(key), self)
            if problem:
                errors[key] = problem
        return errors

    def response_rows(self, answers: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{"question_id": key, "value": answers.get(key)} for key in _MEASURES]

    def judge_response(self, answers: Mapping[str, Any], ctx: SceneContext) -> SceneJudgement:
        checks = self.checks(answers, ctx.user_agent)
        failed = [c for c in checks if not c["passed"]]
        return SceneJudgement(
            event="screening",
            detail={"passed": not failed, "checks": checks},
            exit_outcome="screened_out" if failed else None,
            reasons=tuple(c["reason"] for c in failed),
        )

    def checks(self, answers: Mapping[str, Any], header_user_agent: str | None) -> list[dict[str, Any]]:
        """Every check with its threshold, measured value and verdict (a plain reason if failed)."""
        page_ua = str(answers.get("user_agent") or "")
        user_agent = header_user_agent or page_ua
        family, version = browser_of(user_agent)
        touch = int(answers.get("max_touch_points") or 0)
        out: list[dict[str, Any]] = []

        def check(name: str, threshold: Any, measured: Any, passed: bool, reason: str) -> None:
            out.append(
                {"check": name, "threshold": threshold, "measured": measured, "passed": passed}
                | ({} if passed else {"reason": reason})
            )

        if self.browsers is not None:
            minimum = self.browsers.get(family or "")
            allowed = ", ".join(f"{name.title()} {v} or newer" for name, v in self.browsers.items())
            check(
                "browser",
                dict(self.browsers),
                {"family": family, "version": version, "user_agent": user_agent[:300], "page": page_ua[:300]},
                minimum is not None and version is not None and version >= minimum,
                f"This study needs one of these browsers: {allowed}. Yours is "
                + (f"{family.title()} {version}." if family else "not one of them."),
            )
        device = device_of(user_agent, touch)
        allowed_devices = [
            "desktop",
            *(["tablet"] if self.allow_tablets else []),
            *(["phone"] if self.allow_phones else []),
        ]
        check(
            "device",
            allowed_devices,
            {"device": device, "max_touch_points": touch, "pointer_fine": answers.get("pointer_fine")},
            device in allowed_devices,
            f"This study cannot be done on a {device}. Please use a computer"
            + (" or a tablet." if self.allow_tablets else "."),
        )
        for name, key, minimum, what in (
            ("window_width", "window_width", self.min_window_width, "browser window is"),
            ("window_height", "window_height", self.min_window_height, "browser window is"),
            ("screen_width", "screen_width", self.min_screen_width, "screen is"),
            ("screen_height", "screen_height", self.min_screen_height, "screen is"),
        ):
            if minimum is None:
                continue
            measured = answers.get(key)
            side = "wide" if name.endswith("width") else "tall"
            check(
                name,
                minimum,
                measured,
                isinstance(measured, int) and measured >= minimum,
                f"Your {what} {measured} pixels {side}; this study needs at least {minimum}. "
                + (
                    "Make the window bigger (or full screen) and reload the page." if "window" in name else ""
                ),
            )
        if self.require_webgl:
            check(
                "webgl",
                True,
                answers.get("webgl"),
                answers.get("webgl") is True,
                "Your browser cannot draw the study's graphics (WebGL is off or not supported).",
            )
        if self.require_keyboard:
            check(
                "keyboard",
                True,
                answers.get("key_pressed"),
                answers.get("key_pressed") is True,
                "This study needs a keyboard, and no key was pressed when we asked.",
            )
        rtts = [float(x) for x in answers.get("rtt_ms") or []]
        median = round(statistics.median(rtts), 1) if rtts else None
        check(
            "rtt",
            {"max_median_ms": self.max_rtt_ms, "pings": self.pings},
            {"median_ms": median, "rtt_ms": [round(x, 1) for x in rtts]},
            self.max_rtt_ms is None or (median is not None and median <= self.max_rtt_ms),
            f"Your connection to our server is too slow for this study (a round trip takes "
            f"{median:.0f} ms; at most {self.max_rtt_ms:.0f} ms works)."
            if median is not None and self.max_rtt_ms is not None
            else "Your connection to our server could not be measured.",
        )
        return out


def _int_pixels(value: Any, scene: ScreeningScene) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_PIXELS:
        return f"expected a whole number of pixels (0..{_MAX_PIXELS})"
    return None


def _flag(value: Any, scene: ScreeningScene) -> str | None:
    return None if isinstance(value, bool) else "expected true or false"


def _maybe_flag(value: Any, scene: ScreeningScene) -> str | None:
    return None if value is None or isinstance(value, bool) else "expected true, false or null"


def _text(value: Any, scene: ScreeningScene) -> str | None:
    return (
        None if isinstance(value, str) and len(value) <= 512 else "expected the user agent (≤ 512 characters)"
    )


def _touch(value: Any, scene: ScreeningScene) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 64
    return None if ok else "expected navigator.maxTouchPoints (0..64)"


def _rtts(value: Any, scene: ScreeningScene) -> str | None:
    ok = (
        isinstance(value, list)
        and scene.pings <= len(value) <= MAX_PINGS
        and all(
            isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x <= _MAX_RTT_MS for x in value
        )
    )
    return None if ok else f"expected {scene.pings}..{MAX_PINGS} round-trip times in ms"


_MEASURES = {
    "user_agent": _text,
    "window_width": _int_pixels,
    "window_height": _int_pixels,
    "screen_width": _int_pixels,
    "screen_height": _int_pixels,
    "max_touch_points": _touch,
    "pointer_fine": _flag,
    "hover": _flag,
    "webgl": _flag,
    "key_pressed": _maybe_flag,
    "rtt_ms": _rtts,
}


@hookimpl
def igym_register_scene_types() -> list[type[SceneConfig]]:
    return [ScreeningScene]
