"""The peer-to-peer packets of the ``pyodide_p2p`` rollback engine: their limits, their encoding and
the checks that need no game state (is this a well-formed packet of this protocol?). Whether a
well-formed packet fits the game now (its game, seat, session, frames, inputs) is the engine's
(:mod:`igym_pyodide_p2p.browser.rollback`) to decide.

Packets are compact JSON objects (bytes). Every packet has ``v`` (protocol version), ``k`` (kind:
``h`` handshake ping, ``i`` inputs, ``s`` a state for a desync repair, ``r`` a repair request),
``g`` (game id), ``s`` (sender's seat), ``x`` (sender's session), ``n`` (packet number), ``e``
(episode) and optionally ``pg``/``po`` (ping stamp / pong ``[stamp, held_ms]``).

Pure Python, standard library only: it runs unchanged under Pyodide and CPython.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_MAX_STATE_BYTES",
    "MAX_DELAY",
    "MAX_PACKET_BYTES",
    "MAX_STATE_BYTES_LIMIT",
    "MAX_STRETCH",
    "MAX_WINDOW",
    "PROTOCOL_VERSION",
    "REPAIR_RETRY_MS",
    "RESEND_MS",
    "SYNC_SAMPLES",
    "EngineError",
    "Reassembler",
    "Refused",
    "check_body_fields",
    "check_header_fields",
    "decode_packet",
    "encode_packet",
    "is_int",
    "is_number",
    "split_packet",
]

PROTOCOL_VERSION = 1
#: Largest packet accepted (the server's relay forwards at most 8 KB).
MAX_PACKET_BYTES = 8192
#: Largest input delay and prediction window (frames).
MAX_DELAY = 8
MAX_WINDOW = 8
#: Keepalive / resend interval when no new input went out.
RESEND_MS = 200
#: A peer waiting for a desync repair asks again after this long.
REPAIR_RETRY_MS = 1000
#: At most one ``packet_refused`` event per this interval (refusals in between are counted in it).
REFUSED_EVENT_EVERY_MS = 1000
#: Ticks over which the frame advantage is averaged for time sync.
SYNC_SAMPLES = 30
#: The most a peer stretches its frame period to let the partner catch up (10 %).
MAX_STRETCH = 0.1
#: Inputs one packet may carry; state hashes one packet may carry.
MAX_INPUTS_PER_PACKET = 2 * (MAX_WINDOW + MAX_DELAY) + 8
MAX_HASHES_PER_PACKET = 16
#: Round-trip samples kept (the median is the RTT).
RTT_SAMPLES = 16
#: Saved states of confirmed hash frames kept for desync repair (by the authority).
REPAIR_STATES_KEPT = 8
#: The most a packet number may jump past the highest seen (over two minutes of packets lost).
MAX_SEQUENCE_JUMP = 4096
#: Frames per tick a peer that fell far behind (after a reload) may simulate to catch up.
CATCH_UP_FRAMES = 4

_KINDS = ("i", "h", "s", "r")


class EngineError(ValueError):
    """A snapshot or configuration the engine cannot use; the message says what was expected."""


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Refused(Exception):
    """A packet refused; ``reason`` is counted in the engine's ``refused_reasons``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode_packet(packet: Mapping[str, Any]) -> bytes:
    """A packet as compact JSON bytes."""
    return json.dumps(packet, separators=(",", ":"), allow_nan=False).encode()


def decode_packet(data: Any, max_bytes: int = MAX_PACKET_BYTES) -> dict[str, Any]:
    """Bytes from the partner (a packet, or a state packet put together from its chunks: at most
    ``max_bytes``) → the packet (a dict of a known version and kind); raises :class:`Refused`
    (``malformed``, ``oversized``)."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise Refused("malformed")
    if len(data) > max_bytes:
        raise Refused("oversized")
    try:
        packet = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Refused("malformed") from None
    if not isinstance(packet, dict):
        raise Refused("malformed")
    if packet.get("v") != PROTOCOL_VERSION or packet.get("k") not in _KINDS:
        raise Refused("malformed")
    return packet


def check_header_fields(packet: Mapping[str, Any]) -> tuple[str, int, int]:
    """The packet's session, number and episode, checked (raises :class:`Refused` ``malformed``)."""
    session, seq, episode = packet.get("x"), packet.get("n"), packet.get("e")
    if not isinstance(session, str) or not 1 <= len(session) <= 32 or not is_int(seq) or seq < 1:
        raise Refused("malformed")
    if not is_int(episode) or episode < 0:
        raise Refused("malformed")
    return session, seq, episode


def check_body_fields(kind: str, packet: Mapping[str, Any]) -> None:
    """The fields of a packet of ``kind``: present, of their types and within the limits (raises
    :class:`Refused` ``malformed``)."""
    ping, pong = packet.get("pg"), packet.get("po")
    if ping is not None and not is_number(ping):
        raise Refused("malformed")
    if pong is not None and not (
        isinstance(pong, list) and len(pong) == 2 and all(is_number(v) for v in pong) and pong[1] >= 0
    ):
        raise Refused("malformed")
    if kind == "h":
        return
    if kind == "i":
        frame, ack, first, inputs = packet.get("f"), packet.get("a"), packet.get("b"), packet.get("i")
        hashes, hash_ack = packet.get("h"), packet.get("ha")
        if not (is_int(frame) and is_int(ack) and is_int(first) and is_int(hash_ack)):
            raise Refused("malformed")
        if frame < 0 or ack < 0 or first < 1 or hash_ack < 0:
            raise Refused("malformed")
        if not isinstance(inputs, list) or len(inputs) > MAX_INPUTS_PER_PACKET:
            raise Refused("malformed")
        if not isinstance(hashes, list) or len(hashes) > MAX_HASHES_PER_PACKET:
            raise Refused("malformed")
        for entry in hashes:
            if not (
                isinstance(entry, list)
                and len(entry) == 2
                and is_int(entry[0])
                and entry[0] >= 0
                and isinstance(entry[1], str)
                and 0 < len(entry[1]) <= 128
            ):
                raise Refused("malformed")
        return
    if kind == "s":
        frame, state_hash = packet.get("f"), packet.get("hh")
        if not is_int(frame) or frame < 0 or not isinstance(state_hash, str) or "st" not in packet:
            raise Refused("malformed")
        return
    # "r": a repair request.
    frame, current = packet.get("f"), packet.get("c")
    if not (is_int(frame) and is_int(current) and 0 <= frame <= current):
        raise Refused("malformed")


# --- states larger than one packet: chunks -------------------------------------------------------
#: The default bound on a state sent to the partner (a desync repair's, a reloading partner's
#: snapshot), as JSON; the scene's runtime option ``max_state_bytes`` sets it (1 KB to
#: :data:`MAX_STATE_BYTES_LIMIT`).
DEFAULT_MAX_STATE_BYTES = 64 * 1024
MAX_STATE_BYTES_LIMIT = 1024 * 1024
#: Bytes of a packet one chunk carries (base64 in the chunk: it stays under MAX_PACKET_BYTES).
CHUNK_BYTES = 5 * 1024
#: Transfers a peer reassembles at once (a newer one pushes out the oldest).
_TRANSFERS_KEPT = 4


def split_packet(data: bytes, game_id: str) -> list[bytes]:
    """``data`` as it goes on the wire: itself when it fits one packet (:data:`MAX_PACKET_BYTES`),
    else chunks ``{"k": "c", "g", "t": transfer id, "i": index, "c": count, "d": base64}`` of
    :data:`CHUNK_BYTES` each, which :class:`Reassembler` puts together again. Sending the same
    chunks again (a lost chunk: the partner asks again) completes a transfer in part received."""
    if len(data) <= MAX_PACKET_BYTES:
        return [data]
    transfer = os.urandom(6).hex()
    count = math.ceil(len(data) / CHUNK_BYTES)
    return [
        encode_packet(
            {
                "v": PROTOCOL_VERSION,
                "k": "c",
                "g": game_id,
                "t": transfer,
                "i": index,
                "c": count,
                "d": base64.b64encode(data[index * CHUNK_BYTES : (index + 1) * CHUNK_BYTES]).decode("ascii"),
            }
        )
        for index in range(count)
    ]


class Reassembler:
    """Puts :func:`split_packet`'s chunks together. :meth:`feed` takes every packet from the partner:
    a packet that is no chunk comes back as it is; a chunk comes back as None until its transfer is
    complete, then as the whole packet. A transfer larger than ``max_bytes`` (the state bound plus
    one packet) is refused (``oversized``), a chunk of another game or malformed (``malformed``)."""

    def __init__(self, game_id: str, max_bytes: int) -> None:
        self.game_id = game_id
        self.max_bytes = int(max_bytes)
        self._parts: OrderedDict[str, dict[int, bytes]] = OrderedDict()
        self._counts: dict[str, int] = {}

    def feed(self, data: Any) -> Any:
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes) or len(data) > MAX_PACKET_BYTES or not data.startswith(b'{"v":'):
            return data
        if b'"k":"c"' not in data[:24]:
            return data
        try:
            packet = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise Refused("malformed") from None
        if not isinstance(packet, dict) or packet.get("k") != "c":
            return data
        transfer, index, count, text = packet.get("t"), packet.get("i"), packet.get("c"), packet.get("d")
        if packet.get("g") != self.game_id:
            raise Refused("wrong_game")
        if not (isinstance(transfer, str) and 0 < len(transfer) <= 16 and is_int(index) and is_int(count)):
            raise Refused("malformed")
        if not (0 <= index < count) or not isinstance(text, str) or len(text) > MAX_PACKET_BYTES:
            raise Refused("malformed")
        if count * CHUNK_BYTES > self.max_bytes + CHUNK_BYTES:
            raise Refused("oversized")
        if self._counts.setdefault(transfer, count) != count:
            raise Refused("malformed")
        try:
            part = base64.b64decode(text, validate=True)
        except ValueError:
            raise Refused("malformed") from None
        if len(part) > CHUNK_BYTES:
            raise Refused("malformed")
        parts = self._parts.setdefault(transfer, {})
        self._parts.move_to_end(transfer)
        parts[index] = part
        while len(self._parts) > _TRANSFERS_KEPT:
            oldest, _ = self._parts.popitem(last=False)
            self._counts.pop(oldest, None)
        if len(parts) < count:
            return None
        del self._parts[transfer]
        del self._counts[transfer]
        whole = b"".join(parts[i] for i in range(count))
        if len(whole) > self.max_bytes + MAX_PACKET_BYTES:
            raise Refused("oversized")
        return whole
