"""Who may use the dashboard: one token, rate-limited logins, sessions held by an HttpOnly cookie.

The token is ``IGYM_ADMIN_TOKEN`` or a random one made at start (``igym run`` prints it once; it is
never logged and never travels in a URL: the login form posts it). A correct token gives an admin
session: a random secret in a cookie (``HttpOnly``, ``SameSite=Strict``, ``Path=/admin``, expiring
after ``IGYM_ADMIN_SESSION_S``; ``Secure`` over HTTPS) and a short public id (``a-…``) that the
action records name. Only the secret's SHA-256 is held, so looking a cookie up does not compare
secrets byte by byte; the token itself is compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

import attrs

from igym_core.session.admission import NewParticipantRate, address_key
from igym_core.settings import Settings

__all__ = ["COOKIE_NAME", "MAX_SESSIONS", "MAX_TOKEN_CHARS", "AdminAuth", "AdminSession", "LoginRefused"]

COOKIE_NAME = "igym_admin"
#: Admin sessions held at once; a new login past it ends the oldest.
MAX_SESSIONS = 32
#: A login form's token longer than this is refused unread (the real one is far shorter).
MAX_TOKEN_CHARS = 512


@attrs.define(eq=False)
class AdminSession:
    """One admin's login."""

    session_id: str
    """Public: named in the action records and the dashboard (never the cookie's secret)."""
    expires_at: float
    """``time.monotonic()`` at which the session ends."""
    address: str | None = None


class LoginRefused(Exception):
    """A login attempt is refused: ``status`` 401 (wrong token) or 429 (``retry_after_s``)."""

    def __init__(self, status: int, retry_after_s: int = 0) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after_s = retry_after_s


class AdminAuth:
    """The token, the login limits and the live admin sessions of one app."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.token = settings.admin_token or secrets.token_urlsafe(32)
        self.generated = settings.admin_token is None
        self.session_s = settings.admin_session_s
        self._clock = clock
        self._per_address = NewParticipantRate(settings.admin_logins_per_ip_per_min, clock=clock)
        self._everyone = NewParticipantRate(settings.admin_logins_per_min, clock=clock)
        self._sessions: OrderedDict[bytes, AdminSession] = OrderedDict()

    def login(self, given: str, address: str | None) -> tuple[str, AdminSession]:
        """Check one login attempt: the cookie's secret and the new session, or :class:`LoginRefused`.

        Every attempt counts against the limits, right or wrong, before the token is looked at.
        """
        key = address_key(address)
        if not self._per_address.allow(key):
            raise LoginRefused(429, _seconds(self._per_address.retry_after_s(key)))
        if not self._everyone.allow("*"):
            raise LoginRefused(429, _seconds(self._everyone.retry_after_s("*")))
        if len(given) > MAX_TOKEN_CHARS or not hmac.compare_digest(
            given.encode("utf-8", "replace"), self.token.encode("utf-8")
        ):
            raise LoginRefused(401)
        secret = secrets.token_urlsafe(32)
        session = AdminSession(
            session_id=f"a-{secrets.token_hex(4)}",
            expires_at=self._clock() + self.session_s,
            address=address,
        )
        self._sessions[_digest(secret)] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return secret, session

    def session(self, secret: str | None) -> AdminSession | None:
        """The live session a cookie's secret belongs to, or None (unknown, ended or expired)."""
        if not secret or len(secret) > 128:
            return None
        digest = _digest(secret)
        session = self._sessions.get(digest)
        if session is None:
            return None
        if self._clock() >= session.expires_at:
            del self._sessions[digest]
            return None
        return session

    def logout(self, secret: str | None) -> AdminSession | None:
        """End the session of this cookie's secret (returned, or None if there was none)."""
        if not secret:
            return None
        return self._sessions.pop(_digest(secret), None)

    def alive(self, session: AdminSession) -> bool:
        """Whether ``session`` has neither expired nor been logged out."""
        return self._clock() < session.expires_at and any(s is session for s in self._sessions.values())

    def cookie(self, secret: str, *, secure: bool) -> str:
        """The ``Set-Cookie`` value that holds a session."""
        return _cookie(secret, max_age=round(self.session_s), secure=secure)

    @staticmethod
    def cleared_cookie(*, secure: bool) -> str:
        return _cookie("", max_age=0, secure=secure)


def _cookie(value: str, *, max_age: int, secure: bool) -> str:
    parts = [f"{COOKIE_NAME}={value}", "Path=/admin", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "replace")).digest()


def _seconds(value: float) -> int:
    return max(1, round(value + 0.5))
