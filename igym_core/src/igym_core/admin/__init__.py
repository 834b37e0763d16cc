"""The admin dashboard at ``/admin``: login, a live view pushed over a WebSocket, and actions.

- :mod:`.auth`: the token, login rate limits, admin sessions and their cookie.
- :mod:`.live`: what the dashboard shows, built as a snapshot about once a second.
- :mod:`.service`: the dashboard's state for the life of the app (sockets, actions, the log tap).
- :mod:`.routes`: the HTTP routes and the admin WebSocket.
- :mod:`.archive`: the downloads, streamed (a zip of the export's tables, or the raw files as a tar.gz).
- :mod:`.export`, :mod:`.export_job`: ``igym export`` run in a child process for the download.

See docs/admin.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from igym_core.admin.routes import admin_handlers
    from igym_core.admin.service import AdminService

__all__ = ["AdminService", "admin_handlers"]


def __getattr__(name: str) -> Any:
    # Lazy, so that the export's child process (python -m igym_core.admin.export_job) does not
    # import the web framework.
    if name == "AdminService":
        from igym_core.admin.service import AdminService

        return AdminService
    if name == "admin_handlers":
        from igym_core.admin.routes import admin_handlers

        return admin_handlers
    raise AttributeError(name)
