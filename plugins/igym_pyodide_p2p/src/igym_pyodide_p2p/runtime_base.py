"""What the ``pyodide`` and ``pyodide_p2p`` runtimes share on the server: :class:`BrowserRuntime`
(their games, the once-a-second presence check, the saving hold, action tests by prepared scene, the
counters) and the action tests of the pages' actions.

Each runtime adds its own messages, options, scene checks and game class (``runtime.py``,
``p2p_runtime.py``).
"""

from __future__ import annotations

import asyncio
import functools
import numbers
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import structlog

from igym_core.runtime.interface import (
    Continuation,
    GameHost,
    GameInfo,
    Runtime,
    RuntimeCheck,
    Seat,
)
from igym_core.tasks import BackgroundTasks

__all__ = [
    "PRESENCE_INTERVAL_S",
    "SAME_GROUP_PROBLEM",
    "BrowserRuntime",
    "action_test",
    "is_discrete",
    "package_checks",
]

log = structlog.get_logger("igym_pyodide_p2p.runtime")

#: How often every game's presence (and stall) rules are checked.
PRESENCE_INTERVAL_S = 1.0


#: Both runtimes refuse ``same_group_as`` (``igym check``): a group plays together only on the server.
SAME_GROUP_PROBLEM = (
    "$.same_group_as: a group plays together only under runtime='server'; remove same_group_as."
)


_COUNTS = {1: "one", 2: "two"}


def seat_problems(scene: Any, prepared: Any, *, runtime: str, seats: int, advice: str) -> list[str]:
    """The opening of a browser runtime's ``igym check`` answer: the scene must have exactly ``seats``
    human seats (``advice``: what to do instead, ends the message) and no ``same_group_as``."""
    problems: list[str] = []
    humans = tuple(prepared.human_seats)
    if len(humans) != seats:
        problems.append(
            f"$.human_seats: the {runtime!r} runtime plays exactly {_COUNTS.get(seats, seats)} participant"
            f"{'' if seats == 1 else 's'} per game; this scene has {len(humans)} human seats "
            f"{list(humans)}. {advice}"
        )
    if getattr(scene, "same_group_as", None):
        problems.append(SAME_GROUP_PROBLEM)
    return problems


def package_checks(scene: Any, prepared: Any, settings: Any, problems: list[str], notes: list[str]) -> None:
    """Adds the browser's package rules to a runtime's ``igym check`` answer (``problems``, ``notes``):
    which packages the scene needs in the browser and where each comes from (``packages.py``)."""
    try:
        from igym_pyodide_p2p.packages import check_scene_packages
    except ImportError:  # the packages side of the plugin is not there
        return
    package_problems, package_notes = check_scene_packages(scene, prepared, settings)
    problems.extend(package_problems)
    notes.extend(package_notes)


def action_test(space: Any) -> Callable[[Any], bool]:
    """A test for actions in ``space`` as they arrive from the page (msgpack: ints, floats, lists)."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        low, high = int(space.start), int(space.start) + int(space.n)

        def discrete(action: Any) -> bool:
            if type(action) is int:  # what msgpack gives: no ABC check (this runs for every agent's step)
                return low <= action < high
            return (
                isinstance(action, numbers.Integral) and not isinstance(action, bool) and low <= action < high
            )

        return discrete
    return functools.partial(_contains, space)


def is_discrete(space: Any) -> bool:
    from gymnasium import spaces

    return isinstance(space, spaces.Discrete)


def _contains(space: Any, action: Any) -> bool:
    import numpy as np

    try:
        if isinstance(action, list):
            action = np.asarray(action, dtype=space.dtype) if space.dtype is not None else np.asarray(action)
        return bool(space.contains(action))
    except Exception:
        return False


class BrowserRuntime(Runtime):
    """The server side of a runtime whose env steps in the players' browsers. A subclass sets
    ``kind``, ``messages``, ``client_module``, ``options_type``, :meth:`scene_problems` and
    :meth:`new_game`, and passes its counters to ``__init__``."""

    options_type: ClassVar[type | None] = None

    @staticmethod
    def scene_problems(scene: Any, prepared: Any, settings: Any) -> tuple[list[str], list[str]]:
        """What keeps the runtime from running ``scene`` (problems), and the notes ``igym check`` prints."""
        raise NotImplementedError

    @classmethod
    def check_scene(cls, scene: Any, prepared: Any, settings: Any) -> RuntimeCheck:
        problems, notes = cls.scene_problems(scene, prepared, settings)
        return RuntimeCheck(problems=problems, notes=notes)

    @classmethod
    def options_of(cls, prepared: Any) -> Any:
        """The scene's options (structured at start, see ``options_type``)."""
        options_type: Any = cls.options_type
        options = prepared.runtime_options
        return options if isinstance(options, options_type) else options_type.from_mapping(options or {})

    def __init__(self, host: GameHost, counters: dict[str, int]) -> None:
        super().__init__(host)
        self.games: dict[str, Any] = {}
        self._spaces: dict[int, dict[str, Callable[[Any], bool]]] = {}
        #: Whether every agent's actions are ints (Discrete spaces), by prepared scene.
        self._int_actions: dict[int, bool] = {}
        self._presence: asyncio.TimerHandle | None = None
        self._tasks = BackgroundTasks()
        #: True while the study's records cannot be stored: no new episode starts.
        self.holding = False
        self.counters = counters

    async def start(self) -> None:
        self._presence = asyncio.get_running_loop().call_later(PRESENCE_INTERVAL_S, self._check_presence)

    async def stop(self) -> None:
        if self._presence is not None:
            self._presence.cancel()
            self._presence = None
        for game in list(self.games.values()):
            await game.stop("server_stopped")

    def new_game(self, info: GameInfo, prepared: Any, options: Any, continues: Continuation | None) -> Any:
        """The runtime's game object for a new game (not begun yet)."""
        raise NotImplementedError

    def create_game(
        self,
        *,
        game_id: str,
        scene: Any,
        prepared: Any,
        instance: int,
        seats: Sequence[Seat],
        continues: Continuation | None = None,
    ) -> Any:
        info = GameInfo(
            game_id=game_id,
            scene_id=scene.scene_id,
            instance=instance,
            seats=tuple(seats),
            experiment_id=self.host.experiment_id,
        )
        game = self.new_game(info, prepared, self.options_of(prepared), continues)
        self.games[game_id] = game
        game.begin()
        return game

    def action_tests(self, prepared: Any) -> dict[str, Callable[[Any], bool]]:
        """Agent name → its action test; the env is built once per prepared scene to read its spaces."""
        tests = self._spaces.get(id(prepared))
        if tests is None:
            env, _raw = prepared.make_env()
            try:
                spaces = {str(agent): env.action_space(agent) for agent in prepared.agents}
                tests = {agent: action_test(space) for agent, space in spaces.items()}
                self._int_actions[id(prepared)] = all(is_discrete(space) for space in spaces.values())
            finally:
                try:
                    env.close()
                except Exception:
                    log.debug("env_close_failed", scene_id=prepared.scene.scene_id)
            self._spaces[id(prepared)] = tests
        return tests

    def hold_for_saving(self, hold: bool) -> None:
        """While the study's records cannot be stored (and too many wait), no game starts a new
        episode: the one under way finishes (its steps are in the pages anyway), the next waits on
        the saving message until storing works again."""
        self.holding = hold
        if not hold:
            for game in list(self.games.values()):
                game.saving_resumed()

    def forget(self, game: Any) -> None:
        self.games.pop(game.info.game_id, None)

    def spawn(self, awaitable: Any) -> None:
        self._tasks.spawn(awaitable)

    def _check_presence(self) -> None:
        self._presence = asyncio.get_running_loop().call_later(PRESENCE_INTERVAL_S, self._check_presence)
        now = time.monotonic()
        for game in list(self.games.values()):
            try:
                game.check_presence(now)
            except Exception:
                log.exception("presence_check_failed", game_id=game.info.game_id)

    def stats(self) -> dict[str, Any]:
        return {"games": len(self.games), **self.counters}
