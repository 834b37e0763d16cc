"""The rollback engine's recovery: desyncs (comparing confirmed hashes, the authority sending its
state, the other peer loading it and resimulating), a partner who left (its bot plays on, or the
episode stops) and reloads (:meth:`snapshot` for the partner's new page, :meth:`resume` on it).

A part of :class:`~igym_pyodide_p2p.browser.rollback.RollbackEngine` (see its module docstring,
"Desyncs", "Disconnects" and "Reloads"). Pure Python, standard library only."""

from __future__ import annotations

import json
from typing import Any

from igym_pyodide_p2p.browser.rollback_packets import (
    MAX_PACKET_BYTES,
    MAX_STATE_BYTES_LIMIT,
    PROTOCOL_VERSION,
    REPAIR_RETRY_MS,
    EngineError,
    encode_packet,
    is_int,
)
from igym_pyodide_p2p.browser.rollback_packets import Refused as _Refused

__all__ = ["EngineRecovery"]


class EngineRecovery:
    """Desync detection and repair, a partner who left and reloads, for
    :class:`~igym_pyodide_p2p.browser.rollback.RollbackEngine` (a part of it: it uses the engine's
    state, set in its ``__init__`` and ``_reset_episode_state``)."""

    def _compare_hash(self, frame: int, now_ms: float, events: list[dict[str, Any]]) -> None:
        mine = self._confirmed_hashes.get(frame)
        theirs = self._remote_hashes.get(frame)
        if mine is None or theirs is None or mine == theirs or frame in self._desyncs_reported:
            return
        if self.repair_frame is not None and frame > self.repair_frame:
            return  # later frames follow from the frame being repaired
        self._desyncs_reported.add(frame)
        self.stats["desyncs_detected"] += 1
        events.append(self._event("desync_detected", {"local": mine, "remote": theirs}, frame))
        if self.authority:
            self._send_state(frame, self.frame)
        else:
            self.repair_frame = frame
            self._repair_asked_ms = now_ms

    def _send_state(self, frame: int, partner_frame: int) -> None:
        candidates = [f for f in self._repair_states if f >= frame and f <= max(frame, partner_frame)]
        if not candidates:
            return
        chosen = min(candidates)
        state = self.sim.export_state(self._repair_states[chosen])
        body = {"f": chosen, "st": state, "hh": self._confirmed_hashes.get(chosen)}
        packet = self._control_packet("s", body)
        if len(packet) > self.max_state_bytes + MAX_PACKET_BYTES:
            # Too large to send: the partner stays desynced and waits (recorded, never silent).
            self._events.append(
                self._event(
                    "state_too_large", {"bytes": len(packet), "max_state_bytes": self.max_state_bytes}
                )
            )
            return
        self._outbox.append(packet)

    def _receive_state(self, body: dict[str, Any], now_ms: float, events: list[dict[str, Any]]) -> None:
        frame = body["f"]
        theirs = body["hh"]
        mine = self._confirmed_hashes.get(frame)
        wanted = self.repair_frame is not None and frame >= self.repair_frame
        if not wanted and (mine is None or mine == theirs):
            return  # not needed (already repaired, or this frame agrees)
        if not wanted and self._repaired_ms is not None and now_ms - self._repaired_ms < REPAIR_RETRY_MS / 2:
            return  # unasked states load at most twice a second (each costs a resimulation)
        if frame > self.frame:
            return
        known_remote = range(frame + 1, min(self.remote_last, self.frame) + 1)
        if any(f not in self._local for f in range(frame + 1, self.frame + 1)) or any(
            f not in self._remote for f in known_remote
        ):
            return  # too old to resimulate from: ask again (the authority sends a later state)
        present = self.frame
        saved = self.sim.save()
        try:
            state = self.sim.import_state(body["st"])
            self.sim.load(state)
        except Exception:  # a state the env refuses: keep ours, refuse the packet
            self.sim.load(saved)
            raise _Refused("bad_state") from None
        self.frame = frame
        self._states[frame] = state
        self._hashes[frame] = theirs
        self._confirmed_hashes[frame] = theirs
        self._resimulate_to(present)
        for later in range(frame + 1, min(self.confirmed, self.frame) + 1):
            if later in self._hashes:
                self._confirmed_hashes[later] = self._hashes[later]
        if self.confirmed > self.frame:
            self.confirmed = self.frame
        resimulated = self.frame - frame
        self.stats["resimulated_frames"] += resimulated
        self.stats["desyncs_repaired"] += 1
        self.repair_frame = None
        self._repair_asked_ms = None
        self._repaired_ms = now_ms
        self._hash_ack = min(self._hash_ack, frame)  # send the corrected hashes again
        events.append(
            self._event("desync_repaired", {"loaded_frame": frame, "resimulated": resimulated}, frame)
        )

    # --- partner gone, reloads -------------------------------------------------------------------
    def partner_left(self, *, bot: bool) -> None:
        """The partner is gone: with ``bot`` the partner's seat is played by its bot (input None)
        from the first frame whose real input is unknown; otherwise the episode stops."""
        if not bot:
            self.stopped = True
            if self.playing:
                self.playing = False
            return
        self.solo = True
        self.stopped = False
        self.repair_frame = None
        if self.playing and self.remote_last < self.frame:
            self._rollback_from = self.remote_last + 1
            self._first_predicted = {f: v for f, v in self._first_predicted.items() if f <= self.remote_last}

    def snapshot(self) -> bytes:
        """The confirmed state and every input known after it, for the partner's new page; the
        partner's old page is refused from now on."""
        if not (self.playing or self.done):
            raise EngineError("snapshot() outside an episode: there is no state to give.")
        base = self.confirmed
        body = {
            "v": PROTOCOL_VERSION,
            "k": "snap",
            "g": self.game_id,
            "s": self.seat,
            "e": self.episode,
            "m": self.max_steps,
            "fps": self.fps,
            "f": base,
            "st": self.sim.export_state(self._states[base]),
            "hh": self._confirmed_hashes.get(base),
            "last": self._local.get(base, self.default_input),
            "mine": [self._local[f] for f in range(base + 1, self.local_last + 1)],
            "yours": [self._remote[f] for f in range(base + 1, self.remote_last + 1)],
        }
        packet = encode_packet(body)
        if len(packet) > self.max_state_bytes + MAX_PACKET_BYTES:
            raise EngineError(
                f"snapshot(): the game's state is {len(packet)} bytes as JSON; a state sent to the "
                f"partner is at most max_state_bytes={self.max_state_bytes} (+ {MAX_PACKET_BYTES}). Raise "
                f"the scene's runtime option max_state_bytes (up to {MAX_STATE_BYTES_LIMIT}) or make "
                "get_state() smaller."
            )
        if self.partner_session is not None:
            self._retired_sessions.add(self.partner_session)
        self.partner_session = None
        # The new page numbers its packets from 1 again.
        self._seen.clear()
        self._seen_order.clear()
        self._max_seen = -1
        return packet

    def resume(self, snapshot: bytes) -> None:
        """Continue the partner's episode from its :meth:`snapshot` (this is the reloaded page)."""
        try:
            data = json.loads(snapshot)
        except (ValueError, TypeError, UnicodeDecodeError):
            raise EngineError("resume(): the snapshot is not JSON from snapshot().") from None
        if not isinstance(data, dict) or data.get("k") != "snap" or data.get("v") != PROTOCOL_VERSION:
            raise EngineError(
                f"resume(): expected a snapshot (k='snap', v={PROTOCOL_VERSION}); got {str(data)[:80]!r}."
            )
        if data.get("g") != self.game_id or data.get("s") != self.partner_seat:
            raise EngineError(
                f"resume(): the snapshot is of game {data.get('g')!r} from seat {data.get('s')!r}; expected "
                f"game {self.game_id!r} from the partner seat {self.partner_seat!r}."
            )
        # The partner's "mine" are the partner seat's inputs; its "yours" are this seat's.
        base, own, partners, last = data.get("f"), data.get("yours"), data.get("mine"), data.get("last")
        if not (is_int(base) and base >= 0 and isinstance(own, list) and isinstance(partners, list)):
            raise EngineError("resume(): the snapshot lacks its frame or inputs.")
        if not all(self.sim.check_input(v) for v in (*own, *partners, last)):
            raise EngineError("resume(): the snapshot holds an input this game cannot play.")
        try:
            state = self.sim.import_state(data["st"])
        except (KeyError, TypeError, ValueError) as exc:
            raise EngineError(f"resume(): the snapshot's state does not load: {exc}.") from None
        self._begin(data.get("e"), data.get("m"), data.get("fps"))
        if base > self.max_steps:
            raise EngineError(
                f"resume(): the snapshot's frame {base} is past the episode's {self.max_steps}."
            )
        self.sim.load(state)
        self.frame = self.confirmed = base
        self._states[base] = state
        for offset, value in enumerate(own):
            self._local[base + 1 + offset] = value
        self.local_last = base + len(own)
        self.remote_ack = self.local_last  # the partner has all of these
        self._remote[base] = last
        for offset, value in enumerate(partners):
            self._remote[base + 1 + offset] = value
        self.remote_last = base + len(partners)
        fill_to = min(base + self.input_delay, self.max_steps)
        for frame in range(self.local_last + 1, fill_to + 1):
            self._local[frame] = self.default_input
        self.local_last = max(self.local_last, fill_to)
        if isinstance(data.get("hh"), str):
            self._confirmed_hashes[base] = data["hh"]
        self._hash_ack = base
        self._remote_hash_seen = base
        self._events.append(self._event("resumed", {"from_frame": base, "partner_frame": self.remote_last}))
