"""The ``pyodide`` game's ingest side: the page's ``step_batch`` messages checked (``ingest.py``), stored
through core's record builders, acknowledged, or refused and recorded as rejected.

:class:`BatchIntake` is a part of :class:`igym_pyodide_p2p.game.PyodideGame` (its other parts: the
episode machine in ``game.py``, the load and presence rules in ``game_loading.py``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec
import structlog

from igym_core.errors import ProtocolError
from igym_core.runtime import records
from igym_pyodide_p2p.ingest import (
    Accepted,
    BatchProblem,
    GameLedger,
    StepBatch,
    decode_step_batch,
    step_batch_of_frame,
    step_rows,
)
from igym_pyodide_p2p.messages import BatchAck, StepBatchMessage

if TYPE_CHECKING:
    from igym_core.runtime.connection import Link
    from igym_core.runtime.interface import GameHost, GameInfo
    from igym_pyodide_p2p.options import PyodideOptions
    from igym_pyodide_p2p.runtime import PyodideRuntime

__all__ = ["BATCH_REFUSED", "REJECTED_BATCHES", "BatchIntake", "batch_field"]

log = structlog.get_logger("igym_pyodide_p2p.runtime")

_pack = msgspec.msgpack.Encoder().encode

#: Record types this runtime writes besides core's ``steps``, ``episodes`` and ``games``.
REJECTED_BATCHES = records.REJECTED_BATCHES
#: The ``end_reason`` of an episode whose stream a refused batch broke (see ``_after_refusal``).
BATCH_REFUSED = "batch_refused"


class BatchIntake:
    """The step records of one browser-run game: stored, acknowledged (``ack_interval_ms``), or
    refused; a refusal that broke the episode's stream ends the episode."""

    runtime: PyodideRuntime
    host: GameHost
    info: GameInfo
    options: PyodideOptions
    ledger: GameLedger
    players: dict[str, str]
    returns: dict[str, float]
    plays: int
    ended: bool
    last_progress: float
    ints_for_actions: bool
    refused: dict[str, int]
    ticks: int
    links: dict[str, Link]
    _ids: dict[str, Any]
    _acked_at: float
    _ack_to: str | None
    _ack_interval_s: float

    # --- step records ------------------------------------------------------------------------
    def _ingest(self, participant_id: str, message: StepBatchMessage) -> None:
        now = time.monotonic()
        ledger = self.ledger
        accepted = None
        wire = message.batch
        if wire is not None:  # decoded from the frame in one pass (``StepBatchMessage.wire``)
            try:
                batch = step_batch_of_frame(wire, message.frame or b"", self.options)
                accepted = ledger.accept(batch, now)
            except BatchProblem:
                accepted = None  # refused: decided (and named) again below, as for any other batch
        if accepted is None:
            data = message.data
            try:
                batch = decode_step_batch(data, self.options)
                accepted = ledger.accept(batch, now)
            except BatchProblem as problem:
                self._refuse(participant_id, data, problem)
        self._store(participant_id, batch, accepted, now)

    def _refuse(self, participant_id: str, data: Mapping[str, Any], problem: BatchProblem) -> NoReturn:
        """Record ``data`` as a rejected batch and answer it with ``bad_batch``."""
        self.runtime.counters["batches_rejected"] += 1
        self._rejected(participant_id, data, problem)
        self._after_refusal(data)
        raise ProtocolError("bad_batch", f"batch {batch_field(data, 'batch')} refused: {problem.message}")

    def _store(self, participant_id: str, batch: StepBatch, accepted: Accepted, now: float) -> None:
        """Write the steps of an accepted batch, and acknowledge it (now or with the next one)."""
        counters = self.runtime.counters
        if accepted.duplicate:
            counters["batches_resent"] += 1
            self.last_progress = now
        else:
            counters["batches_stored"] += 1
            self.last_progress = now
            counters["steps_stored"] += len(accepted.steps)
            self.ticks += len(accepted.steps)
            self.links[participant_id].steps_received += len(accepted.steps)
            t_server_ms = round(time.time() * 1000, 1)
            record = self.host.record
            returns = self.returns
            # Whether every value of the rows is one that JSON encoders write alike (see
            # ``GameHost.record_many``): ids, names and keys are strings, actions ints of a Discrete
            # space, flags bools; rewards and the page's times are checked here, and infos must be empty.
            json_plain = self.ints_for_actions
            for step in accepted.steps:
                for agent, reward in step.rewards.items():
                    returns[agent] = returns.get(agent, 0.0) + reward
                    if json_plain and not (reward == 0.0 or 1e-4 <= reward < 1e16 or -1e16 < reward <= -1e-4):
                        json_plain = False
                if json_plain:
                    infos = step.infos
                    if (infos and any(infos.values())) or not 1e-4 <= step.t_ms < 1e16:
                        json_plain = False
            # The batch's rows in one call: the recorder and the sink take them together.
            self.host.record_many(
                records.STEPS,
                step_rows(
                    self._ids, batch.episode, accepted.steps, players=self.players, t_server_ms=t_server_ms
                ),
                json_plain=json_plain,
            )
            for step_number, state_hash in accepted.hashes:
                record(
                    records.STATE_HASHES,
                    records.state_hash_row(
                        self._ids, episode=batch.episode, step=step_number, state_hash=state_hash
                    ),
                )
        if accepted.duplicate or accepted.episode_over or now - self._acked_at >= self._ack_interval_s:
            self._send_ack(participant_id, now)
        else:  # acknowledged with the next one (``ack_interval_ms``)
            self._ack_to = participant_id
            self.runtime.acks_due.add(self)

    def send_due_ack(self, now: float) -> bool:
        """Send the held-back acknowledgement if its time has come; whether none is left held back."""
        participant_id = self._ack_to
        if participant_id is None or self.ended:
            self._ack_to = None
            return True
        if now - self._acked_at < self._ack_interval_s:
            return False
        self._send_ack(participant_id, now)
        return True

    def _send_ack(self, participant_id: str, now: float) -> None:
        """``batch_ack`` of every batch stored so far (the numbers below the one the server expects)."""
        self._acked_at = now
        self._ack_to = None
        self.runtime.acks_due.discard(self)
        ack = BatchAck(game_id=self.info.game_id, batch=self.ledger.next_batch - 1).wire()
        sink = self.host.frame_sink(participant_id)
        if sink is not None and sink.offer(_pack(ack)):
            return
        self.runtime.spawn(self.host.send(participant_id, ack))  # the socket is busy: queue it

    def _after_refusal(self, data: Mapping[str, Any]) -> None:
        """A refused batch of the episode being played that used up a number the server still
        expects (or one after it) breaks the episode's stream: the page numbers on past it, so every
        later batch of the episode would be refused as out of order. The episode ends here
        (``batch_refused``) and the next one is issued with the number the server expects
        (``next_batch``), from which the page numbers on. A refusal of an earlier number (a replay)
        or of another episode (a batch of an episode already over) changes nothing."""
        number = batch_field(data, "batch")
        ledger = self.ledger
        if (
            number is None
            or number < ledger.next_batch
            or not ledger.episode_open
            or batch_field(data, "episode") != self.plays
        ):
            return
        self._end_episode(BATCH_REFUSED)

    def _rejected(self, participant_id: str, data: Mapping[str, Any], problem: BatchProblem) -> None:
        steps = data.get("steps") if isinstance(data, Mapping) else None
        self.host.record(
            REJECTED_BATCHES,
            records.rejected_batch_row(
                self._ids,
                participant_id=participant_id,
                batch=batch_field(data, "batch"),
                episode=batch_field(data, "episode"),
                first_step=batch_field(data, "first_step"),
                steps=len(steps) if isinstance(steps, list) else None,
                rule=problem.kind,
                problem=problem.message,
                expected_batch=self.ledger.next_batch,
                t_server_ms=round(time.time() * 1000, 1),
            ),
        )
        refused = self.refused
        refused[problem.kind] = refused.get(problem.kind, 0) + 1
        log.warning(
            "batch_rejected",
            game_id=self.info.game_id,
            participant_id=participant_id,
            batch=batch_field(data, "batch"),
            episode=batch_field(data, "episode"),
            rule=problem.kind,
            problem=problem.message[:200],
            rejected_in_game=dict(refused),
        )


def batch_field(data: Any, key: str) -> Any:
    """A field of a (maybe malformed) batch, for the rejection record: a number or None."""
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
