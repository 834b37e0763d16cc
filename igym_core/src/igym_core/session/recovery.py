"""Games a stopped or killed server was running: their records completed, their players' way on.

A server that dies (SIGKILL, a crash, the machine) leaves each running game with a ``started``
record and no ``ended`` one, and the episode it was playing with steps but no ``episodes`` row.
At the next start, :func:`recover_interrupted_games` reads the ``games``, ``episodes`` and
``steps`` records the sinks kept, writes for each such game its ``ended`` record (reason
``server_restart``) and, for an episode some of whose steps reached the disk, its ``episodes``
row (``end_reason="server_restart"``, the steps on disk, their returns, the episode's seed), and
returns what each player's game scene needs to know to go on (the scene's ``on_restart``). The
``ended`` record it writes makes the next start leave that game's records alone: they are
completed once. Games a server stopped gracefully (``server_stopped``, their open episode
``game_stopped``) and games an earlier start completed are returned too, so that a participant
who comes back only after several restarts still resumes where they were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import structlog

from igym_core.runtime import records

__all__ = ["InterruptedGame", "recover_interrupted_games"]

log = structlog.get_logger(__name__)

RecordReader = Callable[[str], Iterable[Mapping[str, Any]] | None]


@attrs.frozen(kw_only=True)
class InterruptedGame:
    """A game a server restart cut off, as its players' game scene sees it on their return."""

    game_id: str
    scene_id: str
    instance: int
    participant_ids: tuple[str, ...]
    num_episodes: int
    from_episode: int
    """The episode that was under way (or, if every episode had ended, ``num_episodes + 1``)."""
    last_episode: Mapping[str, Any] | None = attrs.field(default=None, eq=False)
    """The last ``episodes`` row the game itself wrote (not one recovery completed), or, if it wrote
    none, the one of the game it continued: a runtime's running totals (``score_total``) go on from it."""


@attrs.define
class _Partial:
    steps: int = 0
    returns: dict[str, float] = attrs.field(factory=dict)
    seats: dict[str, str] = attrs.field(factory=dict)
    first_timestamp: str | None = None
    first_t_ms: float | None = None
    last_t_ms: float | None = None


#: How games end when the server, not the game, stopped them: their players resume by ``on_restart``.
SERVER_ENDS = ("server_restart", "server_stopped")
#: How episodes end when the server stopped them (they are played again by ``on_restart="resume"``).
SERVER_EPISODE_ENDS = ("server_restart", "game_stopped")


def recover_interrupted_games(
    read: RecordReader,
    *,
    experiment_id: str,
    episode_seed: Callable[[str, int, tuple[str, ...], int], int | None],
    record: Callable[[str, Mapping[str, Any]], None],
) -> list[InterruptedGame]:
    """Complete the records of every game of ``experiment_id`` that has no ``ended`` record, and
    return every game the server stopped (killed now, or stopped or killed at an earlier restart),
    oldest first, for their players' game scenes.

    ``read(record_type)``: the records a sink kept (None if it cannot read). ``episode_seed(scene_id,
    instance, participant_ids, episode)``: the seed that episode was played with (None if the scene
    is no longer in the experiment). ``record``: writes a record.
    """
    started: dict[str, Mapping[str, Any]] = {}
    ended: dict[str, str] = {}
    for row in read("games") or ():
        if row.get("experiment_id") != experiment_id:
            continue
        game_id = row.get("game_id")
        if not isinstance(game_id, str):
            continue
        if row.get("event") == "started":
            started[game_id] = row
        elif row.get("event") == "ended":
            ended[game_id] = str(row.get("reason"))
    stopped = {gid: row for gid, row in started.items() if ended.get(gid, "server_restart") in SERVER_ENDS}
    if not stopped:
        return []
    # The last episode each game played to its end, and the last that has a row at all. A game that
    # continues another counts from the episode before the one it continued with.
    finished: dict[str, int] = {}
    last_row: dict[str, int] = {}
    for gid, row in stopped.items():
        continues = row.get("continues")
        base = int(continues.get("from_episode") or 1) - 1 if isinstance(continues, Mapping) else 0
        finished[gid] = last_row[gid] = base
    last_written: dict[str, Mapping[str, Any]] = {}
    for row in read("episodes") or ():
        game_id = row.get("game_id")
        if game_id not in stopped:
            continue
        if row.get("end_reason") != "server_restart":
            last_written[game_id] = row
        episode = int(row.get("episode") or 0)
        last_row[game_id] = max(last_row[game_id], episode)
        if row.get("end_reason") not in SERVER_EPISODE_ENDS:
            finished[game_id] = max(finished[game_id], episode)
    cut = {gid for gid in stopped if gid not in ended}  # the killed process's games: records to write
    partial: dict[str, _Partial] = {}
    if cut:
        for row in read("steps") or ():
            game_id = row.get("game_id")
            if game_id not in cut or int(row.get("episode") or 0) != last_row[game_id] + 1:
                continue
            part = partial.get(game_id)
            if part is None:
                part = partial[game_id] = _Partial(first_timestamp=row.get("timestamp"))
            part.steps = max(part.steps, int(row.get("step") or 0))
            agent = str(row.get("agent"))
            reward = row.get("reward")
            part.returns[agent] = part.returns.get(agent, 0.0) + (
                reward if isinstance(reward, int | float) and not isinstance(reward, bool) else 0.0
            )
            if row.get("participant_id"):
                part.seats[agent] = row["participant_id"]
            t_ms = row.get("t_server_ms")
            if isinstance(t_ms, int | float):
                part.first_t_ms = t_ms if part.first_t_ms is None else part.first_t_ms
                part.last_t_ms = t_ms
    interrupted = []
    for game_id, row in stopped.items():
        ids = {
            "game_id": game_id,
            "scene_id": row.get("scene_id"),
            "instance": row.get("instance"),
            "participant_ids": list(row.get("participant_ids") or []),
        }
        if game_id in cut:
            _complete(record, ids, row, last_row[game_id] + 1, partial.get(game_id), episode_seed)
        interrupted.append(
            InterruptedGame(
                game_id=game_id,
                scene_id=str(ids["scene_id"]),
                instance=int(ids["instance"] or 0),
                participant_ids=tuple(ids["participant_ids"]),
                num_episodes=int(row.get("num_episodes") or 1),
                from_episode=finished[game_id] + 1,
                last_episode=_last_episode(game_id, stopped, last_written),
            )
        )
    return interrupted


def _last_episode(
    game_id: str, started: Mapping[str, Mapping[str, Any]], last_written: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The last row ``game_id`` wrote, else the one of the game it continued (and so on)."""
    seen: set[str] = set()
    current: str | None = game_id
    while current is not None and current not in seen:
        seen.add(current)
        if current in last_written:
            return last_written[current]
        continues = (started.get(current) or {}).get("continues")
        current = continues.get("game_id") if isinstance(continues, Mapping) else None
    return None


def _complete(
    record: Callable[[str, Mapping[str, Any]], None],
    ids: Mapping[str, Any],
    started: Mapping[str, Any],
    episode: int,
    part: _Partial | None,
    episode_seed: Callable[[str, int, tuple[str, ...], int], int | None],
) -> None:
    """Write the ``episodes`` row of the episode a kill cut short (if any step of it is on disk)
    and the game's ``ended`` record."""
    seed = None
    if part is not None:
        seed = episode_seed(
            str(ids["scene_id"]), int(ids["instance"] or 0), tuple(ids["participant_ids"]), episode
        )
        duration = (
            round(part.last_t_ms - part.first_t_ms)
            if part.first_t_ms is not None and part.last_t_ms is not None
            else None
        )
        record(
            records.EPISODES,
            records.restart_episode_row(
                ids,
                episode=episode,
                seed=seed,
                steps=part.steps,
                returns=part.returns,
                seats=part.seats,
                started_at=part.first_timestamp,
                duration_ms=duration,
                fps=started.get("fps"),
            ),
        )
    record(
        records.GAMES,
        records.game_ended_row(
            ids, reason="server_restart", episodes_played=episode if part is not None else episode - 1
        ),
    )
    log.info(
        "game_recovered",
        game_id=ids["game_id"],
        scene_id=ids["scene_id"],
        episode=episode,
        steps_on_disk=part.steps if part is not None else 0,
        seed=seed,
    )
