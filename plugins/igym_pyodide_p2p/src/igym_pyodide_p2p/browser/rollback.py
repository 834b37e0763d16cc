"""The rollback engine of the ``pyodide_p2p`` runtime: :class:`RollbackEngine`.

Two peers each step the same env; each sends its seat's inputs to the other and plays on with a
prediction of the partner's input (its last known input repeated) until the real one arrives. A
real input that differs from the prediction rolls the game back to the frame before it and
resimulates to the present (GGPO's model). The engine knows nothing of envs, keys or frames to draw:
it drives a :class:`Simulation` (save, load, advance one frame, hash) and exchanges opaque, JSON-able
inputs that the simulation checks.

Frames are the episode's env steps ``1 … max_steps``; frame ``f``'s inputs are the actions of env step
``f``; the state "at frame f" is the state after step ``f`` (frame 0: after the reset).

- **Input delay** ``d``: the input sampled at the tick that simulates frame ``F`` is this seat's
  input for frame ``F + d`` (frames ``1 … d`` get the default input). Each seat sends its inputs
  explicitly, so the two peers need not use the same delay.
- **Prediction window** ``w``: a peer never simulates more than ``w`` frames past the last frame
  whose partner input it has; there it does not advance that tick (``waiting == "window"``).
- **Confirmed frames**: frame ``f`` is confirmed once both seats' inputs for ``1 … f`` are known and
  ``f`` was simulated with them. Only confirmed frames are reported (:meth:`take_confirmed`). A frame
  on which the episode ends is final only when confirmed: the peer holds there until it is confirmed
  (the episode is over) or rolled back (it was not the end after all).
- **Time sync**: each peer estimates the partner's frame (its last reported frame plus the time since,
  plus half the round trip), averages its advantage over :data:`SYNC_SAMPLES` ticks and, when that
  average is at least one frame, stretches its frame period (``period_scale``, at most
  ``1 + MAX_STRETCH``) to give back half of it.
- **Transport** (:meth:`packet` / :meth:`receive`): compact JSON packets (bytes). An input packet
  carries every local input the partner has not acknowledged, an ack of the partner's inputs, the
  sender's frame, the sender's confirmed state hashes the partner has not acknowledged and ping/pong
  stamps. One goes out at every tick that made an input, and every :data:`RESEND_MS` otherwise.
  Malformed, replayed, wrong-game, wrong-seat, stale-session, beyond-window and oversized packets are
  refused and counted (at most one ``packet_refused`` event per second) and the game goes on.
- **Desyncs**: the hash of the state at every ``hash_every``-th confirmed frame (and at the episode's
  last frame) is exchanged. On a mismatch both peers report ``desync_detected``; the authority sends
  its saved state at that frame, the other peer loads it, resimulates to its present and reports
  ``desync_repaired``. Until then that peer does not advance (``waiting == "partner"``) and asks
  again every :data:`REPAIR_RETRY_MS`.
- **Disconnects**: no valid packet for ``silent_notice_ms`` → ``partner_silent``; for
  ``lost_after_ms`` → ``partner_lost``; a packet after a notice → ``partner_back``.
- **Reloads**: :meth:`snapshot` (the peer that stayed) gives the confirmed state and every known input
  after it; :meth:`resume` (the reloaded peer's new engine) continues from it. Packets of the old page
  are refused from then on (each engine has its own session id).

Pure Python, standard library only: it runs unchanged under Pyodide and CPython.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from igym_pyodide_p2p.browser.rollback_packets import (
    CATCH_UP_FRAMES,
    DEFAULT_MAX_STATE_BYTES,
    MAX_DELAY,
    MAX_HASHES_PER_PACKET,
    MAX_INPUTS_PER_PACKET,
    MAX_PACKET_BYTES,
    MAX_SEQUENCE_JUMP,
    MAX_STATE_BYTES_LIMIT,
    MAX_STRETCH,
    MAX_WINDOW,
    PROTOCOL_VERSION,
    REFUSED_EVENT_EVERY_MS,
    REPAIR_RETRY_MS,
    REPAIR_STATES_KEPT,
    RESEND_MS,
    RTT_SAMPLES,
    SYNC_SAMPLES,
    EngineError,
    check_body_fields,
    check_header_fields,
    decode_packet,
    encode_packet,
    is_int,
)
from igym_pyodide_p2p.browser.rollback_packets import Refused as _Refused

__all__ = [
    "MAX_DELAY",
    "MAX_PACKET_BYTES",
    "MAX_STRETCH",
    "MAX_WINDOW",
    "PROTOCOL_VERSION",
    "REPAIR_RETRY_MS",
    "RESEND_MS",
    "SYNC_SAMPLES",
    "ConfirmedFrame",
    "EngineError",
    "RollbackEngine",
    "Simulation",
    "auto_input_delay",
    "sync_test",
]


class Simulation(Protocol):
    """What the engine drives: one seat's copy of the game."""

    def save(self) -> Any:
        """The full game state now (a copy the engine may keep)."""

    def load(self, state: Any) -> None:
        """Restore a state :meth:`save` returned."""

    def advance(self, frame: int, inputs: Mapping[str, Any], now_ms: float | None) -> str | None:
        """Simulate ``frame`` with each seat's input (``None``: the seat's bot chooses). Returns the
        reason the episode ends at this frame (``terminated``/``truncated``/``max_steps``) or None."""

    def state_hash(self) -> str:
        """A hash of the full env state now."""

    def export_state(self, state: Any) -> Any:
        """A saved state as a JSON-able value (to send to the partner)."""

    def import_state(self, data: Any) -> Any:
        """A state :meth:`export_state` produced, back into a saved state (raises ``ValueError``)."""

    def check_input(self, value: Any) -> bool:
        """Whether a partner's input (decoded JSON) is one this seat can play."""


class ConfirmedFrame:
    """A confirmed frame, as :meth:`RollbackEngine.take_confirmed` reports it."""

    __slots__ = ("end_reason", "frame", "hash", "inputs", "predicted", "resimulated")

    def __init__(
        self,
        frame: int,
        inputs: dict[str, Any],
        predicted: Any,
        resimulated: int,
        end_reason: str | None,
        state_hash: str | None,
    ) -> None:
        self.frame = frame
        self.inputs = inputs
        """Seat → the input played (``None`` for a seat its bot played)."""
        self.predicted = predicted
        """What this peer first predicted for the partner's input (None if the real one came first)."""
        self.resimulated = resimulated
        """How many times this frame was simulated again after a rollback."""
        self.end_reason = end_reason
        self.hash = state_hash
        """The state hash at this frame, where one was taken (every ``hash_every`` and the last)."""

    def __repr__(self) -> str:
        return (
            f"ConfirmedFrame(frame={self.frame}, inputs={self.inputs}, predicted={self.predicted!r}, "
            f"resimulated={self.resimulated}, end_reason={self.end_reason!r}, hash={self.hash!r})"
        )


def auto_input_delay(rtt_ms: float | None, fps: int) -> int:
    """``clamp(ceil(rtt / 2 / frame_ms), 1, 4)``; 2 when no round trip was measured."""
    if rtt_ms is None:
        return 2
    frame_ms = 1000.0 / fps
    return max(1, min(4, math.ceil(rtt_ms / 2.0 / frame_ms)))


class RollbackEngine:
    """One peer's rollback engine (see the module docstring).

    Args:
        simulation: this peer's copy of the game.
        game_id: every packet names the game; packets of another game are refused.
        seat, partner_seat: this peer's seat and the partner's (env agent names).
        authority: this peer repairs desyncs (sends its state) and is trusted on a mismatch.
        default_input: the input of frames before a seat's first sampled input (and the prediction
            before any partner input arrived).
        input_delay: frames (1 to :data:`MAX_DELAY`) or ``"auto"`` (from the measured round trip at
            each episode's start, see :func:`auto_input_delay`).
        window: the prediction window (1 to :data:`MAX_WINDOW`).
        hash_every: confirmed frames between state hashes compared with the partner.
        silent_notice_ms, lost_after_ms: the disconnect timers.
    """

    def __init__(
        self,
        simulation: Simulation,
        *,
        game_id: str,
        seat: str,
        partner_seat: str,
        authority: bool,
        default_input: Any,
        input_delay: int | str = 2,
        window: int = 8,
        hash_every: int = 10,
        silent_notice_ms: float = 750,
        lost_after_ms: float = 5000,
        max_state_bytes: int = DEFAULT_MAX_STATE_BYTES,
    ) -> None:
        if not is_int(max_state_bytes) or not 1024 <= max_state_bytes <= MAX_STATE_BYTES_LIMIT:
            raise EngineError(
                f"max_state_bytes must be 1024 to {MAX_STATE_BYTES_LIMIT}; got {max_state_bytes!r}."
            )
        if input_delay != "auto" and (not is_int(input_delay) or not 1 <= int(input_delay) <= MAX_DELAY):
            raise EngineError(f"input_delay must be 1 to {MAX_DELAY} or 'auto'; got {input_delay!r}.")
        if not is_int(window) or not 1 <= window <= MAX_WINDOW:
            raise EngineError(f"window must be 1 to {MAX_WINDOW}; got {window!r}.")
        if not is_int(hash_every) or hash_every < 1:
            raise EngineError(f"hash_every must be a whole number of at least 1; got {hash_every!r}.")
        if seat == partner_seat:
            raise EngineError(f"seat and partner_seat are both {seat!r}; a P2P game has two seats.")
        if not 0 < silent_notice_ms <= lost_after_ms:
            raise EngineError(
                f"expected 0 < silent_notice_ms <= lost_after_ms; got {silent_notice_ms} and {lost_after_ms}."
            )
        self.sim = simulation
        self.game_id = str(game_id)
        self.seat = seat
        self.partner_seat = partner_seat
        self.authority = bool(authority)
        self.default_input = default_input
        self.delay_setting: int | str = input_delay
        self.input_delay = 2 if input_delay == "auto" else int(input_delay)
        self.window = window
        self.hash_every = hash_every
        self.silent_notice_ms = float(silent_notice_ms)
        self.lost_after_ms = float(lost_after_ms)
        self.fps = 30
        #: The largest state (as JSON) this peer sends or accepts: a desync repair's, a snapshot's.
        self.max_state_bytes = int(max_state_bytes)
        self.session = os.urandom(6).hex()
        # Transport (lives across episodes).
        self._seq = 0
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self._max_seen = -1
        self.partner_session: str | None = None
        self._retired_sessions: set[str] = set()
        self._rtts: deque[float] = deque(maxlen=RTT_SAMPLES)
        self._ping_to_echo: tuple[float, float] | None = None
        self._last_recv_ms: float | None = None
        self._silent_noticed = False
        self._lost_reported = False
        self._last_send_ms: float | None = None
        self._outbox: list[bytes] = []
        self._events: list[dict[str, Any]] = []
        self._refused_since_event = 0
        self._refused_reasons: dict[str, int] = {}
        self._last_refused_event_ms: float | None = None
        self.stats: dict[str, Any] = {
            "frames": 0,
            "rollbacks": 0,
            "depth_histogram": {},
            "max_depth": 0,
            "resimulated_frames": 0,
            "waits": 0,
            "waits_window": 0,
            "waits_partner": 0,
            "packets_sent": 0,
            "packets_received": 0,
            "packets_refused": 0,
            "refused_reasons": self._refused_reasons,
            "desyncs_detected": 0,
            "desyncs_repaired": 0,
        }
        self.episode = 0
        #: Called after each rollback with its duration (ms, load + resimulation) and depth (frames);
        #: None: rollbacks are not timed (benches set it).
        self.on_rollback: Callable[[float, int], None] | None = None
        self._reset_episode_state()

    # --- episode state ---------------------------------------------------------------------------
    def _reset_episode_state(self) -> None:
        self.max_steps = 0
        self.playing = False
        self.done = False
        self.end_reason: str | None = None
        self.stopped = False
        self.solo = False
        self.frame = 0
        self.confirmed = 0
        self.local_last = 0
        self.remote_last = 0
        self.remote_ack = 0
        self._local: dict[int, Any] = {}
        self._remote: dict[int, Any] = {}
        self._used: dict[int, Any] = {}
        self._first_predicted: dict[int, Any] = {}
        self._resim: dict[int, int] = {}
        self._states: dict[int, Any] = {}
        self._ends: dict[int, str | None] = {}
        self._hashes: dict[int, str] = {}
        self._confirmed_hashes: dict[int, str] = {}
        self._remote_hashes: dict[int, str] = {}
        self._repair_states: dict[int, Any] = {}
        self._hash_ack = 0  # the highest of my hash frames the partner has
        self._remote_hash_seen = 0  # the highest partner hash frame I have (sent as my hash ack)
        self._rollback_from: int | None = None
        self._desyncs_reported: set[int] = set()
        self.repair_frame: int | None = None
        self._repair_asked_ms: float | None = None
        self._answered_ms: float | None = None
        self._repaired_ms: float | None = None
        self._confirmed_out: list[ConfirmedFrame] = []
        self._remote_frame: int | None = None
        self._remote_frame_at: float = 0.0
        self._advantages: deque[float] = deque(maxlen=SYNC_SAMPLES)
        self.period_scale = 1.0

    def start_episode(self, episode: int, *, max_steps: int, fps: int) -> None:
        """Begin ``episode`` (the simulation was just reset: its state is frame 0's)."""
        self._begin(episode, max_steps, fps)
        self._states[0] = self.sim.save()
        self._hashes[0] = self.sim.state_hash()
        for frame in range(1, min(self.input_delay, max_steps) + 1):
            self._local[frame] = self.default_input
        self.local_last = min(self.input_delay, max_steps)
        self._confirmed_hashes[0] = self._hashes[0]

    def _begin(self, episode: Any, max_steps: Any, fps: Any) -> None:
        if not is_int(episode) or episode < 1:
            raise EngineError(f"episode must be a whole number of at least 1; got {episode!r}.")
        if not is_int(max_steps) or max_steps < 1:
            raise EngineError(f"max_steps must be a whole number of at least 1; got {max_steps!r}.")
        if not is_int(fps) or fps < 1:
            raise EngineError(f"fps must be a whole number of at least 1; got {fps!r}.")
        self._reset_episode_state()
        self.episode = int(episode)
        self.max_steps = max_steps
        self.fps = fps
        if self.delay_setting == "auto":
            self.input_delay = auto_input_delay(self.rtt_ms, fps)
        self.playing = True

    @property
    def rtt_ms(self) -> float | None:
        """The median of the last round trips measured (None before the first)."""
        if not self._rtts:
            return None
        ordered = sorted(self._rtts)
        middle = len(ordered) // 2
        if len(ordered) % 2:
            return ordered[middle]
        return (ordered[middle - 1] + ordered[middle]) / 2.0

    # --- ticking ---------------------------------------------------------------------------------
    def tick(self, now_ms: float, local_input: Any) -> dict[str, Any]:
        """One tick at ``now_ms``: apply any rollback, advance a frame if allowed (``local_input``
        is this seat's input sampled now), confirm frames, update time sync and send.

        Returns ``{"advanced": frames simulated forward, "rolled_back": bool, "send": [bytes],
        "events": [dict], "waiting": None | "window" | "partner", "period_scale": float,
        "done": bool}``."""
        events = self._events
        self._events = []
        self._timers(now_ms, events)
        rolled_back = False
        advanced = 0
        waiting: str | None = None
        sent_input = False
        if self.playing:
            if self._rollback_from is not None:
                rolled_back = self._rollback(now_ms)
            if self.repair_frame is not None:
                waiting = "partner"
                if self._repair_asked_ms is None or now_ms - self._repair_asked_ms >= REPAIR_RETRY_MS:
                    self._repair_asked_ms = now_ms
                    self._outbox.append(self._control_packet("r", {"f": self.repair_frame, "c": self.frame}))
            elif self._ends.get(self.frame) is not None:
                waiting = "partner"  # a predicted end: hold until confirmed or rolled back
            elif not self.solo and self.frame - self.remote_last >= self.window:
                waiting = "window"
            elif self.frame < self.max_steps:
                budget = 1
                if not self.solo and self.remote_last - self.frame > MAX_DELAY + 1:
                    budget = CATCH_UP_FRAMES  # far behind the partner (after a reload): catch up
                while budget > 0 and self.frame < self.max_steps and self._ends.get(self.frame) is None:
                    if not self.solo and self.frame - self.remote_last >= self.window:
                        break
                    self._advance(now_ms, local_input)
                    advanced += 1
                    budget -= 1
                sent_input = True
            if waiting is not None:
                self.stats["waits"] += 1
                self.stats["waits_" + waiting] += 1
            self._confirm(now_ms, events)
            self._prune()
            self._time_sync(now_ms)
        send: list[bytes] = []
        if self._outbox:
            send.extend(self._outbox)
            self._outbox = []
        if not self.solo and not self.stopped and self.episode > 0:
            due = self._last_send_ms is None or now_ms - self._last_send_ms >= RESEND_MS
            if sent_input or due or send:
                send.append(self.packet(now_ms))
        self.stats["packets_sent"] += len(send)
        if send:
            self._last_send_ms = now_ms
        return {
            "advanced": advanced,
            "rolled_back": rolled_back,
            "send": send,
            "events": events,
            "waiting": waiting,
            "period_scale": self.period_scale,
            "done": self.done,
        }

    def _prediction(self) -> Any:
        if self.remote_last >= 1:
            return self._remote[self.remote_last]
        return self.default_input

    def _advance(self, now_ms: float, local_input: Any) -> None:
        frame = self.frame + 1
        target = max(frame + self.input_delay, self.local_last + 1)
        if target <= self.max_steps:
            self._local[target] = local_input
            self.local_last = target
        if self.solo and frame > self.remote_last:
            remote = None
        elif frame <= self.remote_last:
            remote = self._remote[frame]
        else:
            remote = self._prediction()
            self._first_predicted.setdefault(frame, remote)
        self._simulate(frame, remote, now_ms)
        self.stats["frames"] += 1

    def _simulate(self, frame: int, remote: Any, now_ms: float | None) -> None:
        self._used[frame] = remote
        inputs = {self.seat: self._local[frame], self.partner_seat: remote}
        end = self.sim.advance(frame, inputs, now_ms)
        self._ends[frame] = end
        self._states[frame] = self.sim.save()
        if frame % self.hash_every == 0 or end is not None:
            self._hashes[frame] = self.sim.state_hash()
        else:
            self._hashes.pop(frame, None)
        self.frame = frame

    def _rollback(self, now_ms: float) -> bool:
        start = self._rollback_from
        self._rollback_from = None
        if start is None or start > self.frame:
            return False
        timed = self.on_rollback
        started = time.perf_counter() if timed is not None else 0.0
        present = self.frame
        self.sim.load(self._states[start - 1])
        self.frame = start - 1
        depth = present - start + 1
        stats = self.stats
        stats["rollbacks"] += 1
        histogram = stats["depth_histogram"]
        histogram[depth] = histogram.get(depth, 0) + 1
        stats["max_depth"] = max(stats["max_depth"], depth)
        stats["resimulated_frames"] += depth
        self._resimulate_to(present)
        if timed is not None:
            timed((time.perf_counter() - started) * 1000.0, depth)
        return True

    def _resimulate_to(self, present: int) -> None:
        for frame in range(self.frame + 1, present + 1):
            if self.solo and frame > self.remote_last:
                remote = None
            elif frame <= self.remote_last:
                remote = self._remote[frame]
            else:
                remote = self._prediction()
            self._resim[frame] = self._resim.get(frame, 0) + 1
            self._simulate(frame, remote, None)
            if self._ends[frame] is not None:
                # The game ends earlier than predicted: the frames after it never happen.
                for later in range(frame + 1, present + 1):
                    for table in (self._states, self._ends, self._hashes, self._used):
                        table.pop(later, None)
                break

    def _confirm(self, now_ms: float, events: list[dict[str, Any]]) -> None:
        while self.confirmed < self.frame and (self.solo or self.confirmed + 1 <= self.remote_last):
            frame = self.confirmed + 1
            self.confirmed = frame
            end = self._ends.get(frame)
            state_hash = self._hashes.get(frame)
            if state_hash is not None:
                self._confirmed_hashes[frame] = state_hash
                if self.authority:
                    self._repair_states[frame] = self._states[frame]
                    while len(self._repair_states) > REPAIR_STATES_KEPT:
                        del self._repair_states[min(self._repair_states)]
                self._compare_hash(frame, now_ms, events)
            self._confirmed_out.append(
                ConfirmedFrame(
                    frame,
                    {self.seat: self._local[frame], self.partner_seat: self._used[frame]},
                    self._first_predicted.get(frame),
                    self._resim.get(frame, 0),
                    end,
                    state_hash,
                )
            )
            if end is not None:
                self.done = True
                self.playing = False
                self.end_reason = end
                break

    def _prune(self) -> None:
        keep_from = self.confirmed
        for table in (self._states, self._ends, self._used, self._first_predicted, self._resim):
            for frame in [f for f in table if f < keep_from]:
                del table[frame]
        for frame in [f for f in self._hashes if f < keep_from]:
            del self._hashes[frame]
        # Inputs stay a while after confirmation: a desync repair resimulates from a past hash frame.
        inputs_from = keep_from - REPAIR_STATES_KEPT * self.hash_every
        for frame in [f for f in self._local if f < min(self.remote_ack, inputs_from)]:
            del self._local[frame]
        for frame in [f for f in self._remote if f < min(self.remote_last, inputs_from)]:
            del self._remote[frame]
        floor = self.confirmed - 4 * self.hash_every * MAX_HASHES_PER_PACKET
        for table2 in (self._confirmed_hashes, self._remote_hashes):
            for frame in [f for f in table2 if f < floor]:
                del table2[frame]

    def _time_sync(self, now_ms: float) -> None:
        if self._remote_frame is None or self.solo:
            self.period_scale = 1.0
            return
        rtt = self.rtt_ms or 0.0
        elapsed = max(0.0, now_ms - self._remote_frame_at) + rtt / 2.0
        estimate = min(self._remote_frame + elapsed * self.fps / 1000.0, float(self.max_steps))
        self._advantages.append(self.frame - estimate)
        average = sum(self._advantages) / len(self._advantages)
        if average >= 1.0:
            # Give back half the advantage; a larger advantage is given back faster (≤ 10 %).
            self.period_scale = 1.0 + min(MAX_STRETCH, (average / 2.0) * MAX_STRETCH / 2.0)
        else:
            self.period_scale = 1.0

    @property
    def advantage(self) -> float | None:
        """This peer's averaged frame advantage over the partner (None before the partner spoke)."""
        if not self._advantages:
            return None
        return sum(self._advantages) / len(self._advantages)

    def _timers(self, now_ms: float, events: list[dict[str, Any]]) -> None:
        if self.episode == 0 or self.solo or self.stopped:
            return
        if self._last_recv_ms is None:
            self._last_recv_ms = now_ms  # the timers start at the first tick
            return
        silent = now_ms - self._last_recv_ms
        if silent >= self.silent_notice_ms and not self._silent_noticed:
            self._silent_noticed = True
            events.append(self._event("partner_silent", {"silent_ms": round(silent)}))
        if silent >= self.lost_after_ms and not self._lost_reported:
            self._lost_reported = True
            events.append(self._event("partner_lost", {"silent_ms": round(silent)}))

    def _event(self, kind: str, detail: dict[str, Any], frame: int | None = None) -> dict[str, Any]:
        return {
            "kind": kind,
            "episode": self.episode,
            "frame": self.frame if frame is None else frame,
            "detail": detail,
        }

    # --- confirmed frames and hashes ----------------------------------------------------------
    def confirmed_hash(self, frame: int) -> str | None:
        """This peer's state hash of confirmed ``frame`` (frame 0: after the reset); None when that
        frame has no hash (not a hash frame, not confirmed yet, or pruned)."""
        return self._confirmed_hashes.get(frame)

    def take_confirmed(self) -> list[ConfirmedFrame]:
        """The frames confirmed since the last call, in order."""
        out = self._confirmed_out
        self._confirmed_out = []
        return out

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


from igym_pyodide_p2p.browser.rollback_sync import sync_test  # noqa: E402  (re-exported: its old home)
