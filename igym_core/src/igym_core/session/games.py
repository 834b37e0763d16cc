"""Game scenes in the study: who plays which game, and the bridge between games and sockets.

The study calls :meth:`GameCoordinator.enter` when a participant reaches a game scene. The
coordinator groups players (one human seat per game for now; matchmaking fills larger groups),
asks the scene's runtime to create the game, routes ``game_ready`` and ``input`` messages to it, and
moves every player on when the game reports its end. It is the :class:`GameHost` a runtime sees.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from igym_core.errors import ProtocolError
from igym_core.protocol.messages import GameReady, Input
from igym_core.runtime.interface import GameHandle, Runtime, Seat

if TYPE_CHECKING:
    from igym_core.data.recorder import Recorder
    from igym_core.plugins.manager import IgymPluginManager
    from igym_core.runtime.interface import FrameSink
    from igym_core.session.participant import Participant
    from igym_core.settings import Settings

__all__ = ["GameCoordinator", "GameSeating"]

log = structlog.get_logger(__name__)


class GameSeating:
    """What a prepared game scene tells the coordinator about its seats."""

    human_seats: tuple[str, ...]
    bot_seats: Mapping[str, str]
    """Bot agent → a short description of its policy (recorded with the game)."""


class GameCoordinator:
    """Owns the app's runtimes and running games; implements :class:`GameHost`."""

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
        advance: Callable[[str, str, int], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.plugins = plugins
        self.recorder = recorder
        self.experiment_id = experiment_id
        self.experiment_seed = experiment_seed
        self._sinks = sinks
        self._advance = advance
        self._runtimes: dict[str, Runtime] = {}
        self.games: dict[str, GameHandle] = {}
        self.game_of: dict[str, str] = {}
        """participant id → id of the game they are in."""
        self._game_position: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
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

    def game_ended(self, game_id: str, reason: str) -> None:
        game = self.games.pop(game_id, None)
        if game is None:
            return
        players = [pid for pid, gid in self.game_of.items() if gid == game_id]
        for pid in players:
            del self.game_of[pid]
        if self._stopping:
            return
        for pid in players:
            position = self._game_position.pop(pid, -1)
            task = asyncio.get_running_loop().create_task(self._advance(pid, game_id, position))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- study side ---------------------------------------------------------------------------
    async def enter(self, participant: Participant, prepared: Any) -> None:
        """Seat a participant who has reached a game scene (or came back to one after a restart)."""
        if participant.participant_id in self.game_of:
            return
        scene = participant.scene
        kind = scene.game_runtime()
        assert kind is not None  # the study only calls this for game scenes
        runtime = await self._runtime(kind)
        seating: GameSeating = prepared
        if len(seating.human_seats) != 1:
            raise NotImplementedError("games with more than one human seat need a matchmaker")
        game_id = f"g-{secrets.token_hex(5)}"
        seats = [Seat(agent=seating.human_seats[0], participant_id=participant.participant_id)]
        seats += [Seat(agent=agent, policy=desc) for agent, desc in seating.bot_seats.items()]
        game = runtime.create_game(
            game_id=game_id, scene=scene, prepared=prepared, instance=participant.slot.instance, seats=seats
        )
        self.games[game_id] = game
        self.game_of[participant.participant_id] = game_id
        self._game_position[participant.participant_id] = participant.position

    def status_message(self, participant_id: str) -> dict[str, Any] | None:
        game = self._game_for(participant_id)
        return game.status_message(participant_id) if game else None

    def connected(self, participant_id: str) -> None:
        game = self._game_for(participant_id)
        if game is not None:
            game.player_connected(participant_id)

    def handle(self, participant_id: str, message: Input | GameReady) -> None:
        game = self._game_for(participant_id)
        if game is None or game.info.game_id != message.game_id:
            raise ProtocolError("not_in_game", f"You are not playing game {message.game_id[:64]!r}.")
        if isinstance(message, GameReady):
            game.player_ready(participant_id)
        else:
            game.player_input(participant_id, keys=message.keys, press=message.press)

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
        return runtime

    def stats(self, *, since_sample: int | None = None) -> dict[str, Any]:
        return {
            "games": len(self.games),
            "runtimes": {k: r.stats(since_sample=since_sample) for k, r in self._runtimes.items()},
        }

    async def stop(self) -> None:
        """Server shutdown: stop every game (each records how it ended), then the runtimes."""
        self._stopping = True
        for game in list(self.games.values()):
            try:
                await game.stop("server_stopped")
            except Exception:
                log.exception("game_stop_failed", game_id=game.info.game_id)
        for runtime in self._runtimes.values():
            await runtime.stop()
        for task in list(self._tasks):
            task.cancel()


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
