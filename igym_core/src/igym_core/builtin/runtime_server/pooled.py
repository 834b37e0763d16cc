"""Games whose env steps in a worker process (``GymScene(runtime_options={"step_in_worker": True})``).

:class:`PooledServerGame` is a :class:`~igym_core.builtin.runtime_server.game.ServerGame` whose env,
drawing and delta encoding live in a step worker (:mod:`.step_pool`, :mod:`.step_worker`). The
game keeps everything else here: players and their keys, the bots (which act on the observations
the worker sends back, only for the seats they play), the records, the HUD, the frames and the
episode machine. The differences from a game stepped inline:

- a tick sends the actions and returns; the step's records and frames are made when the worker's
  reply arrives (usually within a few ms: the worker steps its games one after another), so the
  game is never stepped twice at once and its order of steps is the inline one;
- a game whose request is still unanswered at its next tick skips that tick (``ticks_skipped``);
- an episode starts when the worker has reset and drawn the env;
- the env the HUD sees (``HudView.env``) has only ``possible_agents``, ``agents`` and the spaces;
- a worker that raises ends the game (``games`` row ``step_failed`` with the error), a worker
  that dies or hangs ends each of its games (``step_worker_failed``); either is then the usual
  ``error`` ending.

The same seed and actions give the same records as inline: the env is built from the same factory
and arguments and reset with the same seeds; bots are here, reseeded the same way.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from igym_core.builtin.runtime_server.actions import StepResult
from igym_core.builtin.runtime_server.game import ServerGame
from igym_core.errors import IgymError
from igym_core.rendering.delta import apply_delta
from igym_core.runtime import records

if TYPE_CHECKING:
    from igym_core.builtin.runtime_server.step_pool import StepPool
    from igym_core.builtin.runtime_server.step_worker import WorkerEnvSpec

__all__ = ["PooledEnv", "PooledServerGame", "ServerRuntimeOptions", "worker_spec"]

log = structlog.get_logger(__name__)


@attrs.frozen(kw_only=True)
class ServerRuntimeOptions:
    """The ``server`` runtime's scene options: ``GymScene(runtime_options={...})``."""

    step_in_worker: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Step this scene's envs (and draw them) in the server's step worker processes
    (``IGYM_STEP_WORKERS``) instead of on the event loop. For envs whose step + drawing costs a
    large part of a tick (about 0.5 ms or more): the event loop then only sends, receives and
    records, and the envs use the other CPUs. The env factory and ``render_fn`` must be importable
    by name (``"module:attr"`` or a module-level function) and ``env_kwargs`` plain values."""


def worker_spec(prepared: Any) -> WorkerEnvSpec:
    """What a worker needs to build a game of ``prepared``'s scene (picklable by reference)."""
    from igym_core.builtin.runtime_server.step_worker import WorkerEnvSpec

    scene = prepared.scene
    return WorkerEnvSpec(
        scene_id=scene.scene_id,
        env_factory=scene.env_factory,
        env_kwargs=dict(scene.env_kwargs),
        single_agent_id=prepared.single_agent_id,
        base_dir=prepared.base_dir,
        renderer_type=prepared.registry.renderers.get(scene.renderer),
        render_fn=scene.render_fn,
    )


class PooledEnv:
    """The env of a game that steps in a worker, as this process sees it: the agents (the live ones
    as of the last reply) and the spaces (of a copy of the env built here once per scene)."""

    def __init__(self, template: Any, game: PooledServerGame) -> None:
        self._template = template
        self._game = game
        self.possible_agents = list(template.possible_agents)
        self.agents: list[Any] = []
        self.metadata = getattr(template, "metadata", {})

    def action_space(self, agent: Any) -> Any:
        return self._template.action_space(agent)

    def observation_space(self, agent: Any) -> Any:
        return self._template.observation_space(agent)

    def set_observed_agents(self, agents: frozenset[Any]) -> None:
        """Tell the worker (its reply brings the newly read seats' observations; the game waits
        for it before its next step)."""
        self._game.request("observe", frozenset(agents))

    def reset(self, seed: int | None = None, options: Any = None) -> Any:
        raise IgymError("this game's env steps in a worker process; it cannot be reset from the server")

    def step(self, actions: Any) -> Any:
        raise IgymError("this game's env steps in a worker process; it cannot be stepped from the server")

    def close(self) -> None:
        self._game.close_remote()


@attrs.define(slots=True)
class _Frame:
    """A frame drawn and delta-encoded in the worker: ``objects`` holds the delta's fields."""

    objects: dict[str, Any] | None
    image_png: bytes | None


class _MirrorEncoder:
    """The browser's view of the objects, kept from the worker's deltas (as a client applies
    them), for keyframes; :meth:`update_fields` takes a delta the worker already made."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}

    def update_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        apply_delta(self.state, add=fields.get("add", ()), upd=fields.get("upd", ()), rm=fields.get("rm", ()))
        return fields

    def keyframe(self) -> list[dict[str, Any]]:
        return list(self.state.values())


class PooledServerGame(ServerGame):
    """A server game whose env steps in a worker process (see the module docstring)."""

    def _make_env(self, prepared: Any) -> tuple[Any, Any]:
        self.pool: StepPool = self.runtime.step_pool()
        self._requests: deque[str] = deque()  # ops sent and not yet answered, in order
        self._sent: tuple[Any, Any, Any] | None = None  # actions, sources, keys of the step in flight
        self._frame: tuple[_Frame, float, float] | None = None
        self.ticks_waited = 0
        env = PooledEnv(self.runtime.template_env(prepared), self)
        self.worker, self.key = self.pool.open(self, worker_spec(prepared))
        self._requests.append("open")
        return env, env

    def _init_frames(self, prepared: Any) -> None:
        super()._init_frames(prepared)
        self.encoder = _MirrorEncoder()  # type: ignore[assignment]
        self.env_cost_ticks = 100  # the env's cost is the worker's: no env_slow warning here

    def request(self, op: str, payload: Any) -> None:
        if self.ended or not self.worker.alive:
            return
        self._requests.append(op)
        self.worker.send(self.key, op, payload)

    def close_remote(self) -> None:
        self._requests.clear()
        self.pool.close(self.worker, self.key)

    # --- ticking -----------------------------------------------------------------------------
    def tick_step(self, lateness_ms: float) -> bool:
        """Send this tick's actions to the worker (or, when not playing, do what the tick does);
        never True: the parts after the step run when the worker answers (:meth:`pool_reply`).
        A game still waiting for an answer skips the tick."""
        if self._requests or self.pool.full(self.worker):
            self.ticks_waited += 1
            self.runtime.scheduler.stats.ticks_skipped += 1
            self.pool.check_hung(self.worker)
            return False
        self.tick_count += 1
        phase = self.phase
        if phase == "playing":
            self.episode_lateness.append(lateness_ms)
            actions, sources, held = self.choose_actions()
            self._sent = (actions, sources, held)
            self.request("step", actions)
            return False
        self._tick_not_playing(phase)
        return False

    def _reset_env(self) -> None:
        self.request("reset", self.seed)

    def pool_reply(self, op: str, payload: Any) -> None:
        """The worker answered this game's oldest request."""
        if self._requests:
            self._requests.popleft()
        if self.ended:
            return
        if op == "stepped":
            self._stepped_remotely(payload)
        elif op == "reset":
            obs, _infos, agents, fields, image = payload
            self.env.agents = agents
            paused = self.phase == "paused"  # paused while the worker reset (records held back, say)
            self._episode_reset(obs, _Frame(fields, image))
            if paused:  # it stays paused, and resumes into the episode's countdown
                self._paused_from, self.phase = self.phase, "paused"
        elif op == "observed":
            if payload:  # the current observations of seats a bot has just taken
                self.obs = {**self.obs, **payload}
        elif op == "failed":
            self._remote_failed("step_failed", {"error": str(payload)[:2000]})

    def _stepped_remotely(self, payload: Any) -> None:
        from igym_core.builtin.runtime_server.scheduler import _failed

        obs, rewards, terminations, truncations, infos, agents, fields, image, step_s, draw_s, cpu_s = payload
        assert self._sent is not None
        actions, sources, held = self._sent
        self._sent = None
        self.env.agents = agents
        self.step += 1
        self._stepped = StepResult(
            actions,
            sources,
            held,
            obs,
            rewards,
            terminations,
            truncations,
            infos,
            step_s,
            cpu_s,
            round(time.time() * 1000, 1),
        )
        self._frame = (_Frame(fields, image), step_s + draw_s, cpu_s)
        try:
            self.tick_record()
            self.tick_render()
            self.tick_send()
        except Exception:
            _failed(self)

    def tick_render(self) -> None:
        """The frame the worker drew; its cost counts as the env's (measured in the worker)."""
        assert self._frame is not None
        frame, cost, cpu = self._frame
        self._frame = None
        stats = self.runtime.scheduler.stats
        stats.env_s += cost
        stats.env_ticks += 1
        stats.env_cpu_s += cpu
        stats.env_cpu_samples += 1
        self._rendered = frame

    # --- failures ----------------------------------------------------------------------------
    def pool_worker_died(self, pid: int | None, exitcode: int | None, why: str) -> None:
        self._requests.clear()
        self._remote_failed("step_worker_failed", {"worker_pid": pid, "exitcode": exitcode, "why": why})

    def _remote_failed(self, event: str, detail: dict[str, Any]) -> None:
        """The worker could not step this game: a ``games`` row and a log line say why, then the
        game ends as any failing game does (``error``)."""
        if self.ended:
            return
        row = {"episode": self.episode, "step": self.step, **detail}
        self.host.record(records.GAMES, {**self._ids_row, "event": event, **row})
        log.error(event, game_id=self.info.game_id, **row)
        self.fail()
