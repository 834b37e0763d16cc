"""uvicorn's httptools HTTP protocol with a deadline for request headers and for never-used connections.

uvicorn closes a kept-alive connection ``timeout_keep_alive`` seconds after its last response, and
has no other timeout: a connection that sends nothing, or sends a request's headers a byte at a
time (slowloris), is held for ever, with its file descriptor. A few thousand of them exhaust the
process's descriptors, and then ``/health`` and new participants fail. This class, which ``igym
run`` gives uvicorn, adds:

- an idle deadline from the moment a connection is accepted, so a connection that never sends a
  request is closed after ``idle_timeout_s`` (the same time uvicorn gives a kept-alive one); and
- a header deadline from the first byte of each request: if the request's headers are not
  complete ``header_timeout_s`` later, the connection is closed. The deadline is absolute, so
  trickling bytes does not extend it.

Once the headers are complete the request belongs to the app (a slow response, or a WebSocket
after the upgrade, is not timed out here: the participant socket has its own hello timeout and
keepalive).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["IgymHttpProtocol", "http_protocol"]

log = structlog.get_logger(__name__)


class IgymHttpProtocol(HttpToolsProtocol):
    """See the module docstring. Configure with :func:`http_protocol`."""

    header_timeout_s: float = 10.0
    idle_timeout_s: float = 5.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        # uvicorn's own keep-alive slot: its data_received cancels it when a request begins.
        self.timeout_keep_alive_task = self.loop.call_later(self.idle_timeout_s, self._idle_timed_out)

    def data_received(self, data: bytes) -> None:
        if self._header_deadline is None and (self.cycle is None or self.cycle.response_complete):
            # The first bytes of a request (or of stray bytes that never become one).
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_timed_out)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._cancel_header_deadline()
        super().on_headers_complete()

    def handle_websocket_upgrade(self) -> None:
        # The transport now belongs to the WebSocket protocol: none of this protocol's timers may
        # close it.
        self._cancel_header_deadline()
        self._unset_keepalive_if_required()
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        self._unset_keepalive_if_required()
        super().connection_lost(exc)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _idle_timed_out(self) -> None:
        self.timeout_keep_alive_task = None
        if not self.transport.is_closing():
            log.debug("connection_idle_closed", client=_client(self))
            self.transport.close()

    def _headers_timed_out(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.info("request_headers_timed_out", client=_client(self), timeout_s=self.header_timeout_s)
            # Nothing of the request was handed to the app: close without a response (a 408 would
            # be a courtesy to a client that is, almost always, not waiting for one).
            self.transport.close()


def _client(protocol: Any) -> str | None:
    client = protocol.client
    return f"{client[0]}:{client[1]}" if client else None


def http_protocol(*, header_timeout_s: float, idle_timeout_s: float) -> type[IgymHttpProtocol]:
    """The protocol class for uvicorn's ``http=`` with these timeouts."""
    return type(
        "IgymHttpProtocol",
        (IgymHttpProtocol,),
        {"header_timeout_s": header_timeout_s, "idle_timeout_s": idle_timeout_s},
    )
