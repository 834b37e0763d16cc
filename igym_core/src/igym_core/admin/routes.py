"""``/admin``: the login page or the dashboard, login and logout, the data download, the socket.

Every route but the login page and the login itself needs a live admin session (the cookie);
without one, pages answer with the login form (401) and the rest with 401. ``POST`` routes and the
WebSocket refuse a browser's request from another origin (403, or a refused handshake). The pages
carry their own strict CSP (:data:`ADMIN_CSP`) and are never cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import parse_qs

import structlog
from litestar import MediaType, Request, Response, WebSocket, get, post, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.response import Redirect, Stream

from igym_core.admin.archive import stream_directory, stream_zip
from igym_core.admin.auth import COOKIE_NAME, MAX_TOKEN_CHARS, AdminSession, LoginRefused
from igym_core.admin.page import dashboard_page, login_page, message_page
from igym_core.admin.service import MAX_ADMIN_SOCKETS, AdminClient, AdminService
from igym_core.server.security import origin_allowed
from igym_core.server.ws_protocol import DIRECT_EXTENSION

__all__ = ["ADMIN_CSP", "admin_handlers"]

log = structlog.get_logger(__name__)

#: Only igym's own script and style; the socket to this host; forms posting here; no framing.
ADMIN_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": ADMIN_CSP,
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    # Not no-referrer: with it, Chromium sends "Origin: null" with the login form, which the origin
    # check must refuse.
    "Referrer-Policy": "same-origin",
}
#: The largest login form body read (the token field and a little more).
MAX_LOGIN_BODY_BYTES = 2048
#: The largest message an admin socket takes (actions are a few dozen bytes).
MAX_ADMIN_MESSAGE_BYTES = 4096
#: Bad messages an admin socket may send before it is closed.
MAX_ADMIN_SOCKET_ERRORS = 20


def _service(request: Any) -> AdminService:
    return request.app.state.admin


def _session(request: Any) -> AdminSession | None:
    return _service(request).auth.session(request.cookies.get(COOKIE_NAME))


def _secure(request: Request[Any, Any, Any]) -> bool:
    return bool(request.app.state.settings.admin_cookie_secure or request.url.scheme == "https")


def _address(request: Any) -> str | None:
    client = request.scope.get("client")
    return client[0] if client else None


def _same_origin(request: Any) -> bool:
    return origin_allowed(request.headers, request.app.state.settings.allowed_origins)


def _page(html: str, status: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        html, media_type=MediaType.HTML, status_code=status, headers={**_PAGE_HEADERS, **(headers or {})}
    )


@get("/admin", include_in_schema=False)
async def admin_page(request: Request[Any, Any, Any]) -> Response[str]:
    service = _service(request)
    session = _session(request)
    if session is None:
        return _page(login_page(), status=401)
    return _page(dashboard_page(service.study.experiment.experiment_id, session.session_id))


@post("/admin/login", include_in_schema=False, status_code=303)
async def admin_login(request: Request[Any, Any, Any]) -> Response[Any]:
    if not _same_origin(request):
        return _page(login_page("This form was sent from another site."), status=403)
    body = await _bounded_body(request, MAX_LOGIN_BODY_BYTES)
    token = ""
    if body is not None:
        try:
            values = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
        except ValueError:  # more fields than the form has: not our form, so a wrong token
            values = {}
        token = (values.get("token") or [""])[0].strip()[: MAX_TOKEN_CHARS + 1]
    service = _service(request)
    address = _address(request)
    try:
        secret, session = service.auth.login(token, address)
    except LoginRefused as refused:
        if refused.status == 429:
            log.warning("admin_login_rate_limited", address=address, retry_after_s=refused.retry_after_s)
            return _page(
                login_page(f"Too many login attempts. Try again in {refused.retry_after_s} s."),
                status=429,
                headers={"Retry-After": str(refused.retry_after_s)},
            )
        log.warning("admin_login_failed", address=address)
        return _page(login_page("That token is not this server's admin token."), status=401)
    log.info("admin_logged_in", admin_session=session.session_id, address=address)
    service.record_action(session, "logged_in", address=address)
    return Redirect(
        "/admin",
        status_code=303,
        headers={**_PAGE_HEADERS, "Set-Cookie": service.auth.cookie(secret, secure=_secure(request))},
    )


@post("/admin/logout", include_in_schema=False, status_code=303)
async def admin_logout(request: Request[Any, Any, Any]) -> Response[Any]:
    if not _same_origin(request):
        return _page(login_page("This form was sent from another site."), status=403)
    service = _service(request)
    session = service.auth.logout(request.cookies.get(COOKIE_NAME))
    if session is not None:
        service.record_action(session, "logged_out")
        service.logged_out(session)
    return Redirect(
        "/admin",
        status_code=303,
        headers={**_PAGE_HEADERS, "Set-Cookie": service.auth.cleared_cookie(secure=_secure(request))},
    )


def _unauthorised() -> Response[Any]:
    return Response({"status_code": 401, "detail": "Unauthorized"}, status_code=401, headers=_PAGE_HEADERS)


async def _flushed(service: AdminService) -> None:
    """Write the records waiting in memory, so that the download has everything up to now."""
    with contextlib.suppress(Exception):  # a failing sink: the download has what is stored
        await service.study.recorder.flush()


@get("/admin/download", include_in_schema=False)
async def admin_download(request: Request[Any, Any, Any]) -> Response[Any]:
    """The tables of the last export (``igym export``: one table per record type), as a zip."""
    service = _service(request)
    session = _session(request)
    if session is None:
        return _unauthorised()
    exports = service.exports
    if exports is None:
        return _page(
            message_page(
                "No exporter is installed",
                "This server has no `igym export` command (it comes with the igym-parquet plugin: "
                "pip install igym-parquet, then restart the server). Download the raw files instead.",
            ),
            status=404,
        )
    tables, made = exports.ready, exports.ready_info
    if tables is None or made is None:
        return _page(
            message_page(
                "No tables are ready yet",
                "Press “Prepare the tables” on the dashboard; the download link appears there when "
                "they are ready.",
            ),
            status=404,
        )
    archive = f"{exports.name}.zip"
    service.record_action(
        session,
        "data_downloaded",
        format="tables",
        archive=archive,
        exported_at=made["finished_at"],
        files=[f["name"] for f in made["files"]],
    )
    return Stream(
        tables.read(stream_zip(tables.files)),
        media_type="application/zip",
        headers={**_PAGE_HEADERS, "Content-Disposition": f'attachment; filename="{archive}"'},
    )


@get("/admin/download/raw", include_in_schema=False)
async def admin_download_raw(request: Request[Any, Any, Any]) -> Response[Any]:
    """The experiment's data directory as the sinks wrote it, as a tar.gz."""
    service = _service(request)
    session = _session(request)
    if session is None:
        return _unauthorised()
    name = service.download_name
    service.record_action(session, "data_downloaded", format="raw", archive=f"{name}.tar.gz")
    # What was written up to now (this download's record too) is on disk, and so in the archive.
    await _flushed(service)
    return Stream(
        stream_directory(service.data_dir, name),
        media_type="application/gzip",
        headers={
            **_PAGE_HEADERS,
            "Content-Disposition": f'attachment; filename="{name}.tar.gz"',
        },
    )


@websocket("/admin/ws")
async def admin_socket(socket: WebSocket[Any, Any, Any]) -> None:
    service: AdminService = socket.app.state.admin
    session = service.auth.session(socket.cookies.get(COOKIE_NAME))
    if session is None or not _same_origin(socket):
        # Closing before accepting refuses the handshake (HTTP 403).
        log.warning(
            "admin_socket_refused",
            reason="no admin session" if session is None else "another origin",
            origin=socket.headers.get("origin"),
        )
        await socket.close(code=1008)
        return
    if len(service.clients) >= MAX_ADMIN_SOCKETS:
        await socket.close(code=1013)
        return
    await socket.accept()
    direct = socket.scope.get("extensions", {}).get(DIRECT_EXTENSION)
    closed = asyncio.Event()

    async def send_text(text: str) -> None:
        if not closed.is_set():
            await socket.send_text(text)

    async def close(code: int, reason: str) -> None:
        if not closed.is_set():
            closed.set()
            with contextlib.suppress(Exception):
                await socket.close(code=code, reason=reason)

    client = AdminClient(session, send_text, lambda: bool(direct is not None and direct.busy), close)
    service.clients.add(client)
    client.offer(service.snapshot_text())
    sender = asyncio.create_task(client.run(), name="igym-admin-sender")
    errors = 0
    try:
        while not closed.is_set():
            event = await socket.receive()
            if event["type"] == "websocket.disconnect":
                break
            text = event.get("text")
            if text is None and event.get("bytes") is not None:
                text = event["bytes"].decode("utf-8", "replace")
            if not service.auth.alive(session):
                await close(1008, "admin session ended")
                break
            reply = await _handle(service, session, text or "")
            if reply.get("type") == "error":
                errors += 1
                if errors > MAX_ADMIN_SOCKET_ERRORS:
                    await close(1008, "too many bad messages")
                    break
            await send_text(json.dumps(reply))
    except (WebSocketDisconnect, ConnectionError):
        pass
    finally:
        closed.set()
        service.clients.discard(client)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def _handle(service: AdminService, session: AdminSession, text: str) -> dict[str, Any]:
    """One message from the dashboard: an action. Its reply (``done`` or ``error``)."""
    if len(text) > MAX_ADMIN_MESSAGE_BYTES:
        return {"type": "error", "message": f"Messages are limited to {MAX_ADMIN_MESSAGE_BYTES} bytes."}
    try:
        message = json.loads(text)
    except ValueError:
        return {"type": "error", "message": 'Expected a JSON object such as {"type": "resume_arrivals"}.'}
    if not isinstance(message, dict):
        return {"type": "error", "message": "Expected a JSON object with a 'type'."}
    kind = message.get("type")
    if kind == "pause_arrivals":
        given = message.get("message")
        text = service.pause_arrivals(session, given if isinstance(given, str) else None)
        return {"type": "done", "action": kind, "message": text}
    if kind == "resume_arrivals":
        service.resume_arrivals(session)
        return {"type": "done", "action": kind}
    if kind == "export_data":
        if service.exports is None:
            return {
                "type": "error",
                "action": kind,
                "message": "This server has no `igym export` (install igym-parquet); download the raw files.",
            }
        if not service.exports.start(session.session_id):
            return {"type": "error", "action": kind, "message": "An export is being made already."}
        return {"type": "done", "action": kind}
    if kind == "end_game":
        game_id = message.get("game_id")
        if not isinstance(game_id, str) or not await service.end_game(session, game_id[:128]):
            return {
                "type": "error",
                "action": kind,
                "message": "No such game is running (it may have ended).",
            }
        return {"type": "done", "action": kind, "game_id": game_id}
    return {
        "type": "error",
        "message": f"Unknown action {str(kind)[:40]!r}; expected pause_arrivals, resume_arrivals, "
        "end_game or export_data.",
    }


async def _bounded_body(request: Request[Any, Any, Any], limit: int) -> bytes | None:
    """The request's body, or None if it is longer than ``limit`` bytes (not read further)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return body


def admin_handlers() -> list[Any]:
    """The dashboard's route handlers, for ``create_app``."""
    return [admin_page, admin_login, admin_logout, admin_download, admin_download_raw, admin_socket]
