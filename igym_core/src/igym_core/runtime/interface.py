"""The runtime interface: where and how a game scene's environment steps.

A runtime is registered by kind (``server`` is built in) and asked by the core to run the games of
scenes whose :meth:`~igym_core.scenes.interface.SceneConfig.game_runtime` names it. The core owns
participants, sockets and records; a runtime talks to them only through the :class:`GameHost` it is
given, so that a runtime plugin never needs the study's internals.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

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
    "Runtime",
    "RuntimeMessage",
    "Seat",
]


@attrs.frozen(kw_only=True)
class RuntimeMessage(ClientMessage):
    """(Temporary, until the seam of issue 18 lands: Contract 2.) A runtime's inbound message."""

    type: ClassVar[str]
    game_id: str

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> RuntimeMessage:
        raise NotImplementedError


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

    def player_message(self, participant_id: str, message: RuntimeMessage) -> None:
        """A runtime message for this game (already decoded and validated)."""
        raise ProtocolError("unknown_type", f"{message.type!r} is not a message of this game's runtime")


class Runtime(ABC):
    """Runs game scenes: on the server at a tick rate, in the browser, or peer to peer.

    One instance per app and kind, created on first use. ``start``/``stop`` bracket the app's life.
    """

    kind: ClassVar[str]
    messages: ClassVar[tuple[type[RuntimeMessage], ...]] = ()
    client_module: ClassVar[str | None] = None

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
        prepared: Any,
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
