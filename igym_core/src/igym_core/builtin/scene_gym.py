"""The built-in game scene: a participant plays an environment with the keyboard, bots fill other seats.

::

    GymScene(
        scene_id="mountain_car",
        env_factory="my_study.envs:make_env",      # or a callable
        render_fn=draw_mountain_car,                # env -> list of render objects
        action_mapping={"ArrowLeft": 0, "ArrowRight": 2},
        default_action=1,
        fps=30, num_episodes=3, max_steps=600,
    )

Which runtime steps the env is ``runtime`` (``"server"`` by default: the server ticks at ``fps``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs
import structlog

from igym_core.builtin.gym_keys import ActionTable
from igym_core.config.converter import exception_text, problems_from_exception, sentence
from igym_core.config.urls import UrlTemplate, check_url_template
from igym_core.config.validators import FieldError, did_you_mean, non_negative, one_of, positive
from igym_core.errors import ConfigError, IgymError
from igym_core.plugins.markers import hookimpl
from igym_core.scenes.interface import PrepareContext, SceneConfig

if TYPE_CHECKING:
    from cattrs import Converter

__all__ = ["Asset", "Bot", "GymScene", "HudView", "PreparedGym"]

log = structlog.get_logger(__name__)


@hookimpl(trylast=True)
def igym_register_scene_types() -> list[type[SceneConfig]]:
    return [GymScene]


def _callable_or_ref(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None and attribute.default is None:
        return
    if callable(value):
        return
    if isinstance(value, str) and ":" in value:
        return
    raise FieldError(
        attribute.name,
        f"expected a callable or a 'module:attribute' string; got {value!r}. Example: "
        "'my_study.envs:make_env'.",
    )


_COLOUR_CHARS = set("0123456789abcdefABCDEF")


def _colour(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not (
        isinstance(value, str) and len(value) == 7 and value[0] == "#" and set(value[1:]) <= _COLOUR_CHARS
    ):
        raise FieldError(attribute.name, f"expected a colour like '#1e293b'; got {value!r}.")


@attrs.frozen(kw_only=True)
class Asset:
    """A file to preload before the game starts, from the scene's ``assets_dir``.

    ``type`` is ``image``, ``spritesheet`` (give ``frame_width`` and ``frame_height``) or ``atlas``
    (give ``atlas_file``, the atlas JSON). Render objects refer to it by ``key``.
    """

    key: str = attrs.field(validator=attrs.validators.min_len(1))
    """The name render objects use for it (``Sprite(image=key)``); unique in the scene."""
    file: str = attrs.field(validator=attrs.validators.min_len(1))
    """The image file, relative to the scene's ``assets_dir``."""
    type: Literal["image", "spritesheet", "atlas"] = attrs.field(
        default="image", validator=one_of("image", "spritesheet", "atlas")
    )
    """``image``, ``spritesheet`` (frames of equal size in a grid) or ``atlas`` (frames described by a JSON
    file)."""
    frame_width: int | None = None
    """A spritesheet's frame width in pixels."""
    frame_height: int | None = None
    """A spritesheet's frame height in pixels."""
    atlas_file: str | None = None
    """An atlas's JSON file (Phaser's JSON hash or array format), relative to ``assets_dir``."""

    def __attrs_post_init__(self) -> None:
        if self.type == "spritesheet" and not (self.frame_width and self.frame_height):
            raise FieldError("frame_width", "a spritesheet needs frame_width and frame_height (pixels).")
        if self.type == "atlas" and not self.atlas_file:
            raise FieldError("atlas_file", "an atlas needs atlas_file, the JSON that describes its frames.")
        for name in ("file", "atlas_file"):
            value = getattr(self, name)
            if value and (value.startswith(("/", "\\")) or ".." in Path(value).parts):
                raise FieldError(name, f"must be a path inside assets_dir, without '..'; got {value!r}.")


@attrs.frozen(kw_only=True)
class Bot:
    """A seat filled by a policy, with frame skip.

    ``policy``: ``"random"``, a callable ``observation -> action``, a class, ``"module:attr"``, or a
    policy config of an installed kind (``{"kind": "onnx", ...}``). The bot chooses an action every
    ``act_every`` ticks; in between it repeats its last action (``between="repeat"``) or plays the
    scene's ``default_action`` (``between="default"``).
    """

    policy: Any
    act_every: int = attrs.field(default=1, validator=positive)
    between: Literal["repeat", "default"] = attrs.field(
        default="repeat", validator=one_of("repeat", "default")
    )


@attrs.frozen(kw_only=True)
class WaitingRoom:
    """Where the players of a multiplayer game scene wait until a group is formed.

    Participants see how many are waiting (unless ``show_count`` is off) and how long they have
    waited. After ``timeout_s`` without a group, ``on_timeout`` applies:

    - ``"continue"``: on to the scene after the game (the study goes on without this game);
    - ``"goto"``: on to the scene ``timeout_scene`` (later in the sequence), e.g. a solo version;
    - ``"message"``: the study ends for them with ``timeout_message`` (no completion code);
    - ``"redirect"``: the page goes to ``timeout_redirect_url`` once their data is on disk, e.g.
      Prolific's "timed out" return link. Placeholders as in an end scene's ``redirect_url``:
      ``{participant_id}`` and the URL parameters the experiment declares (``url_params``), such as
      ``{PROLIFIC_PID}``.
    """

    timeout_s: float = attrs.field(default=300.0, validator=positive)
    """How long a participant waits for a group before ``on_timeout`` applies."""
    show_count: bool = True
    """Show how many participants are waiting ("1 of 2 participants here")."""
    message: str = "Waiting for other participants to join. Please keep this page open."
    """The text of the waiting panel."""
    on_timeout: Literal["continue", "goto", "message", "redirect"] = attrs.field(
        default="continue", validator=one_of("continue", "goto", "message", "redirect")
    )
    """What happens when nobody came in time: ``continue``, ``goto``, ``message`` or ``redirect`` (see
    above)."""
    timeout_scene: str | None = None
    """With ``on_timeout="goto"``: the id of the (later) scene to go to."""
    timeout_message: str | None = None
    """Shown for ``message`` and ``redirect``; by default a text that fits the action."""
    timeout_redirect_url: str | None = None
    """With ``on_timeout="redirect"``: where to send them, with placeholders as in an end scene's
    ``redirect_url``."""

    def timeout_text(self) -> str:
        """What a participant who timed out reads (``timeout_message`` or the default for the action)."""
        if self.timeout_message is not None:
            return self.timeout_message
        if self.on_timeout == "redirect":
            return "No other participant joined in time. Thank you for waiting; we are taking you back now."
        return (
            "No other participant joined in time, so this part of the study cannot go ahead. "
            "Thank you for waiting; you may close this page."
        )

    def __attrs_post_init__(self) -> None:
        if self.on_timeout == "goto" and not self.timeout_scene:
            raise FieldError("timeout_scene", 'on_timeout="goto" needs timeout_scene, the scene to go to.')
        if self.on_timeout == "redirect" and not self.timeout_redirect_url:
            raise FieldError(
                "timeout_redirect_url",
                'on_timeout="redirect" needs timeout_redirect_url, where to send them.',
            )
        if self.timeout_redirect_url:
            check_url_template("timeout_redirect_url", self.timeout_redirect_url)


@attrs.frozen(kw_only=True)
class HudView:
    """What a ``hud`` function sees each tick."""

    episode: int
    num_episodes: int
    step: int
    max_steps: int | None
    seat: str
    returns: Mapping[str, float]
    """Total reward so far this episode, by agent."""
    rewards: Mapping[str, float]
    """Reward of the last step, by agent."""
    env: Any
    """The env the factory returned (not the adapter)."""


@attrs.frozen(kw_only=True)
class GymScene(SceneConfig):
    """A game: the server (or another runtime) steps ``env_factory()``'s env; participants play its
    human seats (one, or several with a waiting room), bots the others."""

    kind: ClassVar[str] = "gym"

    env_factory: Any = attrs.field(validator=_callable_or_ref)
    """A callable returning the env (Gymnasium or PettingZoo parallel), or ``"module:attr"``."""
    env_kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    """Keyword arguments for ``env_factory``."""
    human_seat: str | None = None
    """The agent the participant controls; may be omitted when the env has one agent."""
    human_seats: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    """For games of several people: the agents humans control, one participant each. Arriving
    participants wait in the waiting room until the matchmaker forms a group of this size; the
    first of a group takes the first seat."""
    matchmaker: str = "fifo"
    """How waiting participants are grouped: ``fifo`` (first come, first grouped), ``by_condition``
    (only participants of the same condition together, least-played condition first), or a
    plugin's kind."""
    waiting_room: WaitingRoom = attrs.field(factory=WaitingRoom)
    """The waiting room of a game of several participants (``human_seats``)."""
    reconnect_grace_s: float = attrs.field(default=20.0, validator=non_negative)
    """How long a player of a multiplayer game may be disconnected (a reload, a network hiccup)
    before they count as having left. Their seat plays ``default_action`` meanwhile."""
    on_partner_left: Literal["bot", "end"] = attrs.field(default="end", validator=one_of("bot", "end"))
    """When a player of a multiplayer game has left: ``end`` the game for everyone (with
    ``partner_left_message``; all move on), or let a ``bot`` (``partner_policy``) take the seat."""
    partner_policy: Any = "random"
    """The policy that plays a human seat whose player left (``on_partner_left="bot"``) or is missing
    from a group that stays together (``same_group_fallback="bot"``)."""
    partner_left_message: str = "Your partner has left the game."
    """Shown to everyone when the game ends because a partner left (``on_partner_left="end"``)."""
    same_group_as: str | None = None
    """The id of an earlier game scene: this game is played by the same group, in the same seats."""
    same_group_fallback: Literal["bot", "rematch", "timeout"] = attrs.field(
        default="rematch", validator=one_of("bot", "rematch", "timeout")
    )
    """If a member of that group is gone: ``rematch`` (wait for new partners), ``bot`` (a bot in
    their seat), or ``timeout`` (the waiting room's ``on_timeout``)."""
    rtt_interval_s: float = attrs.field(default=2.0, validator=positive)
    """How often each player's round-trip time is measured during the game (recorded per episode)."""
    policies: Mapping[str, Any] = attrs.field(factory=dict)
    """Agent → policy (or :class:`Bot` for frame skip) for every seat that is not human."""
    fps: int = attrs.field(default=30, validator=[positive, attrs.validators.le(120)])
    """Ticks per second: the env steps this often (1 to 120)."""
    action_mapping: Mapping[str, Any] = attrs.field(factory=dict)
    """Browser key or combination (``"ArrowUp+ArrowLeft"``) → action."""
    default_action: Any = None
    """The action when no mapped key is held (or no press is pending)."""
    input_mode: Literal["held", "press"] = attrs.field(default="held", validator=one_of("held", "press"))
    """``held``: the keys held are sampled at each tick. ``press``: each key press is used at one tick."""
    num_episodes: int = attrs.field(default=1, validator=positive)
    """How many episodes the game plays before the next scene."""
    max_steps: int | None = attrs.field(default=None, validator=attrs.validators.optional(positive))
    """An episode ends after this many steps even if the env has not ended it (``end_reason=max_steps``)."""
    countdown_s: float = attrs.field(default=3.0, validator=non_negative)
    """Countdown shown before each episode."""
    seed_mode: Literal["per_game", "shared"] = attrs.field(
        default="per_game", validator=one_of("per_game", "shared")
    )
    """``per_game``: each game draws its own episode seeds; ``shared``: every game of this scene plays
    the same seeds, so all participants see the same episode starts."""
    renderer: str = "objects"
    """``objects`` (render objects, drawn by Phaser) or ``rgb_array`` (pixels), or a plugin's kind."""
    render_fn: Any = attrs.field(default=None, validator=_callable_or_ref)
    """``env -> render objects`` (or an image for ``rgb_array``); default: ``env.render()``."""
    hud: Any = attrs.field(default=None, validator=_callable_or_ref)
    """``HudView -> str`` shown above the canvas; default: episode and score."""
    header_html: str = ""
    """HTML shown above the canvas."""
    footer_html: str = ""
    """HTML shown below the canvas."""
    canvas_width: int = attrs.field(default=600, validator=[positive, attrs.validators.le(4096)])
    """The canvas width in pixels, the coordinate space of render objects; the page scales the canvas to fit
    the window."""
    canvas_height: int = attrs.field(default=400, validator=[positive, attrs.validators.le(4096)])
    """The canvas height in pixels (see ``canvas_width``)."""
    background: str = attrs.field(default="#0f172a", validator=_colour)
    """The canvas background colour, ``'#rrggbb'``."""
    interpolate: bool = True
    """Let the browser move objects smoothly between frames (their ``tween_ms``); False draws each frame as
    it comes."""
    assets_dir: str | None = None
    """A folder (relative to the experiment file) served to the browser for this scene."""
    assets: tuple[Asset, ...] = attrs.field(default=(), converter=tuple)
    """Images to preload from ``assets_dir`` (see ``Asset``)."""
    record_observations: bool = False
    """Add each agent's observation (the one it acted on) to its step records."""
    ready_timeout_s: float = attrs.field(default=20.0, validator=positive)
    """Start even if a player's page has not reported ready by then."""
    abandon_after_s: float = attrs.field(default=60.0, validator=positive)
    """While no player is connected the game is paused (no steps are played or recorded); if the
    pause lasts this long, the game ends as ``abandoned``. A player who returns sooner resumes it
    after a countdown."""
    on_abandon: Literal["end", "continue"] = attrs.field(default="end", validator=one_of("end", "continue"))
    """What an abandoned game means for its players: ``end`` their study, with ``abandon_message``
    and no completion code (the default: a participant who walked away from the game did not do
    the task), or ``continue`` to the next scene (the end scene then knows the outcome
    ``game_abandoned``)."""
    abandon_message: str = (
        "You left the game for too long, so the study has ended. You will not receive a completion "
        "code. You may close this page."
    )
    on_restart: Literal["resume", "restart", "skip"] = attrs.field(
        default="resume", validator=one_of("resume", "restart", "skip")
    )
    """What a participant whose game was cut off by a server restart plays when they come back:
    ``resume`` (a new game from the interrupted episode, replayed from its start with the same
    seed, then only the remaining episodes), ``restart`` (the whole game again) or ``skip`` (on
    to the next scene). A multiplayer group is not re-formed: its members go back through the
    waiting room and play the whole game (``skip`` moves them on)."""
    runtime: str = "server"
    """Where the env steps: ``server`` (built in: the server ticks at ``fps``) or a plugin's runtime kind."""
    runtime_options: Mapping[str, Any] = attrs.field(factory=dict)
    """Options for the runtime, which checks them at start (each runtime's documentation lists its own;
    the ``server`` runtime takes none)."""
    on_episode_start: Any = attrs.field(default=None, validator=_callable_or_ref)
    """``(game: GameInfo, episode: int, seed: int) -> None``."""
    on_episode_end: Any = attrs.field(default=None, validator=_callable_or_ref)
    """``(game: GameInfo, summary: dict) -> None``; summary is the ``episodes`` record."""
    on_game_end: Any = attrs.field(default=None, validator=_callable_or_ref)
    """``(game: GameInfo, reason: str) -> None``."""

    def __attrs_post_init__(self) -> None:
        try:
            table = ActionTable(self.action_mapping, self.default_action)
        except ValueError as exc:
            raise FieldError("action_mapping", f"{exc}") from None
        if not table.entries and self.input_mode == "press":
            raise FieldError("action_mapping", "press mode needs at least one mapped key.")
        if self.assets and not self.assets_dir:
            raise FieldError("assets_dir", "assets need an assets_dir to be served from.")
        keys = [a.key for a in self.assets]
        if len(set(keys)) != len(keys):
            raise FieldError("assets", "asset keys must be unique.")
        if self.human_seat is not None and self.human_seats:
            raise FieldError(
                "human_seats", "give either human_seat (one player) or human_seats (several), not both."
            )
        if len(set(self.human_seats)) != len(self.human_seats):
            raise FieldError("human_seats", "each seat can be taken by one participant only.")
        if self.same_group_as == self.scene_id:
            raise FieldError("same_group_as", "names this scene itself; name an earlier game scene.")

    # --- SceneConfig ------------------------------------------------------------------------
    @classmethod
    def configure_converter(cls, converter: Converter) -> None:
        """A scene as data that loads back into an equal scene (the run's config snapshot):
        policies as their tables (with ``kind``), bots as ``{policy, act_every, between}`` tables,
        and Python code by import path (or a ``{"not_loadable": ...}`` marker that loading refuses)."""
        from cattrs.gen import make_dict_structure_fn

        from igym_core.envs import callable_data, not_loadable_problem
        from igym_core.policies.interface import PolicyConfig

        def policy_data(value: Any) -> Any:
            if isinstance(value, Bot):
                return {
                    "policy": policy_data(value.policy),
                    "act_every": value.act_every,
                    "between": value.between,
                }
            if isinstance(value, PolicyConfig):
                return converter.unstructure(value, unstructure_as=PolicyConfig)
            if isinstance(value, type) and issubclass(value, PolicyConfig):
                return {"kind": value.kind}
            if isinstance(value, Mapping):
                return dict(value)
            if callable(value) or callable(getattr(value, "act", None)):
                return callable_data(value)
            return value

        def unstructure(scene: GymScene) -> dict[str, Any]:
            data: dict[str, Any] = {}
            for field in attrs.fields(type(scene)):
                value = getattr(scene, field.name)
                if field.name == "policies":
                    value = {agent: policy_data(p) for agent, p in value.items()}
                elif field.name == "partner_policy":
                    value = policy_data(value)
                elif field.name == "assets":
                    value = [converter.unstructure(a) for a in value]
                elif field.name == "waiting_room":
                    value = converter.unstructure(value)
                elif field.name == "human_seats":
                    value = list(value)
                elif field.name in ("env_kwargs", "action_mapping", "runtime_options"):
                    value = dict(value)
                elif callable(value):
                    value = callable_data(value)
                data[field.name] = value
            return data

        def policy_from_data(value: Any, field: str) -> Any:
            """A policy table becomes its config (a bot table a :class:`Bot`), as Python would give it.
            A table that does not structure is left as it is: preparing the scene reports it."""
            problem = not_loadable_problem(value)
            if problem is not None:
                raise FieldError(field, problem)
            if not isinstance(value, Mapping):
                return value
            if "kind" in value:
                try:
                    return converter.structure(dict(value), PolicyConfig)
                except Exception:
                    return value
            if "policy" in value and set(value) <= {"policy", "act_every", "between"}:
                try:
                    return Bot(**{**value, "policy": policy_from_data(value["policy"], f"{field}.policy")})
                except FieldError as exc:
                    if exc.field.startswith(field):
                        raise
                    raise FieldError(f"{field}.{exc.field}", exc.message) from None
                except (TypeError, ValueError) as exc:
                    raise FieldError(field, f"a bot table {{policy, act_every, between}}: {exc}") from None
            return value

        from_table = make_dict_structure_fn(GymScene, converter, _cattrs_forbid_extra_keys=True)

        def structure(value: Any, _type: Any) -> GymScene:
            if isinstance(value, Mapping):
                for name in (
                    "env_factory",
                    "render_fn",
                    "hud",
                    "on_episode_start",
                    "on_episode_end",
                    "on_game_end",
                ):
                    problem = not_loadable_problem(value.get(name))
                    if problem is not None:
                        raise FieldError(name, problem)
            scene = from_table(value, GymScene)
            return attrs.evolve(
                scene,
                policies={
                    agent: policy_from_data(p, f"policies.{agent}") for agent, p in scene.policies.items()
                },
                partner_policy=policy_from_data(scene.partner_policy, "partner_policy"),
            )

        converter.register_unstructure_hook(GymScene, unstructure)
        converter.register_structure_hook_func(lambda t: t is GymScene, structure)

    def url_templates(self) -> dict[str, UrlTemplate]:
        url = self.waiting_room.timeout_redirect_url
        return {"waiting_room.timeout_redirect_url": UrlTemplate(url)} if url else {}

    def scene_references(self) -> dict[str, str]:
        refs = {}
        if self.same_group_as:
            refs["same_group_as"] = self.same_group_as
        if self.waiting_room.on_timeout == "goto" and self.waiting_room.timeout_scene:
            refs["waiting_room.timeout_scene"] = self.waiting_room.timeout_scene
        return refs

    def game_runtime(self) -> str | None:
        return self.runtime

    def served_directory(self, base_dir: Path) -> Path | None:
        return (base_dir / self.assets_dir).resolve() if self.assets_dir else None

    def client_view(self, converter: Converter, base_dir: Path) -> dict[str, Any]:
        table = ActionTable(self.action_mapping, self.default_action)
        url = f"/scene-assets/{self.scene_id}"
        assets = []
        for asset in self.assets:
            spec: dict[str, Any] = {"type": asset.type, "key": asset.key, "url": f"{url}/{asset.file}"}
            if asset.type == "spritesheet":
                spec.update(frame_width=asset.frame_width, frame_height=asset.frame_height)
            if asset.type == "atlas":
                spec["atlas_url"] = f"{url}/{asset.atlas_file}"
            assets.append(spec)
        return {
            "kind": self.kind,
            "scene_id": self.scene_id,
            "fps": self.fps,
            "canvas": {
                "width": self.canvas_width,
                "height": self.canvas_height,
                "background": self.background,
            },
            "input_mode": self.input_mode,
            "keys": sorted(table.keys),
            "header_html": self.header_html,
            "footer_html": self.footer_html,
            "renderer": self.renderer,
            "assets": assets,
            "interpolate": self.interpolate,
            # The runtime's client module (``runtime_module``) is added at start by the server
            # (igym_core/serving.py), which knows the installed runtimes.
            "runtime": self.runtime,
        }

    def prepare(self, ctx: PrepareContext) -> PreparedGym:
        return PreparedGym.build(self, ctx)


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
