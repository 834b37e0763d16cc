"""The ``server`` runtime class and its hookimpl."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from igym_core.builtin.rtt_echo import RttEcho
from igym_core.builtin.runtime_server.game import ServerGame
from igym_core.builtin.runtime_server.presence import SAVING
from igym_core.builtin.runtime_server.scheduler import TickScheduler
from igym_core.plugins.markers import hookimpl
from igym_core.runtime.interface import Continuation, GameHost, GameInfo, PreparedGame, Runtime, Seat

__all__ = ["ServerRuntime", "igym_register_runtimes"]


@hookimpl(trylast=True)
def igym_register_runtimes() -> list[type[Runtime]]:
    return [ServerRuntime]


class ServerRuntime(Runtime):
    """Steps games on the server (see the module docstring)."""

    kind = "server"
    messages = (RttEcho,)

    def __init__(self, host: GameHost) -> None:
        super().__init__(host)
        self.scheduler = TickScheduler(host.settings.tick_groups, ServerGame.FINISH)
        self.games: dict[str, ServerGame] = {}
        #: True while the study's records cannot be stored and too many wait: games stay paused.
        self.holding = False

    def create_game(
        self,
        *,
        game_id: str,
        scene: Any,
        prepared: PreparedGame,
        instance: int,
        seats: Sequence[Seat],
        continues: Continuation | None = None,
    ) -> ServerGame:
        info = GameInfo(
            game_id=game_id,
            scene_id=scene.scene_id,
            instance=instance,
            seats=tuple(seats),
            experiment_id=self.host.experiment_id,
        )
        game = ServerGame(self, info, prepared, continues=continues)
        self.games[game_id] = game
        game.begin()
        if self.holding:
            game.pause(SAVING)
        return game

    def hold_for_saving(self, hold: bool) -> None:
        """Pause every game while records cannot be stored (reason ``saving``), resume them after."""
        self.holding = hold
        for game in list(self.games.values()):
            if hold:
                game.pause(SAVING)
            else:
                game.unpause(SAVING)

    def forget(self, game: ServerGame) -> None:
        self.scheduler.remove(game)
        self.games.pop(game.info.game_id, None)

    async def stop(self) -> None:
        await self.scheduler.stop()

    def stats(self) -> dict[str, Any]:
        return {
            "games": len(self.games),
            "tick_groups": self.scheduler.groups,
            **self.scheduler.stats.summary(),
        }
