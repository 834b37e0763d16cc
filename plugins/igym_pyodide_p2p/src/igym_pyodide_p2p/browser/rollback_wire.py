"""The rollback engine's transport: the packets it sends (inputs, ack, frame, hashes, ping/pong;
control packets), the checks of a received packet against the game now, and the partner's inputs
taken into the input queue (a misprediction marks the frame to roll back from).

A part of :class:`~igym_pyodide_p2p.browser.rollback.RollbackEngine` (see its module docstring,
"Transport"); the packets' encoding and state-free checks are :mod:`.rollback_packets`. Pure Python,
standard library only."""

from __future__ import annotations

from typing import Any

from igym_pyodide_p2p.browser.rollback_packets import (
    MAX_DELAY,
    MAX_HASHES_PER_PACKET,
    MAX_INPUTS_PER_PACKET,
    MAX_PACKET_BYTES,
    MAX_SEQUENCE_JUMP,
    PROTOCOL_VERSION,
    REFUSED_EVENT_EVERY_MS,
    REPAIR_RETRY_MS,
    check_body_fields,
    check_header_fields,
    decode_packet,
    encode_packet,
)
from igym_pyodide_p2p.browser.rollback_packets import Refused as _Refused

__all__ = ["EngineWire"]


class EngineWire:
    """The packets of :class:`~igym_pyodide_p2p.browser.rollback.RollbackEngine` and the partner's
    inputs they carry (a part of it: it uses the engine's state, set in its ``__init__`` and
    ``_reset_episode_state``)."""

    # --- packets ---------------------------------------------------------------------------------
    def _header(self, kind: str, now_ms: float | None) -> dict[str, Any]:
        self._seq += 1
        header: dict[str, Any] = {
            "v": PROTOCOL_VERSION,
            "k": kind,
            "g": self.game_id,
            "s": self.seat,
            "x": self.session,
            "n": self._seq,
            "e": self.episode,
        }
        if now_ms is not None:
            header["pg"] = now_ms
            if self._ping_to_echo is not None:
                stamp, received = self._ping_to_echo
                header["po"] = [stamp, max(0.0, now_ms - received)]
        return header

    def _control_packet(self, kind: str, body: dict[str, Any]) -> bytes:
        packet = self._header(kind, None)
        packet.update(body)
        return encode_packet(packet)

    def packet(self, now_ms: float) -> bytes:
        """An input packet now: unacknowledged inputs, ack, frame, hashes, ping/pong."""
        packet = self._header("i", now_ms)
        first = self.remote_ack + 1
        inputs = [self._local[f] for f in range(first, self.local_last + 1)]
        hashes = [[f, h] for f, h in sorted(self._confirmed_hashes.items()) if f > self._hash_ack]
        packet.update(
            f=self.frame,
            a=self.remote_last,
            b=first,
            i=inputs[:MAX_INPUTS_PER_PACKET],
            h=hashes[:MAX_HASHES_PER_PACKET],
            ha=self._remote_hash_seen,
        )
        return encode_packet(packet)

    def handshake(self, now_ms: float) -> list[bytes]:
        """A ping (with the echo of the partner's last ping) for the round trip before play."""
        self.stats["packets_sent"] += 1
        return [encode_packet(self._header("h", now_ms))]

    def receive(self, data: Any, now_ms: float) -> list[dict[str, Any]]:
        """A packet from the partner. Returns events (a refused packet may report
        ``packet_refused``, at most once a second)."""
        events: list[dict[str, Any]] = []
        try:
            self._receive(data, now_ms, events)
        except _Refused as refused:
            self._refuse(refused.reason, now_ms, events)
        return events

    def refuse(self, reason: str, now_ms: float) -> list[dict[str, Any]]:
        """Count a packet refused before it reached the engine (a bad chunk); returns events as
        :meth:`receive`."""
        events: list[dict[str, Any]] = []
        self._refuse(reason, now_ms, events)
        return events

    def _refuse(self, reason: str, now_ms: float, events: list[dict[str, Any]]) -> None:
        self.stats["packets_refused"] += 1
        self._refused_reasons[reason] = self._refused_reasons.get(reason, 0) + 1
        self._refused_since_event += 1
        last = self._last_refused_event_ms
        if last is None or now_ms - last >= REFUSED_EVENT_EVERY_MS:
            self._last_refused_event_ms = now_ms
            events.append(
                self._event("packet_refused", {"reason": reason, "count": self._refused_since_event})
            )
            self._refused_since_event = 0

    def _receive(self, data: Any, now_ms: float, events: list[dict[str, Any]]) -> None:
        packet = decode_packet(data, self.max_state_bytes + MAX_PACKET_BYTES)
        if packet["k"] != "s" and len(data) > MAX_PACKET_BYTES:
            raise _Refused("oversized")  # only a state may be larger than a packet (in chunks)
        if packet.get("g") != self.game_id:
            raise _Refused("wrong_game")
        if packet.get("s") != self.partner_seat:
            raise _Refused("wrong_seat")
        session, seq, episode = check_header_fields(packet)
        if session in self._retired_sessions:
            raise _Refused("stale_session")
        if self.partner_session is not None and session != self.partner_session:
            raise _Refused("wrong_session")
        kind = packet["k"]
        body = self._check_body(kind, packet)
        if seq in self._seen or seq <= self._max_seen - 512:
            raise _Refused("replayed")
        if seq > max(self._max_seen, 0) + MAX_SEQUENCE_JUMP:
            raise _Refused("bad_sequence")  # would lock out every later packet as a replay
        # Accepted from here on.
        self.partner_session = session
        self._seen.add(seq)
        self._seen_order.append(seq)
        if len(self._seen_order) > 512:
            self._seen.discard(self._seen_order.popleft())
        self._max_seen = max(self._max_seen, seq)
        self.stats["packets_received"] += 1
        self._last_recv_ms = now_ms
        if self._silent_noticed and not self.stopped:
            self._silent_noticed = False
            self._lost_reported = False
            events.append(self._event("partner_back", {}))
        ping = packet.get("pg")
        if ping is not None:
            self._ping_to_echo = (ping, now_ms)
        pong = packet.get("po")
        if pong is not None:
            rtt = now_ms - pong[0] - pong[1]
            if 0 <= rtt < 60000:
                self._rtts.append(rtt)
        if kind == "h" or episode != self.episode or not (self.playing or self.done):
            return  # a ping, or a packet of the episode before or after this one (harmless)
        if kind == "i":
            self._receive_inputs(body, now_ms, events)
        elif kind == "s":
            self._receive_state(body, now_ms, events)
        elif kind == "r" and self.authority and not self._answered_recently(now_ms):
            self._send_state(body["f"], body["c"])

    def _answered_recently(self, now_ms: float) -> bool:
        """Repair requests are answered at most twice a second (a flood of them sends no flood)."""
        if self._answered_ms is not None and now_ms - self._answered_ms < REPAIR_RETRY_MS / 2:
            return True
        self._answered_ms = now_ms
        return False

    def _check_body(self, kind: str, packet: dict[str, Any]) -> dict[str, Any]:
        """The packet's fields (:func:`check_body_fields`), then whether they fit this game now;
        raises :class:`_Refused`."""
        check_body_fields(kind, packet)
        episode = packet["e"]
        if kind == "i":
            frame, ack, first, inputs = packet["f"], packet["a"], packet["b"], packet["i"]
            hashes, hash_ack = packet["h"], packet["ha"]
            if episode == self.episode and any(entry[0] > self.local_last for entry in hashes):
                raise _Refused("beyond_window")  # the partner cannot have confirmed frames we never sent
            for value in inputs:
                if not self.sim.check_input(value):
                    raise _Refused("bad_input")
            if episode == self.episode and (self.playing or self.done):
                last = first + len(inputs) - 1
                if last > self.max_steps or frame > self.max_steps or hash_ack > self.max_steps:
                    raise _Refused("beyond_episode")
                horizon = self.frame + 2 * (self.window + MAX_DELAY)  # a partner catching up included
                if last > horizon or frame > horizon:
                    raise _Refused("beyond_window")
                if ack > self.local_last:
                    raise _Refused("bad_ack")
                for offset, value in enumerate(inputs):
                    known = self._remote.get(first + offset)
                    if known is not None and known != value:
                        raise _Refused("conflicting_input")
        elif kind == "s" and self.authority:
            raise _Refused("not_authority")
        return packet

    def _receive_inputs(self, body: dict[str, Any], now_ms: float, events: list[dict[str, Any]]) -> None:
        first = body["b"]
        for offset, value in enumerate(body["i"]):
            frame = first + offset
            if frame != self.remote_last + 1:
                continue  # known already, or after a gap (the partner resends from our ack)
            self._remote[frame] = value
            self.remote_last = frame
            mispredicted = frame <= self.frame and self._used.get(frame) != value and not self.solo
            if mispredicted and (self._rollback_from is None or frame < self._rollback_from):
                self._rollback_from = frame
        self.remote_ack = min(max(self.remote_ack, body["a"]), self.local_last)
        if (
            self._remote_frame is None
            or body["f"] >= self._remote_frame
            or now_ms - self._remote_frame_at > 1000
        ):
            self._remote_frame = body["f"]
            self._remote_frame_at = now_ms
        self._hash_ack = max(self._hash_ack, body["ha"])
        for frame, state_hash in body["h"]:
            if frame < self.confirmed - 4 * self.hash_every * MAX_HASHES_PER_PACKET:
                continue
            self._remote_hashes[frame] = state_hash
            self._remote_hash_seen = max(self._remote_hash_seen, frame)
            if frame <= self.confirmed:
                self._compare_hash(frame, now_ms, events)
