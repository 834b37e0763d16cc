"""What every response carries and what no response shows: security headers, plain error pages,
path checks, the operator token and the WebSocket origin check.

- Every HTTP response gets :data:`SECURITY_HEADERS` (a handler's own value for one of them wins).
- Error responses say only their status (``{"status_code": 404, "detail": "Not Found"}``): Litestar's
  defaults name the file a static route looked for, with the install path.
- A path with a control character or an undecodable escape (``%00``, ``%ff``) is answered 400 before
  routing (a NUL reached ``os.stat`` and gave a 500); source maps (``*.js.map``, ``*.css.map``) are
  served only in development (``igym run --dev``).
- Operator endpoints (``/stats``) need ``Authorization: Bearer <token>``: ``IGYM_OPERATOR_TOKEN``, or
  a random token made at start, kept on ``app.state.operator_token`` and printed once by ``igym run``.
- The participant WebSocket accepts a browser (which always sends ``Origin``) only from the host
  serving it or from ``IGYM_ALLOWED_ORIGINS``; a client that sends no ``Origin`` (not a browser: the
  benchmarks, the tests, a script) is let through, since a non-browser client can send whatever
  ``Origin`` it likes and the check protects participants' browsers, not the server.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException

from igym_core.settings import Settings

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "add_security_headers",
    "error_response",
    "guard_paths",
    "operator_token",
    "origin_allowed",
    "page_content_security_policy",
    "require_operator",
]

log = structlog.get_logger(__name__)

#: Only igym's own scripts (the client, plugins' client modules, onnxruntime-web and Pyodide are all
#: served by igym), plus compiling WebAssembly; inline styles for the game canvas and Phaser; images
#: and media from https (researchers' consent and instruction pages link them); no framing by others.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; media-src 'self' https:; connect-src 'self'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


#: Script sources a runtime may ask the page to allow (``RuntimeCheck.script_sources``).
PAGE_SCRIPT_SOURCES: tuple[str, ...] = ("blob:",)


def page_content_security_policy(
    form_targets: tuple[str, ...] = (), script_sources: tuple[str, ...] = ()
) -> str:
    """The participant page's policy: :data:`CONTENT_SECURITY_POLICY`, with ``form-action`` opened
    to exactly the recruitment platform's origins (MTurk's externalSubmit form) when it posts one,
    and ``script-src`` widened by the sources the experiment's game scenes need (a Unity build with
    decompression fallback: ``blob:``), each one of :data:`PAGE_SCRIPT_SOURCES`."""
    policy = CONTENT_SECURITY_POLICY
    if form_targets:
        policy = policy.replace("form-action 'none'", "form-action " + " ".join(form_targets))
    extra = [source for source in dict.fromkeys(script_sources) if source in PAGE_SCRIPT_SOURCES]
    if extra:
        policy = policy.replace("script-src 'self'", "script-src 'self' " + " ".join(extra))
    return policy


SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    # same-origin: the page's URL carries recruitment ids (PROLIFIC_PID, SESSION_ID); they must not
    # reach third parties as a referrer. The redirect back to Prolific needs none (the code is in its URL).
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "SAMEORIGIN"),
)
_HEADER_NAMES = frozenset(name.encode() for name, _ in SECURITY_HEADERS)
_ENCODED_HEADERS = tuple((name.encode(), value.encode()) for name, value in SECURITY_HEADERS)


async def add_security_headers(message: Any, scope: Any) -> None:
    """Litestar ``before_send`` hook: the security headers on every HTTP response."""
    if message["type"] != "http.response.start":
        return
    headers = list(message.get("headers") or ())
    present = {bytes(name).lower() for name, _ in headers if bytes(name).lower() in _HEADER_NAMES}
    headers.extend(pair for pair in _ENCODED_HEADERS if pair[0] not in present)
    message["headers"] = headers


def error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Every error as its status only: no exception text, no paths."""
    if isinstance(exc, HTTPException):
        status = exc.status_code
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() in ("allow", "www-authenticate")}
    else:
        status = 500
        headers = {}
        log.error("request_failed", path=request.url.path, exc_info=exc)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return Response({"status_code": status, "detail": phrase}, status_code=status, headers=headers)


# uvicorn has percent-decoded the path: a control character or U+FFFD (what an undecodable escape
# such as %ff becomes) names no file or route igym serves.
_BAD_PATH = re.compile("[\x00-\x1f\x7f\ufffd]")


_SOURCE_MAPS = (".js.map", ".mjs.map", ".css.map")


def guard_paths(app: Any, *, dev: bool) -> Any:
    """Wrap Litestar's ASGI handler: 400 for bad paths, 404 for source maps outside development."""

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            path = scope.get("path", "")
            if _BAD_PATH.search(path):
                if scope["type"] == "http":
                    await _plain(send, 400)
                else:
                    await send({"type": "websocket.close", "code": 1008, "reason": ""})
                return
            if not dev and scope["type"] == "http" and path.endswith(_SOURCE_MAPS):
                await _plain(send, 404)
                return
        await app(scope, receive, send)

    return guarded


async def _plain(send: Any, status: int) -> None:
    body = json.dumps(
        {"status_code": status, "detail": HTTPStatus(status).phrase}, separators=(",", ":")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def operator_token(settings: Settings) -> str:
    """``IGYM_OPERATOR_TOKEN``, or a random token for this run."""
    return settings.operator_token or secrets.token_urlsafe(32)


def require_operator(request: Request[Any, Any, Any]) -> None:
    """Raise 401 unless the request carries ``Authorization: Bearer <the operator token>``."""
    expected = f"Bearer {request.app.state.operator_token}".encode()
    given = request.headers.get("authorization", "").encode("utf-8", "replace")
    if not hmac.compare_digest(given, expected):  # constant time in the token's content
        raise NotAuthorizedException(headers={"WWW-Authenticate": "Bearer"})


def origin_allowed(headers: Any, allowed: tuple[str, ...]) -> bool:
    """Whether a WebSocket handshake's ``Origin`` is the serving host or one of ``allowed``.

    ``headers``: the handshake's headers (a mapping with lower-case keys).
    """
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser (see the module docstring)
    origin = origin.strip().rstrip("/").lower()
    if origin in allowed:
        return True
    _scheme, sep, netloc = origin.partition("://")
    host = (headers.get("host") or "").strip().lower()
    return bool(sep and host and netloc == host)
