"""The admin dashboard at ``/admin``: login, a live view pushed over a WebSocket, and actions.

- :mod:`.auth`: the token, login rate limits, admin sessions and their cookie.
- :mod:`.live`: what the dashboard shows, built as a snapshot about once a second.
- :mod:`.service`: the dashboard's state for the life of the app (sockets, actions, the log tap).
- :mod:`.routes`: the HTTP routes and the admin WebSocket.
- :mod:`.archive`: the data download, streamed as a tar.gz.

See docs/admin.md.
"""

from igym_core.admin.routes import admin_handlers
from igym_core.admin.service import AdminService

__all__ = ["AdminService", "admin_handlers"]
