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

The game itself is ``game.py``: the episode machine it shares with the ``pyodide_p2p`` runtime
(``game_base.py``; the runtime class's shared part is ``runtime_base.py``), with ``game_ingest.py``
(the step batches) and ``game_loading.py`` (loading, reloads, stalls, presence).

Nobody connected: a game whose participant has had no socket for the scene's ``abandon_after_s``
ends ``abandoned`` (checked once a second for all games), with the scene's ``on_abandon`` rule.
The page keeps stepping through a short network drop and re-sends what was not acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import structlog

from igym_core.builtin.rtt_echo import RttEcho
from igym_core.runtime.interface import Continuation, GameHost, GameInfo, RuntimeMessage
from igym_pyodide_p2p.game import SAVING, PyodideGame
from igym_pyodide_p2p.game_ingest import BATCH_REFUSED, REJECTED_BATCHES
from igym_pyodide_p2p.messages import (
    EpisodeDone,
    RuntimeLoaded,
    RuntimeLoadFailed,
    StepBatchMessage,
)
from igym_pyodide_p2p.options import PyodideOptions
from igym_pyodide_p2p.runtime_base import SAME_GROUP_PROBLEM, BrowserRuntime, action_test, package_checks

# The game's parts live in game.py (with game_base.py, the episode machine), game_ingest.py (step
# batches) and game_loading.py (load and presence rules); their names stay importable from here.
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

#: How often the runtime sends the acknowledgements games have held back (``ack_interval_ms``).
_ACK_FLUSH_S = 0.25


def options_of(prepared: Any) -> PyodideOptions:
    """The scene's options (structured at start, see ``PyodideRuntime.options_type``)."""
    return PyodideRuntime.options_of(prepared)


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
        problems.append(SAME_GROUP_PROBLEM)
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
    package_checks(scene, prepared, settings, problems, notes)
    return problems, notes


class PyodideRuntime(BrowserRuntime):
    """Games whose env steps in the participant's browser (see the module docstring)."""

    kind: ClassVar[str] = "pyodide"
    messages: ClassVar[tuple[type[RuntimeMessage], ...]] = (
        RuntimeLoaded,
        RuntimeLoadFailed,
        StepBatchMessage,
        EpisodeDone,
        RttEcho,
    )
    #: The page's side: the client asset ``static/page/runtime.js``, served under /plugins/pyodide/.
    client_module: ClassVar[str | None] = "/plugins/pyodide/runtime.js"
    options_type: ClassVar[type | None] = PyodideOptions
    scene_problems = staticmethod(scene_problems)

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
        super().__init__(
            host,
            {
                "batches_stored": 0,
                "batches_resent": 0,
                "batches_rejected": 0,
                "steps_stored": 0,
                "episodes": 0,
                "load_timeouts": 0,
            },
        )
        self.games: dict[str, PyodideGame] = {}
        self._ack_timer: asyncio.TimerHandle | None = None
        #: Games with stored batches not acknowledged yet (sent by ``_flush_acks``).
        self.acks_due: set[PyodideGame] = set()

    async def start(self) -> None:
        await super().start()
        self._ack_timer = asyncio.get_running_loop().call_later(_ACK_FLUSH_S, self._flush_acks)

    async def stop(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        await super().stop()

    def new_game(
        self, info: GameInfo, prepared: Any, options: PyodideOptions, continues: Continuation | None
    ) -> PyodideGame:
        game = PyodideGame(self, info, prepared, options, self.action_tests(prepared), continues=continues)
        game.ints_for_actions = self._int_actions.get(id(prepared), False)
        return game

    def forget(self, game: PyodideGame) -> None:
        super().forget(game)
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
