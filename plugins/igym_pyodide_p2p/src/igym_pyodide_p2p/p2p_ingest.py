"""Both pages' records of a peer-to-peer game: one canonical copy of each frame, the other compared.

Each page of a ``pyodide_p2p`` game streams the frames it confirmed in the pyodide runtime's
``step_batch`` messages; each step may carry ``p2p: {rollbacks, predicted}``. Per page a
:class:`PageLedger` (the pyodide runtime's :class:`~igym_pyodide_p2p.ingest.GameLedger`) checks the
order, de-duplicates re-sends and validates each step. Then :class:`FrameBook` decides, per frame,
what is written: the first page's copy of a frame is the canonical one (``steps``, its state hash
``state_hashes``); the other page's copy, when it comes, is compared field by field (actions,
rewards, terminated, truncated, and the state hash where both sent one) and every difference
becomes a ``p2p_disagreements`` row. A frame one page reported and the other did not within
:data:`PENDING_MAX_AGE_S` (or by the episode's end) is recorded ``unconfirmed``.

Pure logic: no sockets, no clock of its own, no records (the game writes what this returns).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from igym_pyodide_p2p.ingest import (
    _BOT_SOURCES,
    _HUMAN_SOURCES,
    BatchProblem,
    GameLedger,
    StepBatch,
    StepData,
)

__all__ = [
    "MAX_DISAGREEMENTS_PER_EPISODE",
    "MAX_PENDING_FRAMES",
    "PENDING_MAX_AGE_S",
    "Disagreement",
    "FrameBook",
    "FrameInfo",
    "PageLedger",
    "split_p2p",
]

#: A frame one page reported waits this long for the other page's copy, then it is ``unconfirmed``.
PENDING_MAX_AGE_S = 60.0
#: Frames waiting for the other page's copy, at most (the oldest are ``unconfirmed`` past it).
MAX_PENDING_FRAMES = 20_000
#: Disagreement rows per episode; past it, one summary row (``field="more"``) with the count.
MAX_DISAGREEMENTS_PER_EPISODE = 100
_MAX_ROLLBACKS = 1_000_000
COMPARED = ("action", "reward", "terminated", "truncated")


@attrs.frozen
class FrameInfo:
    """A step's ``p2p`` part: how often the page re-simulated it, what it predicted for the partner."""

    rollbacks: int | None
    predicted: Any


def split_p2p(
    data: Mapping[str, Any], partner_action_ok: Callable[[Any], bool] | None
) -> tuple[Mapping[str, Any], list[FrameInfo]]:
    """The batch without its steps' ``p2p`` parts (what the pyodide runtime's checks read) and those
    parts, one per step (``FrameInfo(None, None)`` where a step has none). Raises
    :class:`BatchProblem` for a ``p2p`` part that is not ``{rollbacks: int >= 0, predicted: action | null}``
    (``predicted`` must be in the partner seat's action space)."""
    steps = data.get("steps") if isinstance(data, Mapping) else None
    if not isinstance(steps, list):
        return data, []
    infos: list[FrameInfo] = []
    stripped: list[Any] = []
    changed = False
    for index, step in enumerate(steps):
        if not isinstance(step, dict) or "p2p" not in step:
            stripped.append(step)
            infos.append(FrameInfo(None, None))
            continue
        changed = True
        part = step["p2p"]
        where = f"step at place {index + 1}: 'p2p'"
        if not isinstance(part, dict) or not part.keys() <= {"rollbacks", "predicted"}:
            raise BatchProblem("malformed", f"{where} must be a map {{rollbacks, predicted}}")
        rollbacks = part.get("rollbacks", 0)
        if (
            isinstance(rollbacks, bool)
            or not isinstance(rollbacks, int)
            or not 0 <= rollbacks <= _MAX_ROLLBACKS
        ):
            raise BatchProblem(
                "bad_value", f"{where}.rollbacks must be a whole number from 0, got {rollbacks!r:.40}"
            )
        predicted = part.get("predicted")
        if predicted is not None and partner_action_ok is not None and not partner_action_ok(predicted):
            raise BatchProblem(
                "bad_action", f"{where}.predicted {predicted!r:.40} is not in the partner's action space"
            )
        infos.append(FrameInfo(rollbacks, predicted))
        stripped.append({k: v for k, v in step.items() if k != "p2p"})
    if not changed:
        return data, infos
    return {**data, "steps": stripped}, infos


class PageLedger(GameLedger):
    """The pyodide runtime's ledger for one page of a P2P game, with two additions: the partner's
    seat may be played by a bot in this page once the partner left (:meth:`allow_bot`), and a
    page that resumed from its partner's state may skip the frames it did not play
    (:meth:`resume_at_next_batch`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._resuming = False

    def allow_bot(self, agent: str) -> None:
        """``agent`` (a human seat) may now report a bot's actions (its player left)."""
        self._allowed_sources[agent] = _HUMAN_SOURCES | _BOT_SOURCES

    def resume_at_next_batch(self) -> None:
        """The page reloaded and resumes from its partner's state: its next batch of the open
        episode may start later than the step after the last one it stored."""
        self._resuming = True

    def accept(self, batch: StepBatch, now: float) -> Any:
        if (
            self._resuming
            and batch.batch == self.next_batch
            and batch.episode == self.episode
            and self.episode_open
            and batch.first_step > self.last_step + 1
        ):
            self.last_step = batch.first_step - 1
        accepted = super().accept(batch, now)
        if not accepted.duplicate:
            self._resuming = False
        return accepted


@attrs.frozen
class Disagreement:
    """The two pages' records of ``step`` differ in ``field`` of ``agent`` (seat → value)."""

    episode: int
    step: int | None
    field: str
    agent: str | None
    values: dict[str, Any]


@attrs.define
class _Pending:
    seat: str
    since: float
    values: dict[str, dict[str, Any]] | None = None
    """field → agent → value (steps); None for a state hash entry."""
    state_hash: str | None = None


class FrameBook:
    """Which frames of a game are stored, and the copies still waiting for the other page's.

    ``arrive`` gets each page's accepted steps and state hashes; it returns what to write (steps
    and hashes that arrived first) and the disagreements found. Memory: one entry per frame that
    waits for the other page's copy, at most :data:`MAX_PENDING_FRAMES`, each at most
    :data:`PENDING_MAX_AGE_S` old (:meth:`expire`).
    """

    def __init__(self, seats: Sequence[str]) -> None:
        self.seats = tuple(seats)
        #: (episode, step, kind) → the first copy, while the other page's has not come.
        self._pending: dict[tuple[int, int, str], _Pending] = {}
        #: (episode, step, kind) of frames both pages reported or that are settled (per episode).
        self._settled: dict[int, set[tuple[int, str]]] = {}
        #: Seats whose page no longer reports (left): their copies are not waited for.
        self.gone: set[str] = set()
        self.disagreements: dict[int, int] = {}
        self.counts = {"frames": 0, "compared": 0, "disagreements": 0, "unconfirmed": 0}

    def arrive(
        self,
        seat: str,
        episode: int,
        steps: Sequence[StepData],
        hashes: Sequence[tuple[int, str]],
        now: float,
    ) -> tuple[list[StepData], list[tuple[int, str]], list[Disagreement]]:
        pending = self._pending
        settled = self._settled.setdefault(episode, set())
        waiting = bool(set(self.seats) - self.gone - {seat})
        first_steps: list[StepData] = []
        first_hashes: list[tuple[int, str]] = []
        found: list[Disagreement] = []
        for step in steps:
            key = (episode, step.step, "step")
            if (step.step, "step") in settled:
                continue  # already compared (or settled without the partner)
            other = pending.pop(key, None)
            values = _values(step)
            if other is None:
                first_steps.append(step)
                self.counts["frames"] += 1
                if waiting:
                    pending[key] = _Pending(seat=seat, since=now, values=values)
                else:
                    settled.add((step.step, "step"))
                continue
            settled.add((step.step, "step"))
            self.counts["compared"] += 1
            assert other.values is not None
            for name in COMPARED:
                mine, theirs = values[name], other.values[name]
                if mine == theirs:
                    continue
                for agent in sorted(set(mine) | set(theirs)):
                    if mine.get(agent) != theirs.get(agent):
                        found.append(
                            Disagreement(
                                episode,
                                step.step,
                                name,
                                agent,
                                {other.seat: theirs.get(agent), seat: mine.get(agent)},
                            )
                        )
        for step_number, state_hash in hashes:
            key = (episode, step_number, "hash")
            if (step_number, "hash") in settled:
                continue
            other = pending.pop(key, None)
            if other is None:
                first_hashes.append((step_number, state_hash))
                if waiting:
                    pending[key] = _Pending(seat=seat, since=now, state_hash=state_hash)
                else:
                    settled.add((step_number, "hash"))
                continue
            settled.add((step_number, "hash"))
            if other.state_hash != state_hash:
                found.append(
                    Disagreement(
                        episode,
                        step_number,
                        "state_hash",
                        None,
                        {other.seat: other.state_hash, seat: state_hash},
                    )
                )
        self.counts["disagreements"] += len(found)
        return first_steps, first_hashes, found

    def expire(self, now: float, *, episode: int | None = None) -> list[Disagreement]:
        """Copies that waited :data:`PENDING_MAX_AGE_S` (or all of ``episode``, which is over, or
        the oldest past :data:`MAX_PENDING_FRAMES`): recorded ``unconfirmed`` and forgotten."""
        pending = self._pending
        out: list[Disagreement] = []
        over = len(pending) - MAX_PENDING_FRAMES
        for key in list(pending):
            entry = pending[key]
            if over > 0 or now - entry.since >= PENDING_MAX_AGE_S or key[0] == episode:
                over -= 1
                del pending[key]
                self._settled.setdefault(key[0], set()).add((key[1], key[2]))
                missing = [s for s in self.seats if s != entry.seat]
                out.append(
                    Disagreement(
                        key[0],
                        key[1],
                        "unconfirmed",
                        None,
                        {entry.seat: "state_hash" if key[2] == "hash" else "step", **dict.fromkeys(missing)},
                    )
                )
        if episode is not None:
            self._settled.pop(episode, None)
        self.counts["unconfirmed"] += len(out)
        return out

    def partner_gone(self, seat: str) -> None:
        """``seat``'s page will report no more: stop waiting for its copies from now on."""
        self.gone.add(seat)

    def pending_count(self) -> int:
        return len(self._pending)


def _values(step: StepData) -> dict[str, dict[str, Any]]:
    actions = step.actions
    return {
        "action": dict(actions),
        "reward": {a: step.rewards.get(a, 0.0) for a in actions},
        "terminated": {a: step.terminated.get(a, False) for a in actions},
        "truncated": {a: step.truncated.get(a, False) for a in actions},
    }
