"""A game scene checked against its env and the installed plugins (:class:`PreparedGym`), and what
the check uses: building the env, fitting actions to its spaces, naming what is not installed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from igym_core.builtin.gym_keys import ActionTable
from igym_core.builtin.scene_gym_parts import Bot, HudView, WaitingRoom
from igym_core.config.converter import exception_text, problems_from_exception, sentence
from igym_core.config.validators import did_you_mean
from igym_core.errors import ConfigError, IgymError
from igym_core.scenes.interface import PrepareContext

if TYPE_CHECKING:
    from igym_core.builtin.scene_gym import GymScene

log = structlog.get_logger(__name__)


@attrs.define(eq=False)
class PreparedGym:
    """A game scene checked against its env and the installed plugins, ready to create games."""

    scene: GymScene
    base_dir: Path
    registry: Any
    converter: Any
    experiment_seed: int
    env_factory: Callable[..., Any]
    render_fn: Callable[[Any], Any] | None
    hud: Callable[[HudView], str] | None
    callbacks: dict[str, Callable[..., Any] | None]
    agents: tuple[Any, ...]
    """The env's possible agents, as the env names them."""
    human_seats: tuple[str, ...]
    bot_seats: dict[str, str]
    bots: dict[str, tuple[Any, Bot]]
    """Agent name → (policy config, seat options)."""
    agent_by_name: dict[str, Any]
    action_table: ActionTable
    single_agent_id: str | None
    """For a Gymnasium env: the agent id its adapter uses."""
    partner: tuple[Any, Bot] | None = None
    """The policy config (and seat options) of a bot that takes a human seat, if the scene has one."""
    runtime_options: Any = attrs.field(factory=dict)
    """The scene's ``runtime_options``, structured into the runtime's ``options_type`` if it has one."""

    @classmethod
    def build(cls, scene: GymScene, ctx: PrepareContext) -> PreparedGym:
        from igym_core.envs import resolve_callable
        from igym_core.policies.spec import policy_config_from

        where = f"scene {scene.scene_id!r}"
        problems: list[str] = []

        def resolve(value: Any, what: str) -> Any:
            if value is None:
                return None
            try:
                return resolve_callable(value, what=f"{where}: {what}", base_dir=ctx.base_dir)
            except IgymError as exc:
                problems.append(str(exc))
                return None

        factory = resolve(scene.env_factory, "env_factory")
        render_fn = resolve(scene.render_fn, "render_fn")
        hud = resolve(scene.hud, "hud")
        callbacks = {
            name: resolve(getattr(scene, name), name)
            for name in ("on_episode_start", "on_episode_end", "on_game_end")
        }
        runtime_options: Any = dict(scene.runtime_options)
        if scene.runtime not in ctx.registry.runtimes:
            problems.append(_not_installed(where, "runtime", scene.runtime, ctx.registry.runtimes.kinds()))
        else:
            options_type = ctx.registry.runtimes.get(scene.runtime).options_type
            if options_type is not None:
                try:
                    runtime_options = ctx.converter.structure(runtime_options, options_type)
                except Exception as exc:  # "$.…" problems are paths in the scene (see serving.py)
                    problems.extend(problems_from_exception(exc, "$.runtime_options", options_type))
        if scene.renderer not in ctx.registry.renderers:
            problems.append(_not_installed(where, "renderer", scene.renderer, ctx.registry.renderers.kinds()))
        if scene.assets_dir:
            folder = (ctx.base_dir / scene.assets_dir).resolve()
            if not folder.is_dir():
                problems.append(f"{where}: assets_dir {scene.assets_dir!r} is not a folder ({folder}).")
            else:
                for asset in scene.assets:
                    for name in (asset.file, asset.atlas_file):
                        if name and not (folder / name).is_file():
                            problems.append(
                                f"{where}: asset {asset.key!r}: file {name!r} not found in {folder}."
                            )
        if problems or factory is None:
            raise ConfigError(problems, title=f"Game scene {scene.scene_id!r} cannot run")

        single = scene.human_seat or "agent_0"
        env, raw = _make_env(factory, scene.env_kwargs, single, where)
        try:
            agents = tuple(env.possible_agents)
            by_name = {str(a): a for a in agents}
            if len(by_name) != len(agents):
                problems.append(f"{where}: the env's agents {agents!r} are not distinct as strings.")
            humans: tuple[str, ...] = scene.human_seats or (
                (scene.human_seat,) if scene.human_seat is not None else ()
            )
            if not humans:
                if len(agents) == 1:
                    humans = (str(agents[0]),)
                else:
                    problems.append(
                        f"{where}: the env has agents {list(by_name)}; say which one the participant "
                        "plays with human_seat=… (or human_seats=(…) for several participants)"
                    )
            for human_name in humans:
                if human_name not in by_name:
                    field = "human_seats" if scene.human_seats else "human_seat"
                    problems.append(
                        f"{where}: {field} {human_name!r} is not an agent of the env; "
                        f"agents: {list(by_name)}."
                    )
            if scene.matchmaker not in ctx.registry.matchmakers:
                problems.append(
                    _not_installed(where, "matchmaker", scene.matchmaker, ctx.registry.matchmakers.kinds())
                )
            partner: tuple[Any, Bot] | None = None
            if len(humans) > 1 or scene.same_group_as:
                try:
                    partner = (
                        policy_config_from(scene.partner_policy, ctx.registry, converter=ctx.converter),
                        Bot(policy=scene.partner_policy),
                    )
                except IgymError as exc:
                    problems.append(f"{where}: partner_policy: {exc}")
            bots: dict[str, tuple[Any, Bot]] = {}
            for name, value in scene.policies.items():
                if name not in by_name:
                    problems.append(
                        f"{where}: policies names {name!r}, which is not an agent; agents: {list(by_name)}."
                    )
                    continue
                if name in humans:
                    problems.append(f"{where}: {name!r} is a human seat; remove it from policies.")
                    continue
                bot = value if isinstance(value, Bot) else Bot(policy=value)
                try:
                    config = policy_config_from(bot.policy, ctx.registry, converter=ctx.converter)
                except IgymError as exc:
                    problems.append(f"{where}: policy for {name!r}: {exc}")
                    continue
                bots[name] = (config, bot)
            for name in by_name:
                if name not in humans and name not in bots and name not in scene.policies:
                    problems.append(
                        f"{where}: agent {name!r} has no player; give it a policy, e.g. "
                        f"policies={{{name!r}: 'random'}}."
                    )
            table = ActionTable(scene.action_mapping, scene.default_action)
            if humans and scene.default_action is None:
                problems.append(
                    f"{where}: default_action is required: the action played when no mapped key is held."
                )
            for human_name in humans:
                if human_name not in by_name:
                    continue
                space = env.action_space(by_name[human_name])
                outside = [
                    f"{action!r} for {combo!r}" if combo != "default_action" else f"default_action {action!r}"
                    for combo, action in [
                        *scene.action_mapping.items(),
                        ("default_action", scene.default_action),
                    ]
                    if action is not None and not _contains(space, action)
                ]
                if outside:
                    problems.append(
                        f"{where}: the action{'s' if len(outside) > 1 else ''} {', '.join(outside)} "
                        f"{'are' if len(outside) > 1 else 'is'} not in the action space of "
                        f"{human_name!r}, {space}. {_action_hint(space)}"
                    )
            if problems:
                raise ConfigError(problems, title=f"Game scene {scene.scene_id!r} cannot run")
            # Load each bot once now, so that a missing model file fails at start, not mid-game.
            prepared = cls(
                scene=scene,
                base_dir=ctx.base_dir,
                registry=ctx.registry,
                converter=ctx.converter,
                experiment_seed=ctx.experiment_seed,
                env_factory=factory,
                render_fn=render_fn,
                hud=hud,
                callbacks=callbacks,
                agents=agents,
                human_seats=tuple(humans),
                bot_seats={name: _describe(config) for name, (config, _bot) in bots.items()},
                bots=bots,
                agent_by_name=by_name,
                action_table=table,
                single_agent_id=single,
                runtime_options=runtime_options,
            )
            if partner is not None:
                prepared.partner = partner
            for name in bots:
                prepared.load_policy(name, env)
            if partner is not None:
                for human_name in humans:
                    prepared.load_partner_policy(human_name, env)
            renderer = prepared.make_renderer()
            try:
                env.reset(seed=0)
            except Exception as exc:
                raise ConfigError(
                    [sentence(f"{where}: env.reset(seed=0) failed: {exception_text(exc)}", "Fix the env.")],
                    title=f"Game scene {scene.scene_id!r} cannot run",
                ) from exc
            try:
                frame = renderer.render(raw)
            except IgymError as exc:
                raise ConfigError(
                    [sentence(f"{where}: rendering the first frame failed: {exc}")],
                    title=f"Game scene {scene.scene_id!r} cannot run",
                ) from exc
            except Exception as exc:
                raise ConfigError(
                    [
                        sentence(
                            f"{where}: rendering the first frame with renderer {scene.renderer!r} "
                            f"failed: {exception_text(exc)}",
                            "Fix render_fn (or env.render()), or choose the renderer that fits what "
                            "the env draws: 'objects' for render objects, 'rgb_array' for pixels.",
                        )
                    ],
                    title=f"Game scene {scene.scene_id!r} cannot run",
                ) from exc
            del frame
            return prepared
        finally:
            _close(env)

    # --- used by the coordinator (igym_core.runtime.interface.PreparedGame) -------------------
    @property
    def scene_id(self) -> str:
        return self.scene.scene_id

    @property
    def runtime(self) -> str:
        return self.scene.runtime

    @property
    def partner_description(self) -> str | None:
        if self.partner is None:
            return None
        config = self.partner[0]
        return f"partner:{getattr(type(config), 'kind', type(config).__name__)}"

    @property
    def same_group_as(self) -> str | None:
        return self.scene.same_group_as

    @property
    def abandon_after_s(self) -> float:
        return self.scene.abandon_after_s

    @property
    def same_group_fallback(self) -> str:
        return self.scene.same_group_fallback

    @property
    def matchmaker(self) -> str:
        return self.scene.matchmaker

    @property
    def waiting_room(self) -> WaitingRoom:
        return self.scene.waiting_room

    @property
    def reconnect_grace_s(self) -> float:
        return self.scene.reconnect_grace_s

    @property
    def fps(self) -> int:
        return self.scene.fps

    @property
    def max_steps(self) -> int | None:
        return self.scene.max_steps

    @property
    def countdown_s(self) -> float:
        return self.scene.countdown_s

    @property
    def input_mode(self) -> str:
        return self.scene.input_mode

    @property
    def on_abandon(self) -> str:
        return self.scene.on_abandon

    @property
    def abandon_message(self) -> str:
        return self.scene.abandon_message

    @property
    def on_restart(self) -> str:
        return self.scene.on_restart

    @property
    def num_episodes(self) -> int:
        return self.scene.num_episodes

    def episode_seed(self, instance: int, participant_ids: Sequence[str], episode: int) -> int:
        """The env seed of ``episode`` (1-based) in a game of this scene played by these people."""
        from igym_core.envs import episode_seed

        key = (
            self.scene.scene_id
            if self.scene.seed_mode == "shared"
            else f"{self.scene.scene_id}#{instance}#{'+'.join(sorted(participant_ids))}"
        )
        return episode_seed(self.experiment_seed, key, episode)

    # --- used by runtimes ---------------------------------------------------------------------
    def make_env(self) -> tuple[Any, Any]:
        """A fresh ``(parallel env, the object the factory returned)``."""
        return _make_env(
            self.env_factory, self.scene.env_kwargs, self.single_agent_id, f"scene {self.scene.scene_id!r}"
        )

    def make_renderer(self) -> Any:
        renderer_type = self.registry.renderers.get(self.scene.renderer)
        return renderer_type(render_fn=self.render_fn)

    def load_partner_policy(self, name: str, env: Any) -> Any:
        """The bot that plays human seat ``name`` when its player has left or is missing."""
        if self.partner is None:
            raise ConfigError(
                [f"scene {self.scene.scene_id!r} has no partner_policy for seat {name!r}"],
                title="No bot can take this seat",
            )
        return self._load(self.partner[0], name, env)

    def load_policy(self, name: str, env: Any) -> Any:
        config, _bot = self.bots[name]
        return self._load(config, name, env)

    def _load(self, config: Any, name: str, env: Any) -> Any:
        from igym_core.policies.spec import load_policy

        agent = self.agent_by_name[name]
        return load_policy(
            config,
            self.registry,
            agent=name,
            action_space=env.action_space(agent),
            observation_space=env.observation_space(agent),
            base_dir=self.base_dir,
        )


def _make_env(
    factory: Callable[..., Any], kwargs: Mapping[str, Any], agent_id: str | None, where: str
) -> tuple[Any, Any]:
    from igym_core.envs import as_parallel_env

    try:
        raw = factory(**kwargs)
    except Exception as exc:
        raise ConfigError(
            [
                sentence(
                    f"{where}: env_factory raised {exception_text(exc)}", "Fix the factory or env_kwargs."
                )
            ],
            title="The game's env cannot be built",
        ) from exc
    try:
        env = as_parallel_env(raw, agent_id=agent_id or "agent_0")
    except IgymError as exc:
        raise ConfigError([f"{where}: {exc}"], title="The game's env does not fit the env contract") from exc
    return env, raw


def _contains(space: Any, action: Any) -> bool:
    import warnings

    try:
        import numpy as np

        if isinstance(action, list):
            values = np.asarray(action)
            dtype = getattr(space, "dtype", None)
            # A list written in the config is float64 to numpy; a float32 Box refuses that dtype even
            # for values it holds, so floats are taken at the space's float precision.
            if dtype is not None and values.dtype.kind == "f" and np.dtype(dtype).kind == "f":
                values = values.astype(dtype)
            action = values
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Box.contains warns "Casting input x" for plain numbers
            return bool(space.contains(action))
    except Exception:
        return False


def _not_installed(where: str, what: str, kind: str, installed: list[str]) -> str:
    return (
        f"{where}: {what} {kind!r} is not installed; installed: {', '.join(sorted(installed)) or 'none'}."
        f"{did_you_mean(kind, installed)} Check the spelling, or install the plugin that provides it "
        "(`igym plugins` lists what is loaded)."
    )


def _action_hint(space: Any) -> str:
    """What an action of ``space`` looks like, and an ``action_mapping`` that fits it."""
    import numpy as np

    name = type(space).__name__
    shape = tuple(getattr(space, "shape", None) or ())
    if name == "Discrete":
        start = int(getattr(space, "start", 0))
        last = start + int(space.n) - 1
        return (
            f"An action of this Discrete space is a whole number from {start} to {last}; e.g. "
            f"action_mapping={{'ArrowLeft': {start}, 'ArrowRight': {last}}}, default_action={start}."
        )
    if name == "Box":
        low = np.broadcast_to(np.asarray(space.low, dtype=float), shape)
        high = np.broadcast_to(np.asarray(space.high, dtype=float), shape)
        rest = np.clip(np.zeros(shape), low, high)
        left, right = rest.copy(), rest.copy()
        if rest.size:
            left.flat[0], right.flat[0] = np.maximum(low.flat[0], -1.0), np.minimum(high.flat[0], 1.0)
        return (
            f"An action of this Box space is an array of shape {shape} (dtype {space.dtype}), each "
            f"value within the bounds, not a single number: map each key to a list of that shape, "
            f"e.g. action_mapping={{'ArrowLeft': {left.tolist()}, 'ArrowRight': {right.tolist()}}}, "
            f"default_action={rest.tolist()}; or wrap the env so that its action space is Discrete "
            "(a gymnasium.ActionWrapper whose action(i) returns one array per key) and map keys "
            "to whole numbers."
        )
    if name == "MultiDiscrete":
        nvec = [int(n) for n in np.asarray(space.nvec).ravel()]
        return (
            f"An action of this MultiDiscrete space is a list of {len(nvec)} whole numbers, the i-th "
            f"below {nvec}[i]; e.g. default_action={[0] * len(nvec)}."
        )
    if name == "MultiBinary":
        return (
            f"An action of this MultiBinary space is an array of shape {shape} of 0s and 1s; e.g. "
            f"default_action={[0] * (shape[0] if len(shape) == 1 else 1)}."
        )
    return f"Map each key to a value that {name}.contains() accepts, e.g. one from action_space.sample()."


def _describe(config: Any) -> str:
    kind = getattr(type(config), "kind", "policy")
    target = getattr(config, "target", None) or getattr(config, "path", None)
    if target is None:
        return kind
    if callable(target):
        from igym_core.envs import callable_ref

        target = callable_ref(target)
    return f"{kind}:{target}"


def _close(env: Any) -> None:
    try:
        env.close()
    except Exception:
        log.debug("env_close_failed")
