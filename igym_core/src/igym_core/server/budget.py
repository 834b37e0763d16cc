"""What one participant's socket may cost the server: inbound budgets and rejected-message accounting.

The study link is public, so anyone can open the WebSocket and send anything at any rate. One
event loop runs every game, so a connection's messages are budgeted where its bytes arrive, before
anything is parsed or decoded, and a connection past its budget simply stops being read until the
budget refills: the flooder fills its own TCP buffers, not our CPU. Rejected messages are counted
per connection and logged in aggregate; too many closes the socket with the policy-violation code.

- :class:`InboundLimits`: the budgets (from :class:`~igym_core.settings.Settings`).
- :class:`FrameGate`: token buckets for frames and bytes plus a scanner of WebSocket frame headers,
  so that a chunk of data is admitted up to the frame (or byte) where the budget runs out; the
  rest waits, unparsed. Used by igym's WebSocket protocol (``server/ws_protocol.py``).
- :class:`InboundBudget`: the same budgets for the plain ASGI path (other servers, the test client),
  charged per received message; the socket then waits before reading the next one.
- :class:`RejectionTally`: rejected messages by code, one ``messages_rejected`` log line per
  connection per interval, and whether the connection is still within its error budget.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs
import structlog

if TYPE_CHECKING:
    from igym_core.settings import Settings

__all__ = ["FrameGate", "InboundBudget", "InboundLimits", "RejectionTally"]

log = structlog.get_logger(__name__)

#: A throttled connection is not read again sooner than this, so that a flooder costs a timer
#: every 50 ms at most, not one per frame.
MIN_PAUSE_S = 0.05

#: Rejected messages of a connection are logged at most once per this many seconds.
REJECTION_LOG_INTERVAL_S = 10.0


@attrs.frozen(kw_only=True)
class InboundLimits:
    """Per-connection budgets for what a client sends.

    ``messages_per_s`` / ``message_burst``: WebSocket frames (a browser sends each message as one
    frame; WebSocket pings and other control frames count too). ``bytes_per_s`` / ``byte_burst``:
    bytes on the wire. A budget is a token bucket: it holds at most the burst and refills at the rate.
    """

    messages_per_s: float = 200.0
    message_burst: int = 400
    bytes_per_s: float = 256 * 1024
    byte_burst: int = 512 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> InboundLimits:
        return cls(
            messages_per_s=settings.ws_messages_per_s,
            message_burst=settings.ws_message_burst,
            bytes_per_s=settings.ws_bytes_per_s,
            byte_burst=settings.ws_byte_burst,
        )


def _frame_header(buf: Any, pos: int) -> tuple[int, int] | None:
    """(header length, payload length) of the frame starting at ``buf[pos]``; None if incomplete."""
    avail = len(buf) - pos
    if avail < 2:
        return None
    b1 = buf[pos + 1]
    length7 = b1 & 0x7F
    header = 6 if b1 & 0x80 else 2
    if length7 < 126:
        return header, length7
    if length7 == 126:
        if avail < 4:
            return None
        return header + 2, int.from_bytes(buf[pos + 2 : pos + 4], "big")
    if avail < 10:
        return None
    return header + 8, int.from_bytes(buf[pos + 2 : pos + 10], "big")


class FrameGate:
    """Admits a client's byte stream to the WebSocket parser frame by frame, within its budgets.

    It follows the frame boundaries of the stream (headers only; payloads are skipped), so it can
    stop exactly before the first frame the frame budget does not cover. A frame is counted when
    its first byte is admitted. Byte budget permitting, the rest of a started frame is admitted
    even when the frame budget is empty.
    """

    __slots__ = (
        "_head",
        "_left",
        "byte_burst",
        "byte_rate",
        "bytes",
        "frame_burst",
        "frame_rate",
        "frames",
        "stamp",
    )

    def __init__(self, limits: InboundLimits, now: float) -> None:
        self.frame_rate = limits.messages_per_s
        self.frame_burst = float(limits.message_burst)
        self.byte_rate = limits.bytes_per_s
        self.byte_burst = float(limits.byte_burst)
        self.frames = self.frame_burst
        self.bytes = self.byte_burst
        self.stamp = now
        self._left = 0  # bytes of the current frame (header and payload) not yet admitted
        self._head = b""  # the first bytes of a frame header cut by the end of a chunk

    def _refill(self, now: float) -> None:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.stamp = now
            frames = self.frames + elapsed * self.frame_rate
            self.frames = frames if frames < self.frame_burst else self.frame_burst
            data = self.bytes + elapsed * self.byte_rate
            self.bytes = data if data < self.byte_burst else self.byte_burst

    @property
    def between_frames(self) -> bool:
        return not self._left and not self._head

    def take_frame(self, size: int, now: float) -> bool:
        """Admit ``size`` bytes that hold exactly one whole frame, if the gate is between frames and
        the budgets allow (False: nothing taken; the caller goes through ``admit``)."""
        # Every message of every player comes through here: _refill is inlined.
        if self._left or self._head:
            return False
        elapsed = now - self.stamp
        if elapsed > 0:
            self.stamp = now
            frames = self.frames + elapsed * self.frame_rate
            self.frames = frames if frames < self.frame_burst else self.frame_burst
            data = self.bytes + elapsed * self.byte_rate
            self.bytes = data if data < self.byte_burst else self.byte_burst
        if self.frames >= 1 and self.bytes >= size:
            self.frames -= 1
            self.bytes -= size
            return True
        return False

    def admit(self, data: bytes, now: float) -> int:
        """How many leading bytes of ``data`` (the next bytes of the stream) may be parsed now."""
        self._refill(now)
        n = len(data)
        limit = n if n <= self.bytes else int(self.bytes)
        allowed_frames = int(self.frames)
        started = 0
        pos = 0
        while pos < limit:
            left = self._left
            if left:
                step = left if left <= limit - pos else limit - pos
                pos += step
                self._left = left - step
                continue
            head = self._head
            if head:  # a header cut by the end of the previous chunk; its frame is counted
                parsed = _frame_header(head + data[pos : pos + 14], 0)
                if parsed is None:
                    if n <= limit:  # still incomplete: keep it all
                        self._head = head + data[pos:n]
                        pos = n
                    break
                self._head = b""
                self._left = parsed[0] + parsed[1] - len(head)
                continue
            if started >= allowed_frames:
                break
            parsed = _frame_header(data, pos)
            if parsed is None:  # the chunk ends inside this header
                if n <= limit:
                    started += 1
                    self._head = data[pos:n]
                    pos = n
                break
            started += 1
            self._left = parsed[0] + parsed[1]
        self.frames -= started
        self.bytes -= pos
        return pos

    def wait_s(self, held: int) -> float:
        """Seconds until the budgets cover the next frame and up to ``held`` waiting bytes."""
        wait = 0.0
        if self.between_frames and self.frames < 1:
            wait = (1 - self.frames) / self.frame_rate
        want = min(held, self.byte_burst)
        if want > self.bytes:
            wait = max(wait, (want - self.bytes) / self.byte_rate)
        return max(wait, MIN_PAUSE_S)


class InboundBudget:
    """The same budgets for a socket that receives whole messages through ASGI (no :class:`FrameGate`).

    ``charge`` takes a message of some size and returns how long to wait before reading the next one.
    """

    __slots__ = ("_gate",)

    def __init__(self, limits: InboundLimits, now: float) -> None:
        self._gate = FrameGate(limits, now)

    def charge(self, size: int, now: float) -> float:
        gate = self._gate
        gate._refill(now)
        gate.frames -= 1
        gate.bytes -= size
        wait = 0.0
        if gate.frames < 0:
            wait = -gate.frames / gate.frame_rate
        if gate.bytes < 0:
            wait = max(wait, -gate.bytes / gate.byte_rate)
        return wait


class RejectionTally:
    """One connection's rejected messages: counts by code, an aggregated log, and an error budget.

    At most ``max_errors`` rejections in a burst, refilling at ``max_errors`` per
    ``REJECTION_LOG_INTERVAL_S`` seconds; ``reject`` returns False once that is exceeded.
    """

    __slots__ = ("_bucket", "_counts", "_last_reason", "_next_log", "total")

    def __init__(self, max_errors: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        limits = InboundLimits(
            messages_per_s=max_errors / REJECTION_LOG_INTERVAL_S,
            message_burst=max_errors,
            bytes_per_s=1.0,
            byte_burst=1,
        )
        self._bucket = FrameGate(limits, now)
        self._counts: Counter[str] = Counter()
        self._last_reason = ""
        self._next_log = 0.0
        self.total = 0

    def reject(self, code: str, reason: str, now: float | None = None) -> bool:
        """Count one rejected message; False when the connection is past its error budget."""
        now = time.monotonic() if now is None else now
        self._counts[code] += 1
        self._last_reason = reason
        self.total += 1
        if now >= self._next_log:
            self.flush()
            self._next_log = now + REJECTION_LOG_INTERVAL_S
        return self._bucket.take_frame(0, now)

    @property
    def counts(self) -> dict[str, int]:
        """Rejections not logged yet, by code."""
        return dict(self._counts)

    def flush(self) -> None:
        """Log the rejections counted since the last line, if any."""
        if self._counts:
            log.warning(
                "messages_rejected",
                counts=dict(self._counts),
                last_reason=self._last_reason,
                total=self.total,
            )
            self._counts.clear()
