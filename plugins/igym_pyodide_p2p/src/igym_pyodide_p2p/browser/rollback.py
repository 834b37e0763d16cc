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

The engine is one class in parts, one module each: this module holds its state, the tick, the
simulation, rollbacks, confirmed frames and pruning; :mod:`.rollback_wire` its packets and the
partner's inputs; :mod:`.rollback_clock` round trips, time sync and disconnect timers;
:mod:`.rollback_recovery` desyncs, a partner who left and reloads; :mod:`.rollback_frames` the
:class:`Simulation` it drives and the :class:`ConfirmedFrame` it reports; :mod:`.rollback_packets`
the packets' limits and encoding; :mod:`.rollback_sync` GGPO's SyncTest (:func:`sync_test`).

Pure Python, standard library only: it runs unchanged under Pyodide and CPython.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from igym_pyodide_p2p.browser.rollback_clock import EngineClock
from igym_pyodide_p2p.browser.rollback_frames import ConfirmedFrame, Simulation, auto_input_delay
from igym_pyodide_p2p.browser.rollback_packets import (
    CATCH_UP_FRAMES,
    DEFAULT_MAX_STATE_BYTES,
    MAX_DELAY,
    MAX_HASHES_PER_PACKET,
    MAX_PACKET_BYTES,
    MAX_STATE_BYTES_LIMIT,
    MAX_STRETCH,
    MAX_WINDOW,
    PROTOCOL_VERSION,
    REPAIR_RETRY_MS,
    REPAIR_STATES_KEPT,
    RESEND_MS,
    RTT_SAMPLES,
    SYNC_SAMPLES,
    EngineError,
    is_int,
)
from igym_pyodide_p2p.browser.rollback_recovery import EngineRecovery
from igym_pyodide_p2p.browser.rollback_sync import sync_test
from igym_pyodide_p2p.browser.rollback_wire import EngineWire

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


class RollbackEngine(EngineWire, EngineClock, EngineRecovery):
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
