"""Game scenes in the study: who plays which game, and the bridge between games and sockets.

The study calls :meth:`GameCoordinator.enter` when a participant reaches a game scene. A scene with
one human seat starts a game at once. A scene with several human seats (or one whose group must
stay together) puts the participant in that scene's waiting room, a :class:`~igym_core.session.lobby.Lobby`
whose matchmaker forms groups; the coordinator turns its outcomes into games, timeouts and
departures, each recorded in ``matches``. The coordinator routes ``game_ready``, ``input`` and the
runtimes' own messages (:class:`~igym_core.runtime.interface.RuntimeMessage`, such as the server
runtime's ``rtt_echo``) to games, and moves every player on when their game ends. It is the
:class:`GameHost` a runtime sees. It reads a game scene only through its
:class:`~igym_core.runtime.interface.PreparedGame`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from igym_core.data.recorder import iso_utc as _iso
from igym_core.errors import ProtocolError
from igym_core.protocol.messages import GameReady, Input
from igym_core.protocol.server_messages import GameStatus, WaitingRoom
from igym_core.runtime.interface import (
    Continuation,
    GameExit,
    GameHandle,
    GameInfo,
    PreparedGame,
    Runtime,
    RuntimeMessage,
    Seat,
)
from igym_core.session.lobby import Departed, GroupRef, Lobby, Matched, TimedOut
from igym_core.tasks import BackgroundTasks

if TYPE_CHECKING:
    from igym_core.data.recorder import Recorder
    from igym_core.plugins.manager import IgymPluginManager
    from igym_core.runtime.interface import FrameSink
    from igym_core.session.participant import Participant
    from igym_core.session.recovery import InterruptedGame
    from igym_core.settings import Settings

__all__ = ["GameCoordinator", "WaitingTimeout"]

log = structlog.get_logger(__name__)


@attrs.frozen(kw_only=True)
class WaitingTimeout:
    """What the study does with a participant whose wait for a group ran out."""

    participant_id: str
    position: int
    """Their position (the game scene) when they timed out."""
    action: str
    """``continue``, ``goto``, ``message`` or ``redirect`` (the waiting room's ``on_timeout``)."""
    scene_id: str | None = None
    message: str = ""
    redirect_url: str | None = None
    """The template; the study fills in the placeholders."""


@attrs.define(eq=False)
class _Waiting:
    lobby_key: tuple[int, int]
    position: int
    participant: Participant


@attrs.define(eq=False)
class _LobbyState:
    lobby: Lobby
    scene: Any
    """The scene config (keys the waiting room; read only through ``prepared``)."""
    prepared: PreparedGame
    instance: int
    timer: asyncio.TimerHandle | None = None


class GameCoordinator:
    """Owns the app's runtimes, waiting rooms and running games; implements :class:`GameHost`."""

    def __init__(
        self,
        *,
        settings: Settings,
        plugins: IgymPluginManager,
        recorder: Recorder,
        experiment_id: str,
        experiment_seed: int,
        sinks: Callable[
            [str], tuple[FrameSink | None, Callable[[Mapping[str, Any]], Awaitable[None]] | None]
        ],
        advance: Callable[[str, str, int, str, GameExit | None], Awaitable[None]],
        timed_out: Callable[[WaitingTimeout], Awaitable[None]] | None = None,
        add_values: Callable[[str, Mapping[str, Any], bool], None] | None = None,
    ) -> None:
        self.settings = settings
        self.plugins = plugins
        self.recorder = recorder
        self.experiment_id = experiment_id
        self.experiment_seed = experiment_seed
        self._sinks = sinks
        self._advance = advance
        self._timed_out = timed_out
        self._add_values = add_values
        self._runtimes: dict[str, Runtime] = {}
        self.games: dict[str, GameHandle] = {}
        self.game_of: dict[str, str] = {}
        """participant id → id of the game they are in."""
        self._game_position: dict[str, int] = {}
        self._lobbies: dict[tuple[int, int], _LobbyState] = {}
        self._waiting: dict[str, _Waiting] = {}
        self._groups: dict[tuple[str, str], GroupRef] = {}
        """(scene id, participant id) → the group they played that scene with."""
        self._left_group: dict[str, set[str]] = {}
        """Game id of a multiplayer game → its players who left it (a bot took the seat, or it ended)."""
        self._ended_game: dict[str, str] = {}
        """participant id → the game they last played, once it has ended (its late messages are dropped)."""
        self._finished: set[str] = set()
        """Participants whose study is over (they will not join a later group)."""
        self.final_status: dict[str, dict[str, Any]] = {}
        """participant id → the last ``game_status`` of a participant whose study ended in a game scene."""
        self._interrupted: dict[tuple[str, str, int], InterruptedGame] = {}
        """(participant id, scene id, instance) → their game that a server restart cut off."""
        self._tasks = BackgroundTasks()
        self._stopping = False

    # --- GameHost -----------------------------------------------------------------------------
    def frame_sink(self, participant_id: str) -> FrameSink | None:
        return self._sinks(participant_id)[0]

    async def send(self, participant_id: str, message: Mapping[str, Any]) -> None:
        sender = self._sinks(participant_id)[1]
        if sender is not None:
            try:
                await sender(message)
            except Exception:  # a socket closing under us: the reconnect resends the state
                log.debug("game_send_failed", participant_id=participant_id, type=message.get("type"))

    def record(self, record_type: str, row: Mapping[str, Any]) -> None:
        self.recorder.write(record_type, row)

    def record_many(
        self, record_type: str, rows: Sequence[Mapping[str, Any]], *, json_plain: bool = False
    ) -> None:
        self.recorder.write_many(record_type, rows, json_plain=json_plain)

    def add_participant_values(
        self, participant_id: str, values: Mapping[str, Any], *, accumulate: bool = False
    ) -> None:
        if self._add_values is not None:
            self._add_values(participant_id, values, accumulate)

    def game_ended(self, game_id: str, reason: str, exit: GameExit | None = None) -> None:
        game = self.games.pop(game_id, None)
        if game is None:
            return
        players = [pid for pid, gid in self.game_of.items() if gid == game_id]
        for pid in players:
            del self.game_of[pid]
            self._ended_game[pid] = game_id
        if len(game.info.participant_ids) > 1 or reason == "partner_left":
            self.record("matches", {**self._game_row(game.info), "event": "game_ended", "reason": reason})
        if self._stopping:
            return
        for pid in players:
            position = self._game_position.pop(pid, -1)
            self._spawn(self._advance(pid, game_id, position, reason, exit))

    def player_left(self, game: GameInfo, participant_id: str, outcome: str) -> None:
        """A player of a multiplayer game stayed away past the grace period (``outcome``: bot | end)."""
        self._left_group.setdefault(game.game_id, set()).add(participant_id)
        self.record(
            "matches",
            {**self._game_row(game), "event": "partner_left", "left": participant_id, "outcome": outcome},
        )
        self.plugins.notify_partner_left(game, participant_id, outcome)

    def player_returned(self, game: GameInfo, participant_id: str) -> None:
        """A player whose seat a bot had taken came back and has it again."""
        self._left_group.get(game.game_id, set()).discard(participant_id)
        self.record(
            "matches", {**self._game_row(game), "event": "seat_returned", "participant_id": participant_id}
        )

    # --- after a restart ---------------------------------------------------------------------
    def interrupted(self, games: Sequence[InterruptedGame]) -> None:
        """Games the previous server process was running (their records are complete now)."""
        for game in games:
            for pid in game.participant_ids:
                self._interrupted[(pid, game.scene_id, game.instance)] = game

    def skips_after_restart(self, participant: Participant, prepared: PreparedGame) -> InterruptedGame | None:
        """The game a restart cut off if this participant moves on from its scene now, else None.

        They move on if the scene says ``on_restart="skip"``, or if every episode had been played.
        """
        key = (participant.participant_id, participant.scene.scene_id, participant.slot.instance)
        game = self._interrupted.get(key)
        if game is None or not (prepared.on_restart == "skip" or game.from_episode > prepared.num_episodes):
            return None
        del self._interrupted[key]
        return game

    def _continuation(self, participant: Participant, prepared: PreparedGame) -> Continuation | None:
        key = (participant.participant_id, participant.scene.scene_id, participant.slot.instance)
        game = self._interrupted.pop(key, None)
        if game is None or len(game.participant_ids) > 1:  # a group is matched anew
            return None
        from_episode = game.from_episode if prepared.on_restart == "resume" else 1
        return Continuation(game_id=game.game_id, from_episode=from_episode, last_episode=game.last_episode)

    # --- study side ---------------------------------------------------------------------------
    async def enter(self, participant: Participant, prepared: PreparedGame) -> None:
        """Seat a participant who has reached a game scene (or came back to one).

        Single-human scenes start a game at once; multiplayer scenes put them in the waiting room.
        """
        pid = participant.participant_id
        if pid in self.game_of:
            return
        waiting = self._waiting.get(pid)
        if waiting is not None:  # a reload while waiting: keep their place
            state = self._lobbies[waiting.lobby_key]
            state.lobby.connected(pid, now=self._now())
            waiting.participant = participant
            self._process(waiting.lobby_key, quiet=pid)
            return
        self.final_status.pop(pid, None)
        scene = participant.scene
        await self._runtime(prepared.runtime)
        same_group = prepared.same_group_as
        continues = self._continuation(participant, prepared)
        if len(prepared.human_seats) == 1 and not same_group:
            self._create_game(
                scene,
                prepared,
                participant.slot.instance,
                Matched(members=(pid,), seats=prepared.human_seats, waited_s={pid: 0.0}),
                {pid: participant.position},
                continues=continues,
            )
            return
        self._queue(participant, prepared, scene, same_group)

    def _queue(
        self, participant: Participant, prepared: PreparedGame, scene: Any, same_group: str | None
    ) -> None:
        pid = participant.participant_id
        key = (id(scene), participant.slot.instance)
        state = self._lobby(key, scene, prepared, participant.slot.instance)
        group = self._groups.get((same_group, pid)) if same_group else None
        if group is not None and not set(group.seats.values()) <= set(prepared.human_seats):
            log.warning(
                "same_group_seats_differ",
                scene_id=prepared.scene_id,
                same_group_as=same_group,
                advice="give both scenes the same human_seats; the group is matched anew",
            )
            group = None
        now = self._now()
        state.lobby.arrive(
            pid, now=now, condition=participant.condition, params=participant.params, group=group
        )
        if group is not None:
            left = self._left_group.get(group.group_id, set())
            for member in group.seats:
                if member in left or member in self._finished:
                    state.lobby.gone(member)
        self._waiting[pid] = _Waiting(lobby_key=key, position=participant.position, participant=participant)
        self.record(
            "matches",
            {
                "event": "queued",
                "scene_id": prepared.scene_id,
                "instance": participant.slot.instance,
                "participant_id": pid,
                "condition": participant.condition,
                "group_of": group.group_id if group else None,
            },
        )
        # The study sends this participant the scene and its status itself, right after.
        self._process(key, quiet=pid)

    def status_message(self, participant_id: str) -> dict[str, Any] | None:
        game = self._game_for(participant_id)
        if game is not None:
            return game.status_message(participant_id)
        waiting = self._waiting.get(participant_id)
        if waiting is not None:
            return self._matching_status(participant_id, self._lobbies[waiting.lobby_key])
        return self.final_status.get(participant_id)

    def connected(self, participant_id: str) -> None:
        """The participant has a new socket (their return to a waiting room goes through enter())."""
        game = self._game_for(participant_id)
        if game is not None:
            game.player_connected(participant_id)

    def disconnected(self, participant_id: str) -> None:
        """The participant's socket closed (a waiting room keeps their place for the grace period)."""
        waiting = self._waiting.get(participant_id)
        if waiting is not None:
            self._lobbies[waiting.lobby_key].lobby.disconnected(participant_id, now=self._now())
            self._process(waiting.lobby_key)

    def participant_finished(self, participant_id: str) -> None:
        """The participant's study is over: a group waiting for them in a later scene stops waiting."""
        self._finished.add(participant_id)
        for key, state in list(self._lobbies.items()):
            state.lobby.gone(participant_id)
            if state.lobby.waiting():
                self._process(key)

    def holds(self, participant_id: str) -> bool:
        """Whether the participant is in a game or a waiting room (never evicted from memory then)."""
        return participant_id in self.game_of or participant_id in self._waiting

    def forget(self, participant_ids: set[str]) -> None:
        """Drop what is kept about participants the study evicted from memory (none of them holds()).

        Someone an earlier group still names (a partner who may come to a later scene with the
        same group) stays known as finished or gone until every member of that group is forgotten.
        """
        for key in [key for key in self._groups if key[1] in participant_ids]:
            del self._groups[key]
        named = {member for group in self._groups.values() for member in group.seats}
        live_groups = {group.group_id for group in self._groups.values()}
        for pid in participant_ids:
            self._ended_game.pop(pid, None)
            self.final_status.pop(pid, None)
            self._game_position.pop(pid, None)
            if pid not in named:
                self._finished.discard(pid)
                for state in self._lobbies.values():
                    state.lobby.forget(pid)
        for game_id in [g for g in self._left_group if g not in live_groups and g not in self.games]:
            del self._left_group[game_id]

    def handle(self, participant_id: str, message: Input | GameReady | RuntimeMessage) -> None:
        game = self._game_for(participant_id)
        if game is None or game.info.game_id != message.game_id:
            if message.game_id == self._ended_game.get(participant_id):
                return  # a key or probe echo sent while the game was ending: nothing to do, no error
            raise ProtocolError("not_in_game", f"You are not playing game {message.game_id[:64]!r}.")
        if isinstance(message, Input):
            game.player_input(participant_id, keys=message.keys, press=message.press)
        elif isinstance(message, GameReady):
            game.player_ready(participant_id)
        else:
            game.player_message(participant_id, message)

    def _game_for(self, participant_id: str) -> GameHandle | None:
        game_id = self.game_of.get(participant_id)
        return self.games.get(game_id) if game_id else None

    async def _runtime(self, kind: str) -> Runtime:
        runtime = self._runtimes.get(kind)
        if runtime is None:
            runtime_type = self.plugins.registry.runtimes.get(kind)
            runtime = runtime_type(self)
            await runtime.start()
            self._runtimes[kind] = runtime
            if self.recorder.holding:
                runtime.hold_for_saving(True)
        return runtime

    def hold_for_saving(self, hold: bool) -> None:
        """The recorder's hold listener: every runtime pauses (``True``) or resumes its games."""
        for kind, runtime in self._runtimes.items():
            try:
                runtime.hold_for_saving(hold)
            except Exception:
                log.exception("runtime_hold_failed", runtime=kind, hold=hold)

    # --- waiting rooms ------------------------------------------------------------------------
    @staticmethod
    def _now() -> float:
        return time.monotonic()

    def _lobby(self, key: tuple[int, int], scene: Any, prepared: PreparedGame, instance: int) -> _LobbyState:
        state = self._lobbies.get(key)
        if state is None:
            matchmaker = self.plugins.registry.matchmakers.get(prepared.matchmaker)()
            lobby = Lobby(
                seats=prepared.human_seats,
                matchmaker=matchmaker,
                timeout_s=prepared.waiting_room.timeout_s,
                grace_s=prepared.reconnect_grace_s,
                fallback=prepared.same_group_fallback,
            )
            state = self._lobbies[key] = _LobbyState(
                lobby=lobby, scene=scene, prepared=prepared, instance=instance
            )
        return state

    def _process(self, key: tuple[int, int], quiet: str | None = None) -> None:
        """Apply what the waiting room says now, tell everyone still waiting, and set the next timer.

        ``quiet``: a participant the study is about to send the scene and status to anyway.
        """
        state = self._lobbies.get(key)
        if state is None or self._stopping:
            return
        try:
            outcomes = state.lobby.poll(self._now())
        except Exception:  # a bug must not stop this waiting room for good: retried at the next event
            log.exception("lobby_poll_failed", scene_id=state.prepared.scene_id)
            outcomes = []
        for outcome in outcomes:
            try:
                if isinstance(outcome, Matched):
                    game = self._matched(state, outcome)
                    for pid in outcome.members if game is not None else ():
                        if pid != quiet:
                            self._spawn(self.send(pid, game.status_message(pid)))
                elif isinstance(outcome, TimedOut):
                    self._waiting_timed_out(state, outcome)
                elif isinstance(outcome, Departed):
                    self._departed(state, outcome)
            except Exception:
                log.exception("lobby_outcome_failed", outcome=type(outcome).__name__)
        for pid in state.lobby.waiting():
            if pid != quiet:
                self._spawn(self.send(pid, self._matching_status(pid, state)))
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        deadline = state.lobby.next_deadline()
        if deadline is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, deadline - self._now()) + 0.01
            state.timer = loop.call_later(delay, self._process, key)

    def _matching_status(self, participant_id: str, state: _LobbyState) -> dict[str, Any]:
        room = state.prepared.waiting_room
        queued_at = state.lobby.queued_at(participant_id)
        now = self._now()
        waited = now - queued_at if queued_at is not None else 0.0
        return GameStatus(
            game_id=None,
            phase="matching",
            episode=1,
            num_episodes=state.prepared.num_episodes,
            seat=None,
            message=room.message,
            waiting=WaitingRoom(
                count=state.lobby.waiting_count(participant_id, now=now) if room.show_count else None,
                group_size=state.lobby.group_size,
                waited_ms=round(waited * 1000),
                timeout_ms=round(room.timeout_s * 1000),
            ),
        ).wire()

    def _matched(self, state: _LobbyState, outcome: Matched) -> GameHandle | None:
        positions = {pid: self._waiting[pid].position for pid in outcome.members}
        try:
            game = self._create_game(state.scene, state.prepared, state.instance, outcome, positions)
        except Exception:
            # The group cannot play (a broken env or bot): record it and move them on, rather than
            # leaving them in no waiting room and no game.
            log.exception(
                "group_game_failed", scene_id=state.prepared.scene_id, members=list(outcome.members)
            )
            for pid in outcome.members:
                self.record(
                    "matches",
                    {"event": "game_failed", "scene_id": state.prepared.scene_id, "participant_id": pid},
                )
                waiting = self._waiting.pop(pid)
                if self._timed_out is not None:
                    self._spawn(
                        self._timed_out(
                            WaitingTimeout(participant_id=pid, position=waiting.position, action="continue")
                        )
                    )
            return None
        for pid in outcome.members:
            del self._waiting[pid]
        self.plugins.notify_matched(game.info, dict(outcome.waited_s))
        return game

    def _create_game(
        self,
        scene: Any,
        prepared: PreparedGame,
        instance: int,
        matched: Matched,
        positions: Mapping[str, int],
        *,
        continues: Continuation | None = None,
    ) -> GameHandle:
        runtime = self._runtimes[prepared.runtime]
        game_id = f"g-{secrets.token_hex(5)}"
        seats = [
            Seat(agent=seat, participant_id=pid)
            for pid, seat in zip(matched.members, matched.seats, strict=True)
        ]
        partner_desc = prepared.partner_description or "partner"
        seats += [Seat(agent=seat, policy=partner_desc) for seat in matched.bot_seats]
        seats += [Seat(agent=agent, policy=desc) for agent, desc in prepared.bot_seats.items()]
        game = runtime.create_game(
            game_id=game_id,
            scene=scene,
            prepared=prepared,
            instance=instance,
            seats=seats,
            continues=continues,
        )
        self.games[game_id] = game
        for pid in matched.members:
            self.game_of[pid] = game_id
            self._game_position[pid] = positions[pid]
        if len(prepared.human_seats) > 1 or matched.group_of is not None:
            group = GroupRef(group_id=game_id, seats=dict(zip(matched.members, matched.seats, strict=True)))
            for pid in matched.members:
                self._groups[(prepared.scene_id, pid)] = group
            wall = time.time()
            self.record(
                "matches",
                {
                    **self._game_row(game.info),
                    "event": "matched",
                    "matchmaker": prepared.matchmaker,
                    "group_of": matched.group_of,
                    "bot_seats": list(matched.bot_seats),
                    "members": [
                        {
                            "participant_id": pid,
                            "seat": seat,
                            "queued_at": _iso(wall - matched.waited_s.get(pid, 0.0)),
                            "waited_s": round(matched.waited_s.get(pid, 0.0), 3),
                        }
                        for pid, seat in zip(matched.members, matched.seats, strict=True)
                    ],
                },
            )
        return game

    def _waiting_timed_out(self, state: _LobbyState, outcome: TimedOut) -> None:
        pid = outcome.participant_id
        waiting = self._waiting.pop(pid, None)
        if waiting is None:
            return
        room = state.prepared.waiting_room
        self.record(
            "matches",
            {
                "event": "timeout",
                "scene_id": state.prepared.scene_id,
                "instance": state.instance,
                "participant_id": pid,
                "waited_s": round(outcome.waited_s, 3),
                "reason": outcome.reason,
                "action": room.on_timeout,
            },
        )
        self.plugins.notify_waiting_timeout(
            waiting.participant, state.prepared.scene_id, outcome.waited_s, room.on_timeout
        )
        if self._timed_out is not None:
            self._spawn(
                self._timed_out(
                    WaitingTimeout(
                        participant_id=pid,
                        position=waiting.position,
                        action=room.on_timeout,
                        scene_id=room.timeout_scene,
                        message=room.timeout_text(),
                        redirect_url=room.timeout_redirect_url,
                    )
                )
            )

    def _departed(self, state: _LobbyState, outcome: Departed) -> None:
        pid = outcome.participant_id
        self._waiting.pop(pid, None)
        self.record(
            "matches",
            {
                "event": "left_queue",
                "scene_id": state.prepared.scene_id,
                "instance": state.instance,
                "participant_id": pid,
                "waited_s": round(outcome.waited_s, 3),
            },
        )

    def _game_row(self, info: GameInfo) -> dict[str, Any]:
        return {
            "game_id": info.game_id,
            "scene_id": info.scene_id,
            "instance": info.instance,
            "participant_ids": list(info.participant_ids),
            "seats": seats_description(info.seats),
        }

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        self._tasks.spawn(awaitable)

    # --- operations ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return {
            "games": len(self.games),
            "waiting": len(self._waiting),
            "runtimes": {k: r.stats() for k, r in self._runtimes.items()},
        }

    # --- the admin dashboard (igym_core/admin) --------------------------------------------------
    def waiting_rooms(self) -> list[dict[str, Any]]:
        """Each waiting room with someone in it: scene, instance, how many wait, the group size."""
        return [
            {
                "scene_id": state.prepared.scene_id,
                "instance": state.instance,
                "waiting": len(state.lobby.waiting()),
                "group_size": state.lobby.group_size,
            }
            for state in self._lobbies.values()
            if state.lobby.waiting()
        ]

    async def end_game(self, game_id: str, reason: str) -> bool:
        """End a running game as if its partners had left (:meth:`GameHandle.end_early`); False if
        no such game is running."""
        game = self.games.get(game_id)
        if game is None:
            return False
        await game.end_early(reason)
        return True

    async def stop(self) -> None:
        """Server shutdown: stop every game (each records how it ended), then the runtimes."""
        self._stopping = True
        for state in self._lobbies.values():
            if state.timer is not None:
                state.timer.cancel()
        for game in list(self.games.values()):
            try:
                await game.stop("server_stopped")
            except Exception:
                log.exception("game_stop_failed", game_id=game.info.game_id)
        for runtime in self._runtimes.values():
            await runtime.stop()
        self._tasks.cancel()


def seats_description(seats: Sequence[Seat]) -> list[dict[str, Any]]:
    return [
        {
            "agent": s.agent,
            "type": "human" if s.is_human else "bot",
            "participant_id": s.participant_id,
            "policy": s.policy,
        }
        for s in seats
    ]
