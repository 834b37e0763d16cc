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

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

from igym_core.builtin.gym_keys import ActionTable
from igym_core.builtin.scene_gym_parts import Asset, Bot, HudView, WaitingRoom
from igym_core.builtin.scene_gym_prepared import PreparedGym
from igym_core.builtin.scene_gym_prepared import _action_hint as _action_hint
from igym_core.builtin.scene_gym_prepared import _contains as _contains
from igym_core.builtin.slow_connection import SlowConnection
from igym_core.config.urls import UrlTemplate
from igym_core.config.validators import FieldError, non_negative, one_of, positive
from igym_core.plugins.markers import hookimpl
from igym_core.scenes.interface import PrepareContext, SceneConfig

if TYPE_CHECKING:
    from cattrs import Converter

__all__ = ["Asset", "Bot", "GymScene", "HudView", "PreparedGym"]


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
    slow_connection: SlowConnection | None = None
    """Warn a player whose round-trip time stays over a limit, then apply the partner-left rule to
    them (:class:`~igym_core.builtin.slow_connection.SlowConnection`); None: only recorded."""
    connection_report_s: float | None = attrs.field(
        default=5.0, validator=attrs.validators.optional([positive, attrs.validators.le(3600)])
    )
    """How often each player's connection is recorded during the game, and once more when it ends: a
    ``connection_stats`` row with the round-trip times, and the frames sent and dropped and their
    bytes (server runtime) or the steps received (browser runtimes). Rows are written at a round-trip
    probe, so never more often than every ``rtt_interval_s``. None: no such rows."""
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
    the ``server`` runtime takes ``step_in_worker``, see docs/games.md "Heavy environments")."""
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
