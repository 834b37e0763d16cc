"""The dashboard's state for the life of the app: admin sockets, snapshots, actions, the log tap.

One task builds a snapshot every :data:`SNAPSHOT_INTERVAL_S` while an admin is connected (and
right after an action), encodes it once, and leaves it with each admin socket. Each socket has its
own sender and holds at most one snapshot waiting: a newer one replaces it, and none is written
while the socket's previous data still waits in its transport. A slow admin gets fewer snapshots;
nobody else waits for it, and the study never does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog

from igym_core.admin.auth import AdminAuth, AdminSession
from igym_core.admin.export import EXPORTS_DIRECTORY, Exports, export_command, remove_stale_exports
from igym_core.admin.live import ErrorRing, LiveView
from igym_core.data.recorder import utc_now_iso
from igym_core.session.study import Study
from igym_core.settings import Settings

__all__ = [
    "DEFAULT_PAUSE_MESSAGE",
    "MAX_ADMIN_SOCKETS",
    "SNAPSHOT_INTERVAL_S",
    "AdminClient",
    "AdminService",
]

log = structlog.get_logger(__name__)

SNAPSHOT_INTERVAL_S = 1.0
#: Admin WebSockets open at once (more are refused with 1013).
MAX_ADMIN_SOCKETS = 16
#: The recent actions shown on the dashboard (all of them are in the ``admin_actions`` records).
MAX_ACTIONS_SHOWN = 50
MAX_PAUSE_MESSAGE_CHARS = 500
DEFAULT_PAUSE_MESSAGE = (
    "This study is not taking new participants right now. Please try again later, or return it."
)


class AdminClient:
    """One admin WebSocket: its session, and the one snapshot waiting to be sent to it."""

    def __init__(
        self,
        session: AdminSession,
        send_text: Callable[[str], Awaitable[None]],
        busy: Callable[[], bool],
        close: Callable[[int, str], Awaitable[None]],
    ) -> None:
        self.session = session
        self._send_text = send_text
        self._busy = busy
        self.close = close
        self.pending: str | None = None
        self.wake = asyncio.Event()
        self.sent = 0
        self.skipped = 0

    def offer(self, text: str) -> None:
        """Leave ``text`` to be sent (replacing one not sent yet); never waits."""
        if self.pending is not None:
            self.skipped += 1
        self.pending = text
        self.wake.set()

    async def run(self) -> None:
        """Send what is left for this socket, one at a time, until cancelled."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self._busy():  # the previous snapshot is still in the transport: try at the next
                await asyncio.sleep(0.1)
                self.wake.set()
                continue
            text, self.pending = self.pending, None
            if text is not None:
                await self._send_text(text)
                self.sent += 1


class AdminService:
    """Everything of the dashboard one app holds (``app.state.admin``)."""

    def __init__(self, study: Study, settings: Settings, data_dir: Any, run_id: str) -> None:
        self.study = study
        self.settings = settings
        self.data_dir = data_dir
        self.run_id = run_id
        self.auth = AdminAuth(settings)
        self.live = LiveView(study)
        self.errors = ErrorRing()
        self.clients: set[AdminClient] = set()
        self.actions: deque[dict[str, Any]] = deque(maxlen=MAX_ACTIONS_SHOWN)
        self.last_build_ms: float = 0.0
        self.last_size_bytes = 0
        self._changed = asyncio.Event()
        self._started = time.monotonic()
        self._closing: set[asyncio.Future[None]] = set()
        # --- the downloads ---
        #: Where the exports are made (next to the experiments' data, not in it).
        self.exports_root = data_dir.parent / EXPORTS_DIRECTORY
        self.download_name = f"{study.experiment.experiment_id}-{run_id}"
        #: ``igym export`` as a plugin registered it, run for the dashboard (None: not installed,
        #: only the raw files can be downloaded).
        command = export_command(study.plugins.registry)
        self.exports = (
            None
            if command is None
            else Exports(
                command,
                data_dir,
                self.exports_root,
                name=self.download_name,
                timeout_s=settings.admin_export_timeout_s,
                record=self._record_export,
                flush=study.recorder.flush,
                changed=self.changed,
            )
        )

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """(A Litestar lifespan, after the study's restore.) Tap the log; push snapshots."""
        self.live.seed_from_memory()
        remove_stale_exports(
            self.exports_root,
            f"{self.study.experiment.experiment_id}-",
            older_than_s=self.settings.admin_export_timeout_s + 3600,
        )
        root = logging.getLogger()
        root.addHandler(self.errors)
        task = asyncio.create_task(self._broadcast(), name="igym-admin-snapshots")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            root.removeHandler(self.errors)
            if self.exports is not None:
                await self.exports.close()

    # --- snapshots ---------------------------------------------------------------------------
    def snapshot_text(self) -> str:
        """The snapshot as the admin socket sends it (JSON), timed into ``last_build_ms``."""
        started = time.perf_counter()
        body = self.live.snapshot()
        body["uptime_s"] = round(time.monotonic() - self._started, 1)
        body["errors"] = list(self.errors.entries)
        body["errors_total"] = self.errors.total
        body["actions"] = list(self.actions)
        body["admins"] = len(self.clients)
        body["export"] = self.exports.snapshot() if self.exports is not None else {"available": False}
        body["build_ms"] = round(self.last_build_ms, 3)  # the previous snapshot's (bench/admin_snapshot.py)
        text = json.dumps(body, separators=(",", ":"), default=str)
        self.last_build_ms = (time.perf_counter() - started) * 1000
        self.last_size_bytes = len(text)
        return text

    async def _broadcast(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), SNAPSHOT_INTERVAL_S)
            self._changed.clear()
            if not self.clients:
                continue
            for client in list(self.clients):
                if not self.auth.alive(client.session):  # expired or logged out
                    self.clients.discard(client)
                    with contextlib.suppress(Exception):
                        await client.close(1008, "admin session ended")
            try:
                text = self.snapshot_text()
            except Exception:
                log.exception("admin_snapshot_failed")
                continue
            for client in self.clients:
                client.offer(text)

    def changed(self) -> None:
        """Something an admin did: send a snapshot now rather than at the next second."""
        self._changed.set()

    # --- actions -----------------------------------------------------------------------------
    def record_action(self, session: AdminSession, action: str, **detail: Any) -> dict[str, Any]:
        """Record an admin's action (``admin_actions`` records, the log, the dashboard's list)."""
        row = {"action": action, "admin_session": session.session_id, "at": utc_now_iso(), "detail": detail}
        self.study.recorder.write("admin_actions", row)
        log.info("admin_action_taken", action=action, admin_session=session.session_id, **detail)
        self.actions.appendleft(row)
        self.changed()
        return row

    def _record_export(self, admin_session: str, action: str, **detail: Any) -> None:
        # The export's end comes later than the request that started it: recorded by session id.
        self.record_action(AdminSession(session_id=admin_session, expires_at=0.0), action, **detail)

    def pause_arrivals(self, session: AdminSession, message: str | None) -> str:
        text = (message or "").strip()[:MAX_PAUSE_MESSAGE_CHARS] or DEFAULT_PAUSE_MESSAGE
        self.study.arrivals_paused = text
        self.record_action(session, "arrivals_paused", message=text)
        return text

    def resume_arrivals(self, session: AdminSession) -> None:
        self.study.arrivals_paused = None
        self.record_action(session, "arrivals_resumed")

    async def end_game(self, session: AdminSession, game_id: str) -> bool:
        game = self.study.games.games.get(game_id)
        if game is None:
            return False
        players = list(game.info.participant_ids)
        self.record_action(session, "game_ended", game_id=game_id, participant_ids=players)
        return await self.study.games.end_game(game_id, "ended_by_admin")

    def logged_out(self, session: AdminSession) -> None:
        """Close that session's sockets (at the next broadcast; right away here)."""
        for client in [c for c in self.clients if c.session is session]:
            self.clients.discard(client)
            task = asyncio.ensure_future(_quietly(client.close(1008, "logged out")))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)


async def _quietly(awaitable: Awaitable[Any]) -> None:
    with contextlib.suppress(Exception):
        await awaitable
