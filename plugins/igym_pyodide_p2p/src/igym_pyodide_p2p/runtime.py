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

Steps arrive in ``step_batch`` messages (``ingest.py``): each stored or re-sent batch gets a
``batch_ack``; a refused one an ``error`` (``bad_batch``, the problem named) and a
``rejected_batches`` record, and none of its steps reach ``steps``; a refused batch of the open
episode with the number the server expects (or a later one) ends that episode ``batch_refused`` and
the next is issued with ``next_batch`` (the page numbers on from it).

Nobody connected: a game whose participant has had no socket for the scene's ``abandon_after_s``
ends ``abandoned`` (checked once a second for all games), with the scene's ``on_abandon`` rule.
The page keeps stepping through a short network drop and re-sends what was not acknowledged.
"""

from __future__ import annotations

import asyncio
import functools
import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import msgspec
import structlog

from igym_core.data.recorder import iso_utc
from igym_core.errors import ProtocolError
from igym_core.protocol.server_messages import GameStatus
from igym_core.runtime import records
from igym_core.runtime.interface import (
    Continuation,
    GameExit,
    GameHandle,
    GameHost,
    GameInfo,
    Runtime,
    RuntimeCheck,
    RuntimeMessage,
    Seat,
)
from igym_core.runtime.notify import call_scene_callback, notify_plugins
from igym_core.session.saving import SAVING_MESSAGE
from igym_core.tasks import BackgroundTasks
from igym_pyodide_p2p.ingest import BatchProblem, GameLedger, decode_step_batch, step_rows
from igym_pyodide_p2p.messages import (
    BatchAck,
    EpisodeDone,
    PyodideEpisode,
    RuntimeLoaded,
    RuntimeLoadFailed,
    StepBatchMessage,
)
from igym_pyodide_p2p.options import LOAD_FAILED_OUTCOME, PyodideOptions

__all__ = ["PyodideGame", "PyodideRuntime", "action_test", "options_of", "scene_problems"]

log = structlog.get_logger(__name__)

_pack = msgspec.msgpack.Encoder().encode
_PRESENCE_INTERVAL_S = 1.0
#: How often the runtime sends the acknowledgements games have held back (``ack_interval_ms``).
_ACK_FLUSH_S = 0.25

#: Record types this runtime writes besides core's ``steps``, ``episodes`` and ``games``.
REJECTED_BATCHES = records.REJECTED_BATCHES
#: The ``end_reason`` of an episode whose stream a refused batch broke (see ``_after_refusal``).
BATCH_REFUSED = "batch_refused"
#: Why a game waits (the ``reason`` of its ``paused`` / ``resumed`` records), as the server runtime names it.
SAVING = "saving"


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


class PyodideGame(GameHandle):
    """One browser-run game: the episodes the server issues and the records the page sends."""

    def __init__(
        self,
        runtime: PyodideRuntime,
        info: GameInfo,
        prepared: Any,
        options: PyodideOptions,
        actions_ok: Mapping[str, Callable[[Any], bool]],
        *,
        continues: Continuation | None = None,
    ) -> None:
        self.runtime = runtime
        self.host = runtime.host
        self.info = info
        self.prepared = prepared
        self.scene = prepared.scene
        self.options = options
        self.continues = continues
        humans = [s for s in info.seats if s.participant_id is not None]
        #: Human seat (agent name) → participant id.
        self.players = {s.agent: s.participant_id for s in humans if s.participant_id is not None}
        self.participant_ids = [pid for pid in self.players.values()]
        self.ledger = GameLedger(
            actions_ok=actions_ok,
            humans=list(self.players),
            fps=self.scene.fps,
            max_steps=self.scene.max_steps,
            options=options,
        )
        self._ids = records.game_ids(
            game_id=info.game_id,
            scene_id=info.scene_id,
            instance=info.instance,
            participant_ids=self.participant_ids,
        )
        self.phase = "loading"
        self.ended = False
        self.end_message = ""
        self.loaded = False
        self.created = time.monotonic()
        #: Which of the scene's episodes (1 … num_episodes) is being played or comes next.
        self.round = continues.from_episode if continues is not None else 1
        #: Plays so far (the ``episode`` number of data and of the page's messages).
        self.plays = 0
        self.seed = 0
        self.phase_until = 0.0
        self.episode_started_wall = 0.0
        self.episode_started_mono = 0.0
        self.returns: dict[str, float] = {}
        self.absent_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._paused_at = 0.0
        #: When the page last sent steps of the open episode (or it was issued), monotonic.
        self.last_progress = 0.0
        #: Every agent's actions are ints (what ``action_test`` passes for a Discrete space).
        self.ints_for_actions = False
        #: Acknowledgements: when the last ``batch_ack`` went (monotonic), and to whom the held-back
        #: one goes (None: none is held back). An ack names the last stored batch (``next_batch - 1``).
        self._acked_at = -math.inf
        self._ack_to: str | None = None
        self._ack_interval_s = options.ack_interval_ms / 1000
        #: Batches of this game the server refused, by rule (``BatchProblem.kind``).
        self.refused: dict[str, int] = {}

    # --- lifecycle ---------------------------------------------------------------------------
    def begin(self) -> None:
        from igym_core.session.games import seats_description

        continues = self.continues
        self.host.record(
            records.GAMES,
            records.game_started_row(
                self._ids,
                seats=seats_description(self.info.seats),
                fps=self.scene.fps,
                num_episodes=self.scene.num_episodes,
                runtime=PyodideRuntime.kind,
                continues_game_id=continues.game_id if continues is not None else None,
                continues_from_episode=continues.from_episode if continues is not None else None,
            ),
        )
        log.info("game_started", game_id=self.info.game_id, scene_id=self.info.scene_id, runtime="pyodide")
        self._notify("notify_game_started", self.info)
        self._timer = asyncio.get_running_loop().call_later(self.options.load_timeout_s, self._load_timed_out)

    async def stop(self, reason: str) -> None:
        if not self.ended:
            self._withdraw_unstarted_episode()
            if self.ledger.episode_open:
                self._end_episode("game_stopped", then_continue=False)
            self._end_game(reason, "The study server is restarting.")

    # --- GameHandle --------------------------------------------------------------------------
    def player_ready(self, participant_id: str) -> None:
        """The page has mounted the scene; it loads the runtime next (``runtime_loaded``)."""

    def player_input(
        self, participant_id: str, *, keys: Sequence[str] | None, press: Sequence[str] | None
    ) -> None:
        """Keys go to the page's own env; the server has nothing to do with them."""

    def player_connected(self, participant_id: str) -> None:
        self.absent_since = None

    def status_message(self, participant_id: str) -> dict[str, Any]:
        countdown_ms = 0
        if self.phase == "countdown":
            countdown_ms = max(0, round((self.phase_until - time.monotonic()) * 1000))
        message = {"loading": "Loading the game…", "ended": self.end_message, "paused": SAVING_MESSAGE}.get(
            self.phase, ""
        )
        seat = next((agent for agent, pid in self.players.items() if pid == participant_id), None)
        return GameStatus(
            game_id=self.info.game_id,
            phase=self.phase,
            episode=min(self.round, self.scene.num_episodes),
            num_episodes=self.scene.num_episodes,
            seat=seat,
            message=message,
            countdown_ms=countdown_ms,
            pause_reason=SAVING if self.phase == "paused" else None,
        ).wire()

    def player_message(self, participant_id: str, message: Any) -> None:
        if self.ended:
            return
        if isinstance(message, StepBatchMessage):
            self._ingest(participant_id, message.data)
        elif isinstance(message, EpisodeDone):
            self._episode_done(message)
        elif isinstance(message, RuntimeLoaded):
            self._loaded(message)
        elif isinstance(message, RuntimeLoadFailed):
            self._load_failed(message)
        else:
            raise ProtocolError("unknown_type", f"{message.type!r} is not a message of the pyodide runtime")

    # --- loading -----------------------------------------------------------------------------
    def _loaded(self, message: RuntimeLoaded) -> None:
        reload = self.loaded
        self.loaded = True
        self.host.record(
            records.GAMES,
            records.runtime_loaded_row(
                self._ids,
                ms=round(message.ms, 1),
                stages={k: round(v, 1) for k, v in message.stages.items()},
                reload=reload,
            ),
        )
        log.info("runtime_loaded", game_id=self.info.game_id, ms=round(message.ms), reload=reload)
        if not reload:
            self._cancel_timer()
            self._countdown()
            return
        # A new page: what the old one was playing is lost beyond what it sent (an episode still in
        # its countdown was not played yet: it is issued again).
        if not self._withdraw_unstarted_episode() and self.ledger.episode_open:
            rule = self.options.on_reload
            self.host.record(
                records.GAMES,
                records.reloaded_row(self._ids, episode=self.plays, step=self.ledger.last_step, rule=rule),
            )
            self._end_episode("interrupted", then_continue=False)
            if rule == "next":
                self.round += 1
            if self.round > self.scene.num_episodes:
                self._end_game("completed", "Well done! This game is over.")
                return
        self._countdown()

    def _load_failed(self, message: RuntimeLoadFailed) -> None:
        self.host.record(
            records.GAMES,
            records.runtime_load_failed_row(self._ids, stage=message.stage, message=message.message),
        )
        log.info(
            "runtime_load_failed", game_id=self.info.game_id, stage=message.stage, message=message.message
        )
        self._give_up("runtime_load_failed")

    def _load_timed_out(self) -> None:
        self._timer = None
        if self.ended or self.loaded:
            return
        self.runtime.counters["load_timeouts"] += 1
        self.host.record(
            records.GAMES, records.load_timeout_row(self._ids, load_timeout_s=self.options.load_timeout_s)
        )
        log.info(
            "runtime_load_timed_out", game_id=self.info.game_id, load_timeout_s=self.options.load_timeout_s
        )
        self._give_up("load_timeout")

    def _give_up(self, reason: str) -> None:
        """The game cannot be played here: the participant goes where ``on_load_timeout`` says."""
        self._withdraw_unstarted_episode()
        if self.ledger.episode_open:  # a reloaded page that could not load: the episode ends here
            self._end_episode("interrupted", then_continue=False)
        options = self.options
        exit = GameExit(
            outcome=LOAD_FAILED_OUTCOME,
            to_scene=options.load_timeout_scene,
            to_end=options.on_load_timeout == "end",
        )
        self._end_game(reason, "The game could not be loaded in this browser.", exit=exit)

    # --- episodes ----------------------------------------------------------------------------
    def _countdown(self) -> None:
        """The next episode: issued now, played after the scene's countdown (the page shows its first
        frame under the countdown, as the server runtime does)."""
        self._cancel_timer()
        self._issue_episode(start_in_s=max(0.0, self.scene.countdown_s))

    def _issue_episode(self, start_in_s: float = 0.0) -> None:
        self._timer = None
        if self.ended:
            return
        if self.runtime.holding:  # records cannot be stored: the episode waits (saving_resumed)
            self.phase = "paused"
            self.host.record(
                records.GAMES,
                records.game_paused_row(
                    self._ids, reason=SAVING, episode=self.plays, step=self.ledger.last_step
                ),
            )
            self._paused_at = time.monotonic()
            self._broadcast_status()
            return
        self.plays += 1
        self.seed = self.prepared.episode_seed(self.info.instance, self.participant_ids, self.round)
        self.returns = {str(a): 0.0 for a in self.prepared.agents}
        start = time.monotonic() + start_in_s
        self.episode_started_wall = time.time() + start_in_s
        self.episode_started_mono = start
        self.ledger.open_episode(self.plays, start)
        self.last_progress = start
        self.phase_until = start
        self.runtime.counters["episodes"] += 1
        episode = PyodideEpisode(
            game_id=self.info.game_id,
            episode=self.plays,
            seed=self.seed,
            num_episodes=self.scene.num_episodes,
            max_steps=self.scene.max_steps,
            fps=self.scene.fps,
            next_batch=self.ledger.next_batch,
            start_in_ms=round(start_in_s * 1000),
        ).wire()
        if start_in_s > 0:
            self.phase = "countdown"
            self._timer = asyncio.get_running_loop().call_later(start_in_s, self._begin_episode)
        else:
            self._begin_episode()
        self._broadcast_status()
        for pid in self.participant_ids:
            self.runtime.spawn(self.host.send(pid, episode))
        log.info("episode_started", game_id=self.info.game_id, episode=self.plays, seed=self.seed)

    def _begin_episode(self) -> None:
        """The countdown is over: the page steps the episode from now on."""
        self._timer = None
        if self.ended or not self.ledger.episode_open:
            return
        countdown = self.phase == "countdown"
        self.phase = "playing"
        if countdown:
            self._broadcast_status()
        self._notify("notify_episode_started", self.info, self.plays, self.seed)
        self._callback("on_episode_start", self.info, self.plays, self.seed)

    def _withdraw_unstarted_episode(self) -> bool:
        """An episode issued but still in its countdown (no step can have been made) is taken back,
        without a record, so that a reload or an end in a countdown leaves no empty episode behind.
        Returns whether there was one."""
        if not (self.ledger.episode_open and self.phase == "countdown"):
            return False
        self._cancel_timer()
        self.ledger.close_episode()
        self.plays -= 1
        self.runtime.counters["episodes"] -= 1
        return True

    def _episode_done(self, message: EpisodeDone) -> None:
        ledger = self.ledger
        if message.episode < self.plays or (message.episode == self.plays and not ledger.episode_open):
            return  # sent again after a reconnect: that episode's end was taken already
        if message.episode != self.plays or not ledger.episode_open:
            raise ProtocolError(
                "bad_batch",
                f"episode {message.episode} is not being played (episode {self.plays} is the last)",
            )
        reason = message.end_reason if ledger.episode_over else "incomplete"
        if message.steps != ledger.last_step or not ledger.episode_over:
            log.warning(
                "episode_incomplete",
                game_id=self.info.game_id,
                episode=self.plays,
                steps_reported=message.steps,
                steps_stored=ledger.last_step,
                end_seen=ledger.episode_over,
            )
        self._end_episode(reason)

    def _end_episode(self, end_reason: str, *, then_continue: bool = True) -> None:
        ledger = self.ledger
        ledger.close_episode()
        duration = max(0.0, time.monotonic() - self.episode_started_mono)  # 0 if still in its countdown
        summary = records.episode_row(
            self._ids,
            episode=self.plays,
            seed=self.seed,
            steps=ledger.last_step,
            end_reason=end_reason,
            returns=self.returns,
            seats=self.players,
            started_at=iso_utc(self.episode_started_wall),
            duration_ms=round(duration * 1000),
            fps=self.scene.fps,
            frames_dropped={},  # the page draws its own frames
            tick_lateness_ms_p50=None,  # and keeps its own time
            tick_lateness_ms_p99=None,
            tick_lateness_ms_max=None,
            rtt_ms={},
            paused_ms=0,
            pauses=0,
            pause_reasons={},
        )
        self.host.record(records.EPISODES, summary)
        log.info(
            "episode_ended",
            game_id=self.info.game_id,
            episode=self.plays,
            steps=ledger.last_step,
            end_reason=end_reason,
            duration_ms=summary["duration_ms"],
        )
        self._notify("notify_episode_ended", self.info, self.plays, summary)
        self._callback("on_episode_end", self.info, summary)
        if not then_continue:
            return
        self.round += 1
        if self.round <= self.scene.num_episodes:
            self._countdown()
        else:
            self._end_game("completed", "Well done! This game is over.")

    def saving_resumed(self) -> None:
        """Records are stored again: an episode held back by :meth:`PyodideRuntime.hold_for_saving`
        starts after a countdown."""
        if self.phase == "paused" and not self.ended:
            self.host.record(
                records.GAMES,
                records.game_resumed_row(
                    self._ids,
                    reason=SAVING,
                    episode=self.plays,
                    step=self.ledger.last_step,
                    paused_ms=round((time.monotonic() - self._paused_at) * 1000),
                ),
            )
            self._countdown()

    # --- step records ------------------------------------------------------------------------
    def _ingest(self, participant_id: str, data: Mapping[str, Any]) -> None:
        now = time.monotonic()
        ledger = self.ledger
        counters = self.runtime.counters
        try:
            batch = decode_step_batch(data, self.options)
            accepted = ledger.accept(batch, now)
        except BatchProblem as problem:
            counters["batches_rejected"] += 1
            self._rejected(participant_id, data, problem)
            self._after_refusal(data)
            raise ProtocolError(
                "bad_batch", f"batch {_field(data, 'batch')} refused: {problem.message}"
            ) from None
        if accepted.duplicate:
            counters["batches_resent"] += 1
            self.last_progress = now
        else:
            counters["batches_stored"] += 1
            self.last_progress = now
            counters["steps_stored"] += len(accepted.steps)
            t_server_ms = round(time.time() * 1000, 1)
            record = self.host.record
            returns = self.returns
            # Whether every value of the rows is one that JSON encoders write alike (see
            # ``GameHost.record_many``): ids, names and keys are strings, actions ints of a Discrete
            # space, flags bools; rewards and the page's times are checked here, and infos must be empty.
            json_plain = self.ints_for_actions
            for step in accepted.steps:
                for agent, reward in step.rewards.items():
                    returns[agent] = returns.get(agent, 0.0) + reward
                    if json_plain and not (reward == 0.0 or 1e-4 <= reward < 1e16 or -1e16 < reward <= -1e-4):
                        json_plain = False
                if json_plain:
                    infos = step.infos
                    if (infos and any(infos.values())) or not 1e-4 <= step.t_ms < 1e16:
                        json_plain = False
            # The batch's rows in one call: the recorder and the sink take them together.
            self.host.record_many(
                records.STEPS,
                step_rows(
                    self._ids, batch.episode, accepted.steps, players=self.players, t_server_ms=t_server_ms
                ),
                json_plain=json_plain,
            )
            for step_number, state_hash in accepted.hashes:
                record(
                    records.STATE_HASHES,
                    records.state_hash_row(
                        self._ids, episode=batch.episode, step=step_number, state_hash=state_hash
                    ),
                )
        if accepted.duplicate or accepted.episode_over or now - self._acked_at >= self._ack_interval_s:
            self._send_ack(participant_id, now)
        else:  # acknowledged with the next one (``ack_interval_ms``)
            self._ack_to = participant_id
            self.runtime.acks_due.add(self)

    def send_due_ack(self, now: float) -> bool:
        """Send the held-back acknowledgement if its time has come; whether none is left held back."""
        participant_id = self._ack_to
        if participant_id is None or self.ended:
            self._ack_to = None
            return True
        if now - self._acked_at < self._ack_interval_s:
            return False
        self._send_ack(participant_id, now)
        return True

    def _send_ack(self, participant_id: str, now: float) -> None:
        """``batch_ack`` of every batch stored so far (the numbers below the one the server expects)."""
        self._acked_at = now
        self._ack_to = None
        self.runtime.acks_due.discard(self)
        ack = BatchAck(game_id=self.info.game_id, batch=self.ledger.next_batch - 1).wire()
        sink = self.host.frame_sink(participant_id)
        if sink is not None and sink.offer(_pack(ack)):
            return
        self.runtime.spawn(self.host.send(participant_id, ack))  # the socket is busy: queue it

    def _after_refusal(self, data: Mapping[str, Any]) -> None:
        """A refused batch of the episode being played that used up a number the server still
        expects (or one after it) breaks the episode's stream: the page numbers on past it, so every
        later batch of the episode would be refused as out of order. The episode ends here
        (``batch_refused``) and the next one is issued with the number the server expects
        (``next_batch``), from which the page numbers on. A refusal of an earlier number (a replay)
        or of another episode (a batch of an episode already over) changes nothing."""
        number = _field(data, "batch")
        ledger = self.ledger
        if (
            number is None
            or number < ledger.next_batch
            or not ledger.episode_open
            or _field(data, "episode") != self.plays
        ):
            return
        self._end_episode(BATCH_REFUSED)

    def _rejected(self, participant_id: str, data: Mapping[str, Any], problem: BatchProblem) -> None:
        steps = data.get("steps") if isinstance(data, Mapping) else None
        self.host.record(
            REJECTED_BATCHES,
            records.rejected_batch_row(
                self._ids,
                participant_id=participant_id,
                batch=_field(data, "batch"),
                episode=_field(data, "episode"),
                first_step=_field(data, "first_step"),
                steps=len(steps) if isinstance(steps, list) else None,
                rule=problem.kind,
                problem=problem.message,
                expected_batch=self.ledger.next_batch,
                t_server_ms=round(time.time() * 1000, 1),
            ),
        )
        refused = self.refused
        refused[problem.kind] = refused.get(problem.kind, 0) + 1
        log.warning(
            "batch_rejected",
            game_id=self.info.game_id,
            participant_id=participant_id,
            batch=_field(data, "batch"),
            episode=_field(data, "episode"),
            rule=problem.kind,
            problem=problem.message[:200],
            rejected_in_game=dict(refused),
        )

    # --- presence ----------------------------------------------------------------------------
    def check_presence(self, now: float) -> None:
        """Once a second: a game whose participant has been away ``abandon_after_s`` is abandoned;
        one whose connected page sent no steps of its episode for ``load_timeout_s`` has stalled."""
        if self.ended:
            return
        connected = any(self.host.frame_sink(pid) is not None for pid in self.participant_ids)
        if connected:
            self.absent_since = None
            if self.ledger.episode_open and now - self.last_progress >= self.options.load_timeout_s:
                self._stalled(now)
            return
        if self.absent_since is None:
            self.absent_since = now
        elif now - self.absent_since >= self.scene.abandon_after_s:
            self._withdraw_unstarted_episode()
            if self.ledger.episode_open:
                self._end_episode("abandoned", then_continue=False)
            self._end_game("abandoned", "Nobody was connected to this game for too long.")

    def _stalled(self, now: float) -> None:
        """The page is connected but has sent no steps for ``load_timeout_s`` in an episode (its
        worker died, or a reloaded page never loaded): the game cannot be played in this browser,
        so the load timeout's rule applies."""
        silent_s = round(now - self.last_progress, 1)
        self.host.record(
            records.GAMES,
            records.stalled_row(self._ids, episode=self.plays, step=self.ledger.last_step, silent_s=silent_s),
        )
        log.info("game_stalled", game_id=self.info.game_id, episode=self.plays, silent_s=silent_s)
        self._end_episode("stalled", then_continue=False)
        self._give_up("stalled")

    # --- the end -----------------------------------------------------------------------------
    def _end_game(self, reason: str, message: str, *, exit: GameExit | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        self._cancel_timer()
        self.ledger.close_episode()
        self.phase = "ended"
        self.end_message = message
        self.runtime.forget(self)
        self._broadcast_status()
        self.host.record(
            records.GAMES, records.game_ended_row(self._ids, reason=reason, episodes_played=self.plays)
        )
        log.info("game_ended", game_id=self.info.game_id, reason=reason, episodes=self.plays)
        if self.refused:  # the page's data was refused: one line per game says how much, by rule
            log.warning(
                "game_batches_rejected",
                game_id=self.info.game_id,
                scene_id=self.info.scene_id,
                batches=sum(self.refused.values()),
                by_rule=dict(self.refused),
            )
        self._notify("notify_game_ended", self.info, reason)
        self._callback("on_game_end", self.info, reason)
        if exit is None:
            self.host.game_ended(self.info.game_id, reason)
        else:
            self.host.game_ended(self.info.game_id, reason, exit)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _broadcast_status(self) -> None:
        for pid in self.participant_ids:
            self.runtime.spawn(self.host.send(pid, self.status_message(pid)))

    def _notify(self, method: str, *args: Any) -> None:
        notify_plugins(self.host.plugins, method, self.info.game_id, *args)

    def _callback(self, name: str, *args: Any) -> None:
        call_scene_callback(self.prepared.callbacks, name, self.info.game_id, *args)


def _field(data: Any, key: str) -> Any:
    """A field of a (maybe malformed) batch, for the rejection record: a number or None."""
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
