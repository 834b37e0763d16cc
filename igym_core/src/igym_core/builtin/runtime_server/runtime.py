"""The ``server`` runtime class and its hookimpl."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from igym_core.builtin.rtt_echo import RttEcho
from igym_core.builtin.runtime_server.game import ServerGame
from igym_core.builtin.runtime_server.pooled import PooledServerGame, ServerRuntimeOptions, worker_spec
from igym_core.builtin.runtime_server.presence import SAVING
from igym_core.builtin.runtime_server.scheduler import TickScheduler
from igym_core.plugins.markers import hookimpl
from igym_core.runtime.interface import (
    Continuation,
    GameHost,
    GameInfo,
    PreparedGame,
    Runtime,
    RuntimeCheck,
    Seat,
)

__all__ = ["ServerRuntime", "igym_register_runtimes"]


@hookimpl(trylast=True)
def igym_register_runtimes() -> list[type[Runtime]]:
    return [ServerRuntime]


class ServerRuntime(Runtime):
    """Steps games on the server (see the module docstring)."""

    kind = "server"
    messages = (RttEcho,)
    options_type = ServerRuntimeOptions

    @classmethod
    def check_scene(cls, scene: Any, prepared: PreparedGame, settings: Any) -> RuntimeCheck:
        """A scene stepped in the worker processes needs workers and an env they can build."""
        import pickle

        from igym_core.builtin.runtime_server.step_pool import default_workers

        options = prepared.runtime_options
        if not isinstance(options, ServerRuntimeOptions) or not options.step_in_worker:
            return RuntimeCheck()
        problems = []
        workers = settings.step_workers if settings.step_workers is not None else default_workers()
        if workers == 0:
            problems.append(
                "$.runtime_options.step_in_worker: IGYM_STEP_WORKERS is 0, so no worker process can "
                "step this scene's env. Set IGYM_STEP_WORKERS to 1 or more (unset: one less than the "
                "CPUs), or remove step_in_worker."
            )
        try:
            pickle.dumps(worker_spec(prepared))
        except Exception as exc:
            problems.append(
                "$.env_factory: step_in_worker sends the env factory, env_kwargs and render_fn to a "
                f"worker process by name, and this scene's cannot be sent ({type(exc).__name__}: {exc}). "
                "Give env_factory and render_fn as 'module:attr' strings or module-level functions, "
                "and env_kwargs of plain values; or remove step_in_worker."
            )
        notes = (
            f"scene {scene.scene_id!r}: its envs step in {workers} worker process(es) "
            "(IGYM_STEP_WORKERS); a hud there sees only the env's agents and spaces.",
        )
        return RuntimeCheck(problems=tuple(problems), notes=notes if not problems else ())

    def __init__(self, host: GameHost) -> None:
        super().__init__(host)
        self.scheduler = TickScheduler(host.settings.tick_groups, ServerGame.FINISH)
        self.games: dict[str, ServerGame] = {}
        #: True while the study's records cannot be stored and too many wait: games stay paused.
        self.holding = False
        self._pool: Any = None  # the step workers, made with the first game that steps in one
        self._templates: dict[str, Any] = {}

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
        options = prepared.runtime_options
        pooled = isinstance(options, ServerRuntimeOptions) and options.step_in_worker
        game = (PooledServerGame if pooled else ServerGame)(self, info, prepared, continues=continues)
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

    def step_pool(self) -> Any:
        """The step workers (started on first use; see ``step_pool``)."""
        if self._pool is None:
            from igym_core.builtin.runtime_server.step_pool import StepPool, default_workers

            settings = self.host.settings
            workers = settings.step_workers if settings.step_workers is not None else default_workers()
            self._pool = StepPool(max(1, workers), self.scheduler, settings.step_worker_timeout_s)
        return self._pool

    def template_env(self, prepared: Any) -> Any:
        """An env of ``prepared``'s scene built here once, for the agents and spaces of its games
        that step in a worker."""
        scene_id = prepared.scene_id
        if scene_id not in self._templates:
            self._templates[scene_id] = prepared.make_env()[0]
        return self._templates[scene_id]

    async def stop(self) -> None:
        await self.scheduler.stop()
        if self._pool is not None:
            self._pool.stop()
            self._pool = None

    def stats(self) -> dict[str, Any]:
        return {
            "games": len(self.games),
            "tick_groups": self.scheduler.groups,
            **self.scheduler.stats.summary(),
            **({"step_pool": self._pool.summary()} if self._pool is not None else {}),
        }
