"""The step worker process: holds the envs of games whose scene has
``runtime_options={"step_in_worker": True}`` and steps, draws and delta-encodes them on request.

It runs :func:`serve` in a process of its own (``multiprocessing``'s ``spawn``: nothing of the
server is inherited). Requests and replies are pickled tuples over one pipe, answered one by one in
order: ``(op, key, payload)``, ``op`` one of

- ``open`` (payload a :class:`WorkerEnvSpec`): build the env and its renderer; reply ``opened``;
- ``observe`` (a frozenset of agents): the seats whose observations are read; the env is told
  (``set_observed_agents``) and only their observations are sent back; reply ``observed`` with
  the current observations of the seats newly read (mid-episode);
- ``reset`` (a seed) and ``step`` (the actions): reply ``reset`` / ``stepped`` with the results,
  the live agents, the frame's delta fields (``DeltaEncoder.update_fields``) and image, and the
  step's and drawing's cost;
- ``close``: drop the env (no reply).

A request whose env raises (or whose reply would exceed ``max_reply_bytes``) is answered ``failed``
with the error, and the env is dropped; the worker serves the others on. It exits when the server's
end of the pipe closes (EOF), and ignores SIGINT (the server stops it).
"""

from __future__ import annotations

import contextlib
import pickle
import signal
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = ["WorkerEnvSpec", "serve"]


@attrs.frozen
class WorkerEnvSpec:
    """What a worker needs to build one game's env and renderer: picklable by reference.

    ``env_factory`` and ``render_fn`` are the scene's own values: a ``"module:attr"`` /
    ``"file.py:attr"`` string (resolved in the worker against ``base_dir``) or an importable
    module-level callable (pickled by its name).
    """

    scene_id: str
    env_factory: Any
    env_kwargs: Mapping[str, Any]
    single_agent_id: str | None
    base_dir: Path
    renderer_type: type
    render_fn: Any


class _Game:
    __slots__ = ("encoder", "env", "observed", "raw", "renderer")

    def __init__(self, spec: WorkerEnvSpec) -> None:
        from igym_core.builtin.scene_gym_prepared import _make_env
        from igym_core.envs import resolve_callable
        from igym_core.rendering.delta import DeltaEncoder

        where = f"scene {spec.scene_id!r}"

        def resolve(value: Any, what: str) -> Any:
            if isinstance(value, str):
                return resolve_callable(value, what=f"{where}: {what}", base_dir=spec.base_dir)
            return value

        factory = resolve(spec.env_factory, "env_factory")
        self.env, self.raw = _make_env(factory, spec.env_kwargs, spec.single_agent_id, where)
        self.renderer = spec.renderer_type(render_fn=resolve(spec.render_fn, "render_fn"))
        self.encoder = DeltaEncoder()
        self.observed: frozenset[Any] | None = None  # None: every seat's observation is sent

    def frame(self) -> tuple[Any, Any]:
        rendered = self.renderer.render(self.raw)
        fields = self.encoder.update_fields(rendered.objects) if rendered.objects is not None else None
        return fields, rendered.image_png

    def sent(self, obs: Mapping[Any, Any]) -> dict[Any, Any]:
        observed = self.observed
        if observed is None:
            return dict(obs)
        return {agent: value for agent, value in obs.items() if agent in observed}


def _handle(games: dict[Any, _Game], op: str, key: Any, payload: Any) -> tuple[Any, ...] | None:
    if op == "open":
        games[key] = _Game(payload)
        return ("opened", key, None)
    if op == "close":
        game = games.pop(key, None)
        if game is not None:
            with contextlib.suppress(Exception):  # closing is best effort, as in the server runtime
                game.env.close()
        return None
    game = games[key]
    if op == "step":
        cpu = time.thread_time()
        started = time.perf_counter()
        obs, rewards, terminations, truncations, infos = game.env.step(payload)
        stepped = time.perf_counter()
        fields, image = game.frame()
        drawn = time.perf_counter()
        return (
            "stepped",
            key,
            (
                game.sent(obs),
                rewards,
                terminations,
                truncations,
                infos,
                list(game.env.agents),
                fields,
                image,
                stepped - started,
                drawn - stepped,
                time.thread_time() - cpu,
            ),
        )
    if op == "reset":
        obs, infos = game.env.reset(seed=payload)
        fields, image = game.frame()
        return ("reset", key, (game.sent(obs), infos, list(game.env.agents), fields, image))
    if op == "observe":
        from igym_core.envs import tell_observed_agents

        game.observed = frozenset(payload)
        fresh = tell_observed_agents(game.env, game.observed)
        return ("observed", key, fresh or {})
    raise ValueError(f"unknown request {op!r}")


def serve(conn: Any, max_reply_bytes: int) -> None:
    """The worker's loop (the process's target): answer requests until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    games: dict[Any, _Game] = {}
    try:  # started (imports done): the server's timeout for answers counts from here
        conn.send_bytes(pickle.dumps(("ready", None, None)))
    except OSError:
        return
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        op, key, payload = pickle.loads(data)
        try:
            reply = _handle(games, op, key, payload)
        except BaseException as exc:  # the game's env failed: that game ends, the others go on
            games.pop(key, None)
            reply = ("failed", key, _error_text(exc))
        if reply is None:
            continue
        try:
            blob = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            games.pop(key, None)
            blob = pickle.dumps(("failed", key, f"the {op} result could not be pickled: {_error_text(exc)}"))
        if len(blob) > max_reply_bytes:
            games.pop(key, None)
            blob = pickle.dumps(
                (
                    "failed",
                    key,
                    f"the {op} result is {len(blob)} bytes, more than the {max_reply_bytes} a step worker "
                    "may send: return smaller observations, infos or frames",
                )
            )
        try:
            conn.send_bytes(blob)
        except OSError:
            return


def _error_text(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    place = f" (at {where[0].filename}:{where[0].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{place}"
