"""Step records from a participant's browser: decoded, checked, de-duplicated, turned into rows.

The page steps the env and sends what happened in numbered ``step_batch`` messages (Contract 4 of
the issue, ``docs/`` of this plugin)::

    {type: "step_batch", game_id, batch, episode, first_step,
     steps: [{step, t_ms, actions, sources, keys, rewards, terminated, truncated, infos}, ...],
     hashes: [[step, state_hash], ...]}

This module is pure logic (no sockets, no clock of its own, no records): :func:`decode_step_batch`
checks a batch's shape and sizes, :class:`GameLedger` decides, for one game, whether a batch is
stored, acknowledged again (an identical re-send after a reconnect) or refused, and
:func:`step_rows` turns its steps into the rows core's record builder would make. What it refuses
raises :class:`BatchProblem`, whose ``kind`` names the rule:

``malformed``      not the shape above (a wrong type, a missing field, a bad key name, ...)
``oversized``      more steps, agents, hash entries, bytes or info than the options allow
``replayed``       a batch number or steps already stored, with other content
``out_of_order``   not the next batch number, or steps that do not follow the last stored one
``wrong_episode``  an episode the server did not issue (or one already over)
``future_step``    more steps than the episode's time at the scene's fps allows (plus a tolerance)
``bad_action``     an action outside the seat's action space, or an agent the env does not have
``bad_value``      a reward that is not a finite number, a step after the episode's end, ...

A refused batch writes nothing and does not use up its number: the next batch the server accepts
is still the one it expected (the runtime ends an episode whose stream a refusal broke and issues the
next one from that number, ``runtime.py``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

import attrs
import msgspec

from igym_core.runtime.records import NOT_RECORDED, step_row
from igym_pyodide_p2p.options import PyodideOptions

__all__ = [
    "ACTION_SOURCES",
    "Accepted",
    "BatchProblem",
    "BatchWire",
    "GameLedger",
    "StepBatch",
    "StepData",
    "decode_step_batch",
    "step_batch_of_frame",
    "step_rows",
]

#: What produced an agent's action (the ``action_source`` column), as the server runtime names them.
ACTION_SOURCES = ("human", "default", "absent", "bot", "bot_repeat")
_HUMAN_SOURCES = frozenset({"human", "default", "absent"})
_BOT_SOURCES = frozenset({"bot", "bot_repeat", "default"})
_MAX_KEYS = 16
_MAX_KEY_LENGTH = 32
_MAX_AGENT_NAME = 64
_MAX_HASH_LENGTH = 128
_MAX_GAME_ID = 64
_BIG = 2**53

_Key = Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_KEY_LENGTH)]
_Agent = Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_AGENT_NAME)]
_Count = Annotated[int, msgspec.Meta(ge=0, le=_BIG)]
_Source = Literal["human", "default", "absent", "bot", "bot_repeat"]


class StepData(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One env step as the page reports it (every map keyed by agent name)."""

    step: _Count
    t_ms: float
    """When the page made the step (epoch ms, the participant's clock)."""
    actions: dict[_Agent, Any]
    sources: dict[_Agent, _Source]
    keys: dict[_Agent, Annotated[list[_Key], msgspec.Meta(max_length=_MAX_KEYS)]]
    rewards: dict[_Agent, float]
    terminated: dict[_Agent, bool]
    truncated: dict[_Agent, bool]
    infos: dict[_Agent, dict[str, Any] | None] | None = None
    observations: dict[_Agent, Any] | None = None
    """The observation each agent acted on (only in scenes that record observations)."""


class BatchWire(msgspec.Struct, tag_field="type", tag="step_batch", forbid_unknown_fields=True, frozen=True):
    """A ``step_batch`` message's shape and sizes (``StepBatchMessage.wire``: frames are decoded
    straight into it)."""

    game_id: Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_GAME_ID)]
    batch: Annotated[int, msgspec.Meta(ge=1, le=_BIG)]
    episode: Annotated[int, msgspec.Meta(ge=1, le=_BIG)]
    first_step: Annotated[int, msgspec.Meta(ge=1, le=_BIG)]
    steps: list[StepData]
    hashes: list[tuple[_Count, Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_HASH_LENGTH)]]] = []


@attrs.frozen
class StepBatch:
    """A ``step_batch`` whose shape and sizes are right (what it claims is checked by the ledger)."""

    game_id: str
    batch: int
    episode: int
    first_step: int
    steps: tuple[StepData, ...]
    hashes: tuple[tuple[int, str], ...]
    digest: bytes
    """A hash of the whole message: an identical re-send has the same digest."""
    size: int
    """The message's size in msgpack bytes."""


class BatchProblem(Exception):
    """A batch the server refuses: ``kind`` names the rule (see the module docstring)."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(message)


#: Action types ``step_row`` writes as they are (a decoded batch's rewards are floats, its flags bools).
_PLAIN = frozenset({int, float, str, bool, type(None)})
_ENCODE = msgspec.msgpack.Encoder().encode
_JSON = msgspec.json.Encoder().encode
_LIMITS_OF_HASHES = 4  # hash entries a batch may carry beyond one per step (none are needed)
#: Stored batches whose digests a game keeps (about two minutes at two batches a second, longer
#: than a page can be away before its game is abandoned).
KEPT_DIGESTS = 256


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a page's values go into error messages)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def decode_step_batch(data: Mapping[str, Any], options: PyodideOptions) -> StepBatch:
    """Check a decoded ``step_batch`` message's shape and sizes; raise :class:`BatchProblem`."""
    if not isinstance(data, Mapping):
        raise BatchProblem("malformed", "a step_batch must be a map")
    raw = data.get("steps")
    if isinstance(raw, list) and len(raw) > options.max_batch_steps:
        raise BatchProblem(
            "oversized",
            f"the batch has {len(raw)} steps; at most {options.max_batch_steps} are accepted in one batch",
        )
    try:
        encoded = _ENCODE(data)
    except Exception as exc:  # a value msgpack cannot hold (never from a decoded frame)
        raise BatchProblem("malformed", f"the batch cannot be encoded ({type(exc).__name__})") from None
    if len(encoded) > options.max_batch_bytes:
        raise BatchProblem(
            "oversized",
            f"the batch takes {len(encoded)} bytes; at most {options.max_batch_bytes} are accepted",
        )
    try:
        wire = msgspec.convert(data, BatchWire)
    except msgspec.ValidationError as exc:
        raise BatchProblem("malformed", f"the batch is not a valid step_batch: {exc}") from None
    except Exception as exc:  # nesting too deep, ...
        raise BatchProblem(
            "malformed", f"the batch is not a valid step_batch ({type(exc).__name__})"
        ) from None
    return _checked(wire, encoded)


def step_batch_of_frame(wire: BatchWire, frame: bytes, options: PyodideOptions) -> StepBatch:
    """:func:`decode_step_batch` of a frame the server decoded straight into a :class:`BatchWire`
    (``StepBatchMessage.from_wire``): its size and digest are the frame's own bytes (the page
    re-sends a batch as the same bytes). Raises :class:`BatchProblem` where ``decode_step_batch``
    would (the caller then lets ``decode_step_batch`` decide, so that the refusal is named the same)."""
    if len(wire.steps) > options.max_batch_steps or len(frame) > options.max_batch_bytes:
        raise BatchProblem("oversized", "over the batch limits")
    return _checked(wire, frame)


def _checked(wire: BatchWire, encoded: bytes) -> StepBatch:
    if len(wire.hashes) > len(wire.steps) + _LIMITS_OF_HASHES:
        raise BatchProblem(
            "oversized", f"the batch has {len(wire.hashes)} state hashes for {len(wire.steps)} steps"
        )
    return StepBatch(
        game_id=wire.game_id,
        batch=wire.batch,
        episode=wire.episode,
        first_step=wire.first_step,
        steps=tuple(wire.steps),
        hashes=tuple((int(s), h) for s, h in wire.hashes),
        digest=hashlib.blake2b(encoded, digest_size=16).digest(),
        size=len(encoded),
    )


@attrs.frozen
class Accepted:
    """What :meth:`GameLedger.accept` decided for a batch it did not refuse."""

    duplicate: bool
    """An identical re-send of a stored batch: acknowledge it again, write nothing."""
    steps: tuple[StepData, ...] = ()
    """The steps to write (none for a duplicate)."""
    hashes: tuple[tuple[int, str], ...] = ()
    """The state hashes to write (step, hash)."""
    episode_over: bool = False
    """The last of these steps ended the episode (every agent done, or ``max_steps``)."""


class GameLedger:
    """What the server has stored of one browser-run game, and the rules for what comes next.

    ``actions_ok``: agent name → a test for actions in that agent's action space; ``humans``: the
    agents people play (only they may report keys). ``open_episode`` is called when the server issues
    an episode (with the time it did, on the caller's clock); ``accept`` gets every batch with the
    time it arrived.
    """

    def __init__(
        self,
        *,
        actions_ok: Mapping[str, Callable[[Any], bool]],
        humans: Sequence[str],
        fps: int,
        max_steps: int | None,
        options: PyodideOptions,
    ) -> None:
        self.actions_ok = dict(actions_ok)
        self.humans = frozenset(humans)
        #: Agent → the action sources its seat may report (a person's, or a bot's).
        self._allowed_sources = {
            agent: _HUMAN_SOURCES if agent in self.humans else _BOT_SOURCES for agent in self.actions_ok
        }
        self.fps = fps
        self.max_steps = max_steps
        self.options = options
        #: The number the next new batch must have.
        self.next_batch = 1
        #: Digests of the last ``KEPT_DIGESTS`` stored batches, by number (a re-send is compared
        #: with them; a page re-sends only what the server had not acknowledged).
        self.digests: dict[int, bytes] = {}
        #: The episode the server issued last, and whether it may still receive steps.
        self.episode: int | None = None
        self.episode_open = False
        self.episode_started = 0.0
        #: The number of the last step stored in the episode (0 before its first).
        self.last_step = 0
        #: The episode's end came in its steps (every agent done, or max_steps).
        self.episode_over = False

    def open_episode(self, episode: int, now: float) -> None:
        """The server issued ``episode`` at ``now``: its batches are accepted from here on."""
        self.episode = episode
        self.episode_open = True
        self.episode_started = now
        self.last_step = 0
        self.episode_over = False

    def close_episode(self) -> None:
        """The episode is over (``episode_done``, interrupted, or the game ended): no more steps."""
        self.episode_open = False

    def accept(self, batch: StepBatch, now: float) -> Accepted:
        """Decide about ``batch`` (arrived at ``now``); raise :class:`BatchProblem` to refuse it."""
        number = batch.batch
        if number < self.next_batch:
            digest = self.digests.get(number)
            if digest == batch.digest:
                return Accepted(duplicate=True)
            if digest is None:
                raise BatchProblem(
                    "replayed",
                    f"batch {number} was stored long ago (the server expects batch {self.next_batch})",
                )
            raise BatchProblem(
                "replayed",
                f"batch {number} was already stored with other content; send batch {self.next_batch}",
            )
        if number > self.next_batch:
            raise BatchProblem("out_of_order", f"batch {number} came before batch {self.next_batch}")
        if batch.episode != self.episode or not self.episode_open:
            if self.episode is None:
                raise BatchProblem("wrong_episode", f"episode {batch.episode} was not issued; no episode is")
            state = "is being played" if self.episode_open else "was the last (it is over)"
            raise BatchProblem(
                "wrong_episode",
                f"episode {batch.episode} is not being played; episode {self.episode} {state}",
            )
        expected = self.last_step + 1
        if batch.first_step != expected:
            kind = "replayed" if batch.first_step < expected else "out_of_order"
            raise BatchProblem(
                kind,
                f"the batch starts at step {batch.first_step}; step {expected} of episode "
                f"{batch.episode} is the next one",
            )
        steps = batch.steps
        if steps:
            self._check_steps(batch, expected, now)
        last = expected + len(steps) - 1
        for step, _hash in batch.hashes:
            if not 0 <= step <= last:
                raise BatchProblem(
                    "bad_value", f"a state hash is for step {step}; the episode has steps 0 to {last} so far"
                )
        over = False
        if steps:
            final = steps[-1]
            over = _all_done(final) or (self.max_steps is not None and final.step >= self.max_steps)
        self.next_batch = number + 1
        digests = self.digests
        digests[number] = batch.digest
        if len(digests) > KEPT_DIGESTS:  # memory per game stays bounded however long it runs
            del digests[number - KEPT_DIGESTS]
        self.last_step = last
        if over:
            self.episode_over = True
        return Accepted(duplicate=False, steps=steps, hashes=batch.hashes, episode_over=over)

    def _check_steps(self, batch: StepBatch, first: int, now: float) -> None:
        steps = batch.steps
        last = first + len(steps) - 1
        if self.episode_over:
            raise BatchProblem("bad_value", f"episode {batch.episode} already ended at step {self.last_step}")
        if self.max_steps is not None and last > self.max_steps:
            raise BatchProblem(
                "bad_value", f"the batch goes to step {last}; the scene's max_steps is {self.max_steps}"
            )
        elapsed = max(0.0, now - self.episode_started)
        allowed = math.floor((elapsed + self.options.future_tolerance_s) * self.fps) + 1
        if last > allowed:
            raise BatchProblem(
                "future_step",
                f"the batch reaches step {last} {elapsed:.1f} s into episode {batch.episode}; at "
                f"{self.fps} fps at most step {allowed} can have been played by now",
            )
        # The hot path of the pyodide runtime: every step of every browser-run game passes here.
        actions_ok = self.actions_ok
        allowed = self._allowed_sources
        humans = self.humans
        info_limit = self.options.max_info_bytes
        isfinite = math.isfinite
        final = len(steps) - 1
        for index, step in enumerate(steps):
            number = step.step
            if number != first + index:
                raise BatchProblem(
                    "out_of_order",
                    f"step {number} is at place {index + 1}; step {first + index} belongs there",
                )
            actions = step.actions
            agents = actions.keys()
            if not agents or not agents <= allowed.keys():
                unknown = sorted(set(agents) - set(allowed))
                raise BatchProblem(
                    "bad_action",
                    f"step {number} has no actions"
                    if not agents
                    else f"step {number}: {unknown[0]!r} is not an agent of the env ({sorted(allowed)})",
                )
            for agent, action in actions.items():
                if not actions_ok[agent](action):
                    raise BatchProblem(
                        "bad_action",
                        f"step {number}: action {_short(action)} of {agent!r} is not in its action space",
                    )
            sources = step.sources
            if sources.keys() != agents:
                raise BatchProblem("malformed", f"step {number}: 'sources' must name the agents of 'actions'")
            for agent, source in sources.items():
                if source not in allowed[agent]:
                    human = agent in humans
                    raise BatchProblem(
                        "bad_value",
                        f"step {number}: {agent!r} is a {'human' if human else 'bot'} seat; "
                        f"its action cannot come from {source!r}",
                    )
            rewards = step.rewards
            terminated = step.terminated
            truncated = step.truncated
            if not (
                step.keys.keys() <= humans
                and rewards.keys() <= agents
                and terminated.keys() <= agents
                and truncated.keys() <= agents
            ):
                raise BatchProblem(
                    "malformed",
                    f"step {number}: 'keys' may name only human seats, and 'rewards', 'terminated' and "
                    "'truncated' only agents that have an action",
                )
            for agent, reward in rewards.items():
                if not isfinite(reward):
                    raise BatchProblem(
                        "bad_value", f"step {number}: the reward of {agent!r} is {_short(reward)}"
                    )
            if not isfinite(step.t_ms):
                raise BatchProblem("bad_value", f"step {number}: t_ms is {step.t_ms!r}")
            infos = step.infos
            if infos:
                if not infos.keys() <= agents:
                    raise BatchProblem(
                        "malformed", f"step {number}: 'infos' names an agent that has no action"
                    )
                for agent, info in infos.items():
                    if info and len(_JSON(info)) > info_limit:
                        raise BatchProblem(
                            "oversized",
                            f"step {number}: the info of {agent!r} takes more than {info_limit} bytes",
                        )
            if (
                index < final
                and (True in terminated.values() or True in truncated.values())
                and _all_done(step)
            ):
                raise BatchProblem(
                    "bad_value", f"step {number} ended the episode (every agent done), yet steps follow it"
                )


def _all_done(step: StepData) -> bool:
    terminated = step.terminated
    truncated = step.truncated
    return all(terminated.get(agent, False) or truncated.get(agent, False) for agent in step.actions)


def step_rows(
    ids: Mapping[str, Any],
    episode: int,
    steps: Sequence[StepData],
    *,
    players: Mapping[str, str],
    t_server_ms: float,
    observations: bool = False,
) -> list[dict[str, Any]]:
    """The ``steps`` rows of ``steps`` (one per agent per step), built by core's record builder
    (``igym_core.runtime.records.step_row``), so they have the server runtime's columns.

    ``ids``: the game's id columns (``records.game_ids``); ``players``: human seat → participant
    id; ``t_server_ms``: when the server received them. ``tick`` is None (the page's steps have no
    server tick); ``t_client_ms`` is when the page made the step, on the participant's clock.
    ``observations``: the scene records them (the column ``observation``).
    """
    rows = []
    append = rows.append
    for step in steps:
        number = step.step
        t_client_ms = step.t_ms
        keys = step.keys
        rewards = step.rewards
        terminated = step.terminated
        truncated = step.truncated
        infos = step.infos
        sources = step.sources
        seen = (step.observations or {}) if observations else None
        for agent, action in step.actions.items():
            participant = players.get(agent)
            if seen is None and type(action) in _PLAIN and not (infos and infos.get(agent)):
                # The row ``step_row`` builds for these values (a plain action, no info, no
                # observation), built here in one expression: every step of every browser-run game
                # comes this way (``test_ingest.py`` checks that the rows are the same).
                append(
                    {
                        **ids,
                        "episode": episode,
                        "step": number,
                        "tick": None,
                        "agent": agent,
                        "seat": "bot" if participant is None else "human",
                        "participant_id": participant,
                        "action": action,
                        "action_source": sources[agent],
                        "keys_held": None if participant is None else list(keys.get(agent, ())),
                        "reward": rewards.get(agent, 0.0),
                        "terminated": terminated.get(agent, False),
                        "truncated": truncated.get(agent, False),
                        "info": None,
                        "t_server_ms": t_server_ms,
                        "t_client_ms": t_client_ms,
                    }
                )
                continue
            append(
                step_row(
                    ids,
                    episode=episode,
                    step=number,
                    tick=None,
                    agent=agent,
                    participant_id=participant,
                    action=action,
                    action_source=sources[agent],
                    keys_held=None if participant is None else keys.get(agent, ()),
                    reward=rewards.get(agent, 0.0),
                    terminated=terminated.get(agent, False),
                    truncated=truncated.get(agent, False),
                    info=infos.get(agent) if infos else None,
                    t_server_ms=t_server_ms,
                    t_client_ms=t_client_ms,
                    observation=NOT_RECORDED if seen is None else seen.get(agent),
                )
            )
    return rows
