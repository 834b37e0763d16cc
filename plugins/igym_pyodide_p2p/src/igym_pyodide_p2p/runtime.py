"""The ``pyodide`` runtime, server side: the env steps in the participant's browser; the server
issues each episode and stores what the page reports.

A game's life (one participant; bots play in the page)::

    loading ──runtime_loaded──▶ countdown ──▶ playing ──episode_done──▶ countdown ──▶ … ──▶ ended
       │                                        │
       └─ load timeout / runtime_load_failed ─▶ ended, the participant moves on (on_load_timeout)

The server is the authority on seeds and episode counts: at the end of each countdown it sends
``pyodide_episode {episode, seed, num_episodes, max_steps, fps, next_batch}`` with the seed
``prepared.episode_seed(instance, participants, n)`` of the ``n``-th of the scene's
``num_episodes`` episodes; the page never starts one on its own.

Episode numbers count plays. A reload in the middle of an episode (the new page sends
``runtime_loaded`` again) records the episode ``interrupted`` with the steps that reached the
server; then ``on_reload="restart"`` plays it again with the same seed as the next episode number,
and ``"next"`` goes on to the next seed. So every (episode, step) of a game is stored once, and
``episodes`` has a row for every play, each with its seed.

Steps arrive in ``step_batch`` messages (``ingest.py``, ``game_ingest.py``): stored batches are
acknowledged by a ``batch_ack`` naming the last one stored (at most once per ``ack_interval_ms``; a
re-send and an episode's last batch at once); a refused one gets an ``error`` (``bad_batch``, the
problem named) and a ``rejected_batches`` record, and none of its steps reach ``steps``; a refused
batch of the open
episode with the number the server expects (or a later one) ends that episode ``batch_refused`` and
the next is issued with ``next_batch`` (the page numbers on from it).

The game itself is ``game.py`` (the episode machine), with ``game_ingest.py`` (the step batches)
and ``game_loading.py`` (loading, reloads, stalls, presence).

Nobody connected: a game whose participant has had no socket for the scene's ``abandon_after_s``
ends ``abandoned`` (checked once a second for all games), with the scene's ``on_abandon`` rule.
The page keeps stepping through a short network drop and re-sends what was not acknowledged.
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
    RuntimeMessage,
    Seat,
)
from igym_core.tasks import BackgroundTasks
from igym_pyodide_p2p.game import SAVING, PyodideGame
from igym_pyodide_p2p.game_ingest import BATCH_REFUSED, REJECTED_BATCHES, _field  # noqa: F401 (importable here)
from igym_pyodide_p2p.messages import (
    EpisodeDone,
    RuntimeLoaded,
    RuntimeLoadFailed,
    StepBatchMessage,
)
from igym_pyodide_p2p.options import PyodideOptions

# The game's parts live in game.py (episode machine), game_ingest.py (step batches) and
# game_loading.py (load and presence rules); their names stay importable from here.
__all__ = [
    "BATCH_REFUSED",
    "REJECTED_BATCHES",
    "SAVING",
    "PyodideGame",
    "PyodideRuntime",
    "action_test",
    "options_of",
    "scene_problems",
]

log = structlog.get_logger(__name__)

_PRESENCE_INTERVAL_S = 1.0
#: How often the runtime sends the acknowledgements games have held back (``ack_interval_ms``).
_ACK_FLUSH_S = 0.25


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


def _is_discrete(space: Any) -> bool:
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


def options_of(prepared: Any) -> PyodideOptions:
    """The scene's options (structured at start, see ``PyodideRuntime.options_type``)."""
    options = prepared.runtime_options
    return options if isinstance(options, PyodideOptions) else PyodideOptions.from_mapping(options or {})


def scene_problems(scene: Any, prepared: Any, settings: Any) -> tuple[list[str], list[str]]:
    """What keeps the ``pyodide`` runtime from running ``scene`` (problems), and what ``igym check``
    should print about it (notes): the runtime's own rules, then the browser's (its packages, and
    code the browser cannot import), from the modules that answer them."""
    problems: list[str] = []
    notes: list[str] = []
    humans = tuple(prepared.human_seats)
    if len(humans) != 1:
        problems.append(
            f"$.human_seats: the 'pyodide' runtime plays one participant per game (the env steps in "
            f"their browser); this scene has {len(humans)} human seats {list(humans)}. Use "
            "runtime='server' for games of several people."
        )
    if getattr(scene, "same_group_as", None):
        problems.append(
            "$.same_group_as: a group plays together only under runtime='server'; remove same_group_as."
        )
    options = options_of(prepared)
    notes.append(
        f"runs in the participant's browser: load timeout {options.load_timeout_s:g} s "
        f"(then {options.on_load_timeout}), on reload {options.on_reload}, state hash every "
        f"{options.hash_every_steps} steps, batches every {options.batch_interval_ms} ms"
    )
    try:  # pyodide-browser: what of the scene (renderer, bots, code by import path) the browser can run
        from igym_pyodide_p2p.game_spec import browser_problems
    except ImportError:
        browser_problems = None
    if browser_problems is not None:
        problems.extend(browser_problems(prepared))
    try:  # pyodide-packages: which packages the browser needs and where each comes from
        from igym_pyodide_p2p.packages import check_scene_packages
    except ImportError:
        check_scene_packages = None
    if check_scene_packages is not None:
        package_problems, package_notes = check_scene_packages(scene, prepared, settings)
        problems.extend(package_problems)
        notes.extend(package_notes)
    return problems, notes


class PyodideRuntime(Runtime):
    """Games whose env steps in the participant's browser (see the module docstring)."""

    kind: ClassVar[str] = "pyodide"
    messages: ClassVar[tuple[type[RuntimeMessage], ...]] = (
        RuntimeLoaded,
        RuntimeLoadFailed,
        StepBatchMessage,
        EpisodeDone,
    )
    #: The page's side: the client asset ``static/page/runtime.js``, served under /plugins/pyodide/.
    client_module: ClassVar[str | None] = "/plugins/pyodide/runtime.js"
    options_type: ClassVar[type | None] = PyodideOptions

    @classmethod
    def check_scene(cls, scene: Any, prepared: Any, settings: Any) -> RuntimeCheck:
        problems, notes = scene_problems(scene, prepared, settings)
        return RuntimeCheck(problems=problems, notes=notes)

    @classmethod
    def scene_view(cls, scene: Any, prepared: Any) -> dict[str, Any] | None:
        """``{"game": spec}``: what the page's worker runs (the env, render function, HUD, bots, keys
        by import path), with the scene's hash interval and batch interval."""
        try:
            from igym_pyodide_p2p.game_spec import browser_game_spec
        except ImportError:  # the browser side of the plugin is not there: the page reports it
            return None
        options = options_of(prepared)
        return {
            "game": browser_game_spec(
                prepared, hash_every=options.hash_every_steps, batch_interval_ms=options.batch_interval_ms
            )
        }

    def __init__(self, host: GameHost) -> None:
        super().__init__(host)
        self.games: dict[str, PyodideGame] = {}
        self._spaces: dict[int, dict[str, Callable[[Any], bool]]] = {}
        #: Whether every agent's actions are ints (Discrete spaces), by prepared scene.
        self._int_actions: dict[int, bool] = {}
        self._presence: asyncio.TimerHandle | None = None
        self._ack_timer: asyncio.TimerHandle | None = None
        #: Games with stored batches not acknowledged yet (sent by ``_flush_acks``).
        self.acks_due: set[PyodideGame] = set()
        self._tasks = BackgroundTasks()
        #: True while the study's records cannot be stored: no new episode starts.
        self.holding = False
        self.counters = {
            "batches_stored": 0,
            "batches_resent": 0,
            "batches_rejected": 0,
            "steps_stored": 0,
            "episodes": 0,
            "load_timeouts": 0,
        }

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._presence = loop.call_later(_PRESENCE_INTERVAL_S, self._check_presence)
        self._ack_timer = loop.call_later(_ACK_FLUSH_S, self._flush_acks)

    async def stop(self) -> None:
        if self._presence is not None:
            self._presence.cancel()
            self._presence = None
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        for game in list(self.games.values()):
            await game.stop("server_stopped")

    def create_game(
        self,
        *,
        game_id: str,
        scene: Any,
        prepared: Any,
        instance: int,
        seats: Sequence[Seat],
        continues: Continuation | None = None,
    ) -> PyodideGame:
        info = GameInfo(
            game_id=game_id,
            scene_id=scene.scene_id,
            instance=instance,
            seats=tuple(seats),
            experiment_id=self.host.experiment_id,
        )
        options = options_of(prepared)
        game = PyodideGame(self, info, prepared, options, self.action_tests(prepared), continues=continues)
        game.ints_for_actions = self._int_actions.get(id(prepared), False)
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
                self._int_actions[id(prepared)] = all(_is_discrete(space) for space in spaces.values())
            finally:
                try:
                    env.close()
                except Exception:
                    log.debug("env_close_failed", scene_id=prepared.scene.scene_id)
            self._spaces[id(prepared)] = tests
        return tests

    def hold_for_saving(self, hold: bool) -> None:
        """While the study's records cannot be stored (and too many wait), no game starts a new
        episode: the one under way finishes (its steps are in the page anyway), the next waits on
        the saving message until storing works again."""
        self.holding = hold
        if not hold:
            for game in list(self.games.values()):
                game.saving_resumed()

    def forget(self, game: PyodideGame) -> None:
        self.games.pop(game.info.game_id, None)
        self.acks_due.discard(game)

    def _flush_acks(self) -> None:
        """Four times a second: each game whose held-back acknowledgement is due sends it (one
        ``batch_ack`` covering every batch stored since its last one)."""
        self._ack_timer = asyncio.get_running_loop().call_later(_ACK_FLUSH_S, self._flush_acks)
        if not self.acks_due:
            return
        now = time.monotonic()
        for game in list(self.acks_due):
            try:
                if game.send_due_ack(now):
                    self.acks_due.discard(game)
            except Exception:
                self.acks_due.discard(game)
                log.exception("batch_ack_failed", game_id=game.info.game_id)

    def spawn(self, awaitable: Any) -> None:
        self._tasks.spawn(awaitable)

    def _check_presence(self) -> None:
        loop = asyncio.get_running_loop()
        self._presence = loop.call_later(_PRESENCE_INTERVAL_S, self._check_presence)
        now = time.monotonic()
        for game in list(self.games.values()):
            try:
                game.check_presence(now)
            except Exception:
                log.exception("presence_check_failed", game_id=game.info.game_id)

    def stats(self) -> dict[str, Any]:
        return {"games": len(self.games), **self.counters}
