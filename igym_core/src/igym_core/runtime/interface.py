"""The runtime interface: where and how a game scene's environment steps.

A runtime is registered by kind (``server`` is built in) and asked by the core to run the games of
scenes whose :meth:`~igym_core.scenes.interface.SceneConfig.game_runtime` names it. The core owns
participants, sockets and records; a runtime talks to them only through the :class:`GameHost` it is
given, so that a runtime plugin never needs the study's internals.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

import attrs

from igym_core.errors import ProtocolError
from igym_core.protocol.messages import ClientMessage

if TYPE_CHECKING:
    from igym_core.plugins.manager import IgymPluginManager
    from igym_core.scenes.interface import SceneConfig
    from igym_core.settings import Settings

__all__ = [
    "Continuation",
    "FrameSink",
    "GameExit",
    "GameHandle",
    "GameHost",
    "GameInfo",
    "PreparedGame",
    "Runtime",
    "RuntimeCheck",
    "RuntimeMessage",
    "Seat",
    "WaitingRoomRules",
]


@runtime_checkable
class WaitingRoomRules(Protocol):
    """What the coordinator reads of a game scene's waiting room (see ``GymScene.waiting_room``)."""

    message: str
    show_count: bool
    timeout_s: float
    on_timeout: str
    """``continue``, ``goto``, ``message`` or ``redirect``."""
    timeout_scene: str | None
    timeout_redirect_url: str | None

    def timeout_text(self) -> str:
        """The message shown when the wait ran out (``on_timeout="message"``)."""
        ...


@runtime_checkable
class PreparedGame(Protocol):
    """A game scene checked at start and ready to create games: all that core and runtimes read of it.

    A scene type whose :meth:`~igym_core.scenes.interface.SceneConfig.game_runtime` names a runtime
    returns one from ``prepare`` (the built-in ``gym`` scene returns a ``PreparedGym``). Core reads a
    game scene only through this, never through ``getattr``.
    """

    # --- the scene ----------------------------------------------------------------------------
    scene_id: str
    runtime: str
    """The runtime kind that runs the scene's games."""
    runtime_options: Any
    """The scene's ``runtime_options``: structured into the runtime's ``options_type`` when it
    declares one, else the mapping as the researcher wrote it."""

    # --- what the coordinator needs -------------------------------------------------------------
    human_seats: tuple[str, ...]
    bot_seats: Mapping[str, str]
    """Bot agent → a short description of its policy (recorded with the game)."""
    partner_description: str | None
    """Describes the bot that takes a human seat (a partner who left or is missing), if any."""
    num_episodes: int
    on_restart: str
    """``resume``, ``restart`` or ``skip``: what a game cut off by a server restart becomes."""
    on_abandon: str
    """``end`` (the study ends for its players) or ``continue``: what an abandoned game means."""
    abandon_message: str
    same_group_as: str | None
    """An earlier game scene whose group plays this one together, or None."""
    same_group_fallback: str
    matchmaker: str
    waiting_room: WaitingRoomRules
    reconnect_grace_s: float

    def episode_seed(self, instance: int, participant_ids: Sequence[str], episode: int) -> int:
        """The env seed of ``episode`` (1-based) in a game of this scene played by these people."""
        ...

    # --- what runtimes need -----------------------------------------------------------------------
    fps: int
    max_steps: int | None
    countdown_s: float
    input_mode: str
    """``held`` or ``press``."""
    action_table: Any
    """Key combination → action (``igym_core.builtin.gym_keys.ActionTable``)."""
    agents: tuple[Any, ...]
    """The env's possible agents, as the env names them."""
    callbacks: Mapping[str, Any]
    """The scene's callbacks by name (``on_episode_end``, ``on_game_end``, …; None where unset), for
    ``igym_core.runtime.notify.call_scene_callback``."""
    abandon_after_s: float
    """How long a game may have nobody connected before it ends ``abandoned``."""

    def make_env(self) -> tuple[Any, Any]:
        """A fresh ``(parallel env, the object the factory returned)``."""
        ...

    def make_renderer(self) -> Any:
        """A fresh renderer of the scene's kind (``igym_core.rendering.interface``)."""
        ...

    def load_policy(self, name: str, env: Any) -> Any:
        """The bot of seat ``name`` (a policy with ``act``)."""
        ...

    def load_partner_policy(self, name: str, env: Any) -> Any:
        """The bot that plays human seat ``name`` when its player has left or is missing."""
        ...


@attrs.frozen
class RuntimeMessage(ClientMessage):
    """A client → server message a runtime adds to the protocol (one subclass per ``type``).

    Declare it in the runtime's :attr:`Runtime.messages`: the server then decodes it like the
    built-in messages (a frame of at most ``IGYM_MAX_MESSAGE_BYTES``, within the connection's
    budgets), checks that the participant plays ``game_id``, and hands it to that game's
    :meth:`GameHandle.player_message`. ``decode`` gets the msgpack map as the client sent it and
    must check every field strictly (types, sizes, ranges), raising
    ``ProtocolError("bad_message", why)`` on any problem: the participant's page gets an error
    reply naming it. Anything else ``decode`` raises is a bug, also answered with ``bad_message``.
    """

    type: ClassVar[str] = "runtime_message"
    game_id: str

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Self:
        """The message from the client's map (``data["type"] == cls.type``)."""
        raise NotImplementedError(f"{cls.__qualname__} does not define decode()")

    #: Optional fast path for a message that arrives often: a ``msgspec.Struct`` declared with
    #: ``tag_field="type", tag=cls.type``. The server first decodes every frame straight into it (in
    #: C, with the built-in game messages); a frame that does not fit it goes to ``decode`` as above,
    #: so the replies to bad messages stay those of ``decode``. None: ``decode`` only.
    wire: ClassVar[type[Any] | None] = None

    @classmethod
    def from_wire(cls, wire: Any, frame: bytes) -> Self | None:
        """The message from a frame decoded into :attr:`wire` (``frame``: the frame's bytes); None,
        or an exception, hands the frame to ``decode`` instead (which names the problem)."""
        return None


@attrs.frozen
class RuntimeCheck:
    """A runtime's answer to ``igym check`` for one scene (see :meth:`Runtime.check_scene`)."""

    problems: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    """Each says what is wrong and what to add; any problem refuses the experiment."""
    notes: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    """Lines ``igym check`` prints (which packages the browser needs and from where, say)."""
    script_sources: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    """Sources the participant page's ``script-src`` must allow for this scene beyond igym's own
    (only ``blob:`` is accepted: a Unity build whose loader runs its framework from a blob: URL).
    The page's Content-Security-Policy is widened for this experiment only."""


@attrs.frozen(kw_only=True)
class Seat:
    """One agent of a game: a human (``participant_id``) or a bot (``policy``, a description)."""

    agent: str
    participant_id: str | None = None
    policy: str | None = None

    @property
    def is_human(self) -> bool:
        return self.participant_id is not None


@attrs.frozen(kw_only=True)
class GameInfo:
    """What hooks and researcher callbacks learn about a game."""

    game_id: str
    scene_id: str
    instance: int
    seats: tuple[Seat, ...]
    experiment_id: str

    @property
    def participant_ids(self) -> tuple[str, ...]:
        return tuple(s.participant_id for s in self.seats if s.participant_id is not None)


@attrs.frozen(kw_only=True)
class Continuation:
    """A game that takes over from one a server restart cut off (the scene's ``on_restart``)."""

    game_id: str
    """The interrupted game."""
    from_episode: int
    """The first episode the new game plays: the interrupted one (``resume``), or 1 (``restart``)."""
    last_episode: Mapping[str, Any] | None = attrs.field(default=None, eq=False)
    """The last ``episodes`` row the interrupted game (or the one it continued) wrote itself, for a
    runtime's running totals (``score_total``); None when there is none."""


@attrs.frozen(kw_only=True)
class GameExit:
    """Where the players of a game that could not be played go instead of the next scene.

    ``outcome`` marks their study (``finished`` record; ``EndScene.codes_by_outcome`` gives it a
    code); ``to_scene``: a later scene of their sequence; ``to_end``: the study's end scene. Neither:
    the next scene.
    """

    outcome: str
    to_scene: str | None = None
    to_end: bool = False


class FrameSink(Protocol):
    """A participant's socket as a game sees it (see ``igym_core.server.outbox``)."""

    connection_id: int

    def offer(self, frame: bytes) -> bool:
        """Send ``frame`` now unless the socket is still busy with an earlier one; False if dropped."""
        ...


class GameHost(Protocol):
    """What the core offers a running game."""

    settings: Settings
    plugins: IgymPluginManager
    experiment_id: str
    experiment_seed: int

    def frame_sink(self, participant_id: str) -> FrameSink | None:
        """The participant's current socket for frames, or None while they are not connected."""
        ...

    async def send(self, participant_id: str, message: Mapping[str, Any]) -> None:
        """Send a message to the participant if connected (dropped silently otherwise)."""
        ...

    def record(self, record_type: str, row: Mapping[str, Any]) -> None:
        """Write a record (``steps``, ``episodes``, ``games``) through the experiment's sinks."""
        ...

    def record_many(
        self, record_type: str, rows: Sequence[Mapping[str, Any]], *, json_plain: bool = False
    ) -> None:
        """``record`` for each of ``rows`` (one record type, in order) in one call: cheaper per row
        for a batch (the rows of many steps that arrived together). ``json_plain``: every value in
        the rows is a string, int, bool, None, a float that is 0 or of magnitude 1e-4 to below 1e16,
        or a list or string-keyed dict of those (the JSONL sink then skips its check of each row)."""
        ...

    def game_ended(self, game_id: str, reason: str, exit: GameExit | None = None) -> None:
        """Tell the core the game is over; it moves every player on to their next scene (or where
        ``exit`` says)."""
        ...

    def player_left(self, game: GameInfo, participant_id: str, outcome: str) -> None:
        """A player of a multiplayer game stayed away past the scene's ``reconnect_grace_s``.

        ``outcome``: ``bot`` (a bot plays their seat now) or ``end`` (the game ends). Recorded in
        ``matches`` and announced with ``igym_on_partner_left``.
        """
        ...

    def player_returned(self, game: GameInfo, participant_id: str) -> None:
        """A player whose seat a bot had taken is back and plays it again."""
        ...

    def add_participant_values(
        self, participant_id: str, values: Mapping[str, Any], *, accumulate: bool = False
    ) -> None:
        """Add ``values`` (JSON) to the participant's values, for their later scenes and the data:
        a score or bonus the server computed. ``accumulate``: each number is added to the value the
        participant already has (none: 0), so that a scene played twice sums its plays. Recorded
        (``sessions``: ``values_added`` with the resulting ``values`` and, when accumulating, this
        call's ``increments``); a restart keeps them. Call it before ``game_ended`` for the next
        scene to see them."""
        ...


class GameHandle(ABC):
    """A running game, as the core drives it."""

    info: GameInfo

    @abstractmethod
    def player_ready(self, participant_id: str) -> None:
        """The participant's page has loaded the scene and its assets."""

    @abstractmethod
    def player_input(
        self, participant_id: str, *, keys: Sequence[str] | None, press: Sequence[str] | None
    ) -> None:
        """Keys held now (held mode) or presses since the last message (press mode)."""

    @abstractmethod
    def player_connected(self, participant_id: str) -> None:
        """The participant has a new socket (reload or reconnect): send them a full frame next."""

    @abstractmethod
    def status_message(self, participant_id: str) -> dict[str, Any]:
        """The ``game_status`` message for this participant now."""

    @abstractmethod
    async def stop(self, reason: str) -> None:
        """End the game early (server shutdown): record what happened, then return."""

    def live_stats(self) -> Mapping[str, Any]:
        """What the admin dashboard shows of the game now (called about once a second; keep it
        cheap): ``phase``, ``ticks`` (a counter the dashboard turns into frames per second),
        ``fps`` (the target), ``rtt_ms`` (participant id → the last round-trip time measured,
        or None). The default: nothing (the dashboard shows the game without them)."""
        return {}

    async def end_early(self, reason: str) -> None:
        """An admin ended the game (a stuck game): apply the scene's partner-left ending (the game
        ends with the scene's partner-left message and its players go on as when a partner left
        and the scene says ``on_partner_left="end"``), recording ``reason``. The default stops the
        game as at a server shutdown."""
        await self.stop(reason)

    def player_message(self, participant_id: str, message: RuntimeMessage) -> None:
        """A message of one of the runtime's :attr:`Runtime.messages` for this game, already
        decoded and validated, from one of its players. The default refuses it."""
        raise ProtocolError(
            "bad_message", f"This game takes no {message.type!r} messages (its runtime does not handle them)."
        )


class Runtime(ABC):
    """Runs game scenes: on the server at a tick rate, in the browser, or peer to peer.

    One instance per app and kind, created on first use. ``start``/``stop`` bracket the app's life.
    """

    kind: ClassVar[str]
    messages: ClassVar[tuple[type[RuntimeMessage], ...]] = ()
    """The client → server message types this runtime's games take (see :class:`RuntimeMessage`).
    A ``type`` that is a built-in message's or another runtime's refuses the server's start."""
    client_module: ClassVar[str | None] = None
    """The URL of the runtime's browser module (``/plugins/<plugin>/<file>.js``, served as a client
    asset), which registers it in the client's runtime registry; None for a runtime the client
    has built in. Game scenes of this runtime name it in their client view (``runtime_module``)."""
    options_type: ClassVar[type | None] = None
    """An attrs class for the scene's ``runtime_options``: structured with the app's converter at
    start (a wrong key or value refuses the experiment with its ``$.scenes[i].runtime_options``
    path), and found structured in :attr:`PreparedGame.runtime_options`. None: the options are
    passed as the researcher wrote them (and :meth:`check_scene` says which it accepts)."""

    @classmethod
    def check_scene(cls, scene: SceneConfig, prepared: PreparedGame, settings: Settings) -> RuntimeCheck:
        """Can this runtime run ``scene`` (``igym check`` and ``igym run`` ask, at start)?

        Called once per game scene after it was prepared. Return the problems (each saying what
        is wrong and what to add or change: any problem refuses the experiment) and notes for
        ``igym check`` to print. The default accepts the scene when it has no ``runtime_options``
        and this runtime declares no ``options_type``.
        """
        if cls.options_type is None and prepared.runtime_options:
            return RuntimeCheck(
                problems=(
                    f"$.runtime_options: the {cls.kind!r} runtime takes no options; got "
                    f"{', '.join(sorted(map(str, prepared.runtime_options)))}. Remove runtime_options.",
                )
            )
        return RuntimeCheck()

    @classmethod
    def scene_view(cls, scene: SceneConfig, prepared: PreparedGame) -> Mapping[str, Any] | None:
        """What the runtime's client module needs of ``scene`` beyond the scene's own client view
        (a browser runtime: the env's spec, say), sent in the scene message as ``runtime_view``;
        msgpack-ready. Called once per game scene at start, after :meth:`check_scene` accepted
        it. None (the default): nothing."""
        return None

    def __init__(self, host: GameHost) -> None:
        self.host = host

    async def start(self) -> None:  # noqa: B027 (optional: runtimes without services keep it)
        """Start background services (called once, on the event loop, before the first game)."""

    async def stop(self) -> None:  # noqa: B027 (optional: runtimes without services keep it)
        """Stop every game and background service (server shutdown)."""

    def hold_for_saving(self, hold: bool) -> None:  # noqa: B027 (optional: see the docstring)
        """``hold=True``: the study's records cannot be stored and those waiting reached
        ``IGYM_MAX_UNSAVED_BYTES``, so games must stop producing records (pause them, and those
        created from now on, and show their players the saving state); ``hold=False``: storing
        works again, so resume them. A runtime whose games write no records may ignore it."""

    @abstractmethod
    def create_game(
        self,
        *,
        game_id: str,
        scene: SceneConfig,
        prepared: PreparedGame,
        instance: int,
        seats: Sequence[Seat],
        continues: Continuation | None = None,
    ) -> GameHandle:
        """Create and start a game of ``scene`` with these seats; return its handle at once.

        ``continues``: the game a server restart interrupted, which this one continues; it plays
        from episode ``continues.from_episode`` on, and its ``started`` record says so.
        """

    def stats(self) -> dict[str, Any]:
        """Figures for operators and benchmarks (games running, tick lateness, …).

        Called by every ``/stats`` request: keep counters as things happen and summarise timing
        from a bounded structure (``igym_core.runtime.histogram``), so the call costs the same
        however many games ran before.
        """
        return {}
