"""The two admin pages: the login form (works without JavaScript) and the dashboard's shell.

The dashboard itself is ``frontend/src/admin/`` (built to ``/client/admin.js`` and ``admin.css``).
No inline script or style: the admin CSP allows neither.
"""

from __future__ import annotations

import html

__all__ = ["dashboard_page", "login_page", "message_page"]


def _head(title: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        '<link rel="icon" href="/favicon.svg" type="image/svg+xml">\n'
        '<link rel="stylesheet" href="/client/admin.css">\n'
    )


def login_page(message: str | None = None) -> str:
    """The login form; ``message`` (plain text) says why the last attempt failed."""
    note = f'<p class="admin-error" role="alert">{html.escape(message)}</p>\n' if message else ""
    return (
        _head("igym admin: log in")
        + '</head>\n<body>\n<main class="admin-login">\n<h1>igym admin</h1>\n'
        + note
        + '<form method="post" action="/admin/login">\n'
        '<label for="admin-token">Admin token (printed by <code>igym run</code> at start, or '
        "<code>IGYM_ADMIN_TOKEN</code>)</label>\n"
        '<input id="admin-token" name="token" type="password" autocomplete="current-password" '
        'required maxlength="512" autofocus>\n'
        '<button type="submit">Log in</button>\n</form>\n</main>\n</body>\n</html>\n'
    )


def message_page(title: str, message: str) -> str:
    """A page that says why a download could not be given (plain text), with the way back."""
    return (
        _head(f"igym admin: {title}") + '</head>\n<body>\n<main class="admin-login">\n'
        f"<h1>{html.escape(title)}</h1>\n"
        f'<p class="admin-error" role="alert">{html.escape(message)}</p>\n'
        '<p><a href="/admin">Back to the dashboard</a></p>\n</main>\n</body>\n</html>\n'
    )


def dashboard_page(experiment_id: str, session_id: str) -> str:
    """The dashboard's page: ``admin.js`` fills ``#admin-root`` from the admin socket (the tables'
    download link too, once an export is ready)."""
    downloads = (
        '<a class="admin-download-raw" href="/admin/download/raw" data-testid="download-raw">'
        "Raw files (.tar.gz)</a>\n"
    )
    return (
        _head(f"igym admin: {experiment_id}")
        + '<script type="module" src="/client/admin.js"></script>\n</head>\n<body>\n'
        '<header class="admin-header">\n'
        f"<h1>igym admin: {html.escape(experiment_id)}</h1>\n"
        f'<span class="admin-session">session {html.escape(session_id)}</span>\n'
        + downloads
        + '<form method="post" action="/admin/logout"><button type="submit">Log out</button></form>\n'
        "</header>\n"
        '<main id="admin-root"><noscript>The dashboard needs JavaScript.</noscript></main>\n'
        "</body>\n</html>\n"
    )
