"""Client → server messages, decoded strictly: a wrong type is an error, never coerced.

The built-in messages are defined here. A runtime adds its own (``RuntimeMessage`` subclasses in
its ``messages``, see ``igym_core.runtime.interface``): each app decodes with a
:class:`MessageDecoder` built from its plugin registry (:meth:`MessageDecoder.for_runtimes`), which
refuses a ``type`` declared twice. :func:`decode_client_message` knows the built-ins only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Union

import attrs
import msgpack
import msgspec

from igym_core.errors import PluginError, ProtocolError
from igym_core.protocol.server_messages import encode

if TYPE_CHECKING:
    from igym_core.runtime.interface import RuntimeMessage

__all__ = [
    "PAGE_EVENTS",
    "PROTOCOL_VERSION",
    "ClientMessage",
    "Draft",
    "GameReady",
    "Hello",
    "Input",
    "MessageDecoder",
    "PageEvent",
    "Ping",
    "Submit",
    "decode_client_message",
    "encode",
    "game_id_field",
    "int_field",
]

PROTOCOL_VERSION = 1
MAX_INPUT_KEYS = 16
MAX_KEY_LENGTH = 32
_MAX_GAME_ID = 64


@attrs.frozen
class ClientMessage:
    type: ClassVar[str] = "message"


@attrs.frozen
class Hello(ClientMessage):
    type: ClassVar[str] = "hello"
    protocol: int
    token: str | None
    params: dict[str, str]


@attrs.frozen
class Draft(ClientMessage):
    type: ClassVar[str] = "draft"
    seq: int
    position: int
    answers: dict[str, Any]


@attrs.frozen
class Submit(ClientMessage):
    type: ClassVar[str] = "submit"
    seq: int
    position: int
    answers: dict[str, Any]


@attrs.frozen
class Ping(ClientMessage):
    type: ClassVar[str] = "ping"
    seq: int
    t: float


#: What a page reports about itself (``page_event``): tab, window focus and full screen changes.
PAGE_EVENTS = frozenset({"hidden", "visible", "blur", "focus", "fullscreen_enter", "fullscreen_exit"})


@attrs.frozen
class PageEvent(ClientMessage):
    """The page was hidden/shown, lost/regained focus, or entered/left full screen, at ``t``
    (the page's clock, epoch ms)."""

    type: ClassVar[str] = "page_event"
    event: str
    t: float


def _page_event(data: Mapping[str, Any]) -> PageEvent:
    event = data.get("event")
    if event not in PAGE_EVENTS:
        raise ProtocolError(
            "bad_message", f"'event' must be one of {', '.join(sorted(PAGE_EVENTS))}; got {str(event)[:40]!r}"
        )
    return PageEvent(event=str(event), t=_number(data, "t"))


@attrs.frozen
class GameReady(ClientMessage):
    type: ClassVar[str] = "game_ready"
    game_id: str


@attrs.frozen
class Input(ClientMessage):
    """Held keys (``keys``, held mode) or key presses since the last message (``press``)."""

    type: ClassVar[str] = "input"
    game_id: str
    seq: int
    keys: tuple[str, ...] | None
    press: tuple[str, ...] | None


def int_field(data: Mapping[str, Any], key: str) -> int:
    """``data[key]`` if it is an integer within ±2**53 (not a bool); else ``ProtocolError``."""
    return _int(data, key)


def game_id_field(data: Mapping[str, Any]) -> str:
    """``data["game_id"]`` if it is a string of 1 to 64 characters; else ``ProtocolError``."""
    return _game_id(data)


def number_field(data: Mapping[str, Any], key: str) -> float:
    """``data[key]`` if it is an int or float (not a bool), as a float; else ``ProtocolError``."""
    return _number(data, key)


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("bad_message", f"'{key}' must be an integer, got {type(value).__name__}")
    if not -(2**53) <= value <= 2**53:
        raise ProtocolError("bad_message", f"'{key}' is out of range")
    return value


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError("bad_message", f"'{key}' must be a number, got {type(value).__name__}")
    return float(value)


#: A page's reported delay above this is nonsense (the server forgets unanswered probes long before).
def _answers(data: Mapping[str, Any]) -> dict[str, Any]:
    value = data.get("answers")
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ProtocolError("bad_message", "'answers' must be a map with string keys")
    return value


def _hello(data: Mapping[str, Any]) -> Hello:
    protocol = _int(data, "protocol")
    token = data.get("token")
    if token is not None and (not isinstance(token, str) or len(token) > 128):
        raise ProtocolError("bad_message", "'token' must be a string of at most 128 characters or null")
    # How many parameters and how long they may be are settings, checked by the study (which
    # refuses the participant with a message the page shows); here only their types.
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ProtocolError("bad_message", "'params' must be a map of strings to strings")
    for key, value in params.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ProtocolError("bad_message", "'params' keys and values must be strings")
    return Hello(protocol=protocol, token=token, params=dict(params))


def _game_id(data: Mapping[str, Any]) -> str:
    value = data.get("game_id")
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_GAME_ID:
        raise ProtocolError("bad_message", f"'game_id' must be a string of 1 to {_MAX_GAME_ID} characters")
    return value


def _key_list(data: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_INPUT_KEYS:
        raise ProtocolError("bad_message", f"'{name}' must be a list of at most {MAX_INPUT_KEYS} keys")
    for key in value:
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
            raise ProtocolError(
                "bad_message", f"each key in '{name}' must be a string of 1 to {MAX_KEY_LENGTH} characters"
            )
    return tuple(value)


def _input(data: Mapping[str, Any]) -> Input:
    keys = _key_list(data, "keys")
    press = _key_list(data, "press")
    if (keys is None) == (press is None):
        raise ProtocolError("bad_message", "an 'input' message carries either 'keys' or 'press'")
    return Input(game_id=_game_id(data), seq=_int(data, "seq"), keys=keys, press=press)


_DECODERS: dict[str, Callable[[Mapping[str, Any]], ClientMessage]] = {
    "hello": _hello,
    "draft": lambda d: Draft(seq=_int(d, "seq"), position=_int(d, "position"), answers=_answers(d)),
    "submit": lambda d: Submit(seq=_int(d, "seq"), position=_int(d, "position"), answers=_answers(d)),
    "ping": lambda d: Ping(seq=_int(d, "seq"), t=_number(d, "t")),
    "input": _input,
    "game_ready": lambda d: GameReady(game_id=_game_id(d)),
    "page_event": lambda d: _page_event(d),
}


# Game messages arrive many times a second from every player (a key change every few ticks), so
# they are first offered to a msgspec decoder that parses and checks them in C (an input message
# in 1.55 µs instead of the general decoder's 2.70, measured interleaved). Whatever it does not
# accept (another message type, a field of the wrong type, too long, missing, ...) goes to the
# general decoder, which accepts or names the problem; what it accepts, the general decoder
# accepts too, with an equal result (tested).
_Key = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_LENGTH)]
_Keys = Annotated[list[_Key], msgspec.Meta(max_length=MAX_INPUT_KEYS)]
_GameId = Annotated[str, msgspec.Meta(min_length=1, max_length=_MAX_GAME_ID)]


class _InputWire(msgspec.Struct, tag_field="type", tag="input"):
    game_id: _GameId
    seq: Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)]
    keys: _Keys | None = None
    press: _Keys | None = None


class _GameReadyWire(msgspec.Struct, tag_field="type", tag="game_ready"):
    game_id: _GameId


_GAME_MESSAGE = msgspec.msgpack.Decoder(_InputWire | _GameReadyWire)


def decode_client_message(frame: bytes) -> ClientMessage:
    """Decode one binary frame of a built-in message type; raise :class:`ProtocolError` with a
    wire code on any problem (a server decodes with its app's :class:`MessageDecoder`)."""
    return _BUILT_IN.decode(frame)


class MessageDecoder:
    """Decodes the built-in messages and those of the installed runtimes (one per app)."""

    def __init__(self, runtime_messages: Mapping[str, type[RuntimeMessage]] | None = None) -> None:
        self._runtime = MappingProxyType(dict(runtime_messages or {}))
        # Runtime messages with a ``wire`` struct join the built-in game messages in one msgspec
        # decoder (see ``RuntimeMessage.wire``): a frame of any of them is parsed once, in C.
        self._by_wire: dict[type, type[RuntimeMessage]] = {}
        for name, message in self._runtime.items():
            wire = message.wire
            if wire is not None:
                problem = wire_problem(wire, name)
                if problem:
                    raise PluginError(f"{message.__module__}.{message.__qualname__}: {problem}")
                self._by_wire[wire] = message
        self._fast = (
            msgspec.msgpack.Decoder(Union[(_InputWire, _GameReadyWire, *self._by_wire)])
            if self._by_wire
            else _GAME_MESSAGE
        )

    @classmethod
    def for_runtimes(cls, runtimes: Iterable[tuple[str, Iterable[type[RuntimeMessage]]]]) -> MessageDecoder:
        """A decoder for the messages of these ``(runtime kind, message types)``.

        Raises :class:`PluginError` naming both declarations when a ``type`` is declared twice (by
        two runtimes, or by a runtime and the built-in protocol).
        """
        owners: dict[str, tuple[str, type[RuntimeMessage]]] = {}
        problems: list[str] = []
        for kind, messages in runtimes:
            for message in messages:
                where = f"runtime {kind!r} ({message.__module__}.{message.__qualname__})"
                name = message.__dict__.get("type")
                if not isinstance(name, str) or not name:
                    problems.append(f"{where} declares a message without a 'type'; give the class one.")
                elif name in _DECODERS:
                    problems.append(
                        f"{where} declares message type {name!r}, which is a built-in message type; "
                        "rename the runtime's message type."
                    )
                elif name in owners and owners[name][1] is not message:
                    other_kind, other = owners[name]
                    problems.append(
                        f"message type {name!r} is declared twice: by runtime {other_kind!r} "
                        f"({other.__module__}.{other.__qualname__}) and by {where}; rename one, or block "
                        "one of the plugins (IGYM_BLOCK_PLUGINS)."
                    )
                else:
                    owners[name] = (kind, message)
        if problems:
            raise PluginError(" ".join(problems))
        return cls({name: message for name, (_kind, message) in owners.items()})

    def types(self) -> frozenset[str]:
        """Every message type this decoder accepts."""
        return frozenset(_DECODERS) | frozenset(self._runtime)

    def decode(self, frame: bytes) -> ClientMessage:
        """Decode one binary frame; raise :class:`ProtocolError` with a wire code on any problem."""
        try:
            wire = self._fast.decode(frame)
        except Exception:  # not a valid game message (or nested too deep for msgspec: RecursionError)
            return self._decode(frame)
        kind = type(wire)
        if kind is _GameReadyWire:
            return GameReady(game_id=wire.game_id)
        if kind is not _InputWire:  # a runtime's message (``RuntimeMessage.wire``)
            message_type = self._by_wire[kind]
            try:
                message = message_type.from_wire(wire, frame)
            except Exception:  # the general decoder names the problem (or accepts it after all)
                message = None
            return message if isinstance(message, message_type) else self._decode(frame)
        keys, press = wire.keys, wire.press
        if (keys is None) == (press is None):
            return self._decode(frame)  # which names the problem
        return Input(
            game_id=wire.game_id,
            seq=wire.seq,
            keys=None if keys is None else tuple(keys),
            press=None if press is None else tuple(press),
        )

    def _decode(self, frame: bytes) -> ClientMessage:
        """The general decoder: every message type, and an error that names the problem."""
        data = _unpack(frame)
        kind = data["type"]
        decoder = _DECODERS.get(kind)
        if decoder is not None:
            return decoder(data)
        message_type = self._runtime.get(kind)
        if message_type is None:
            raise ProtocolError("unknown_type", f"unknown message type {kind[:40]!r}")
        try:
            message = message_type.decode(data)
        except ProtocolError:
            raise
        except Exception as exc:  # a runtime's decode that does not check a field: still a bad message
            raise ProtocolError(
                "bad_message", f"the {kind!r} message could not be decoded ({type(exc).__name__})"
            ) from None
        if not isinstance(message, message_type):
            raise ProtocolError("bad_message", f"the {kind!r} message could not be decoded")
        return message


def wire_problem(wire: Any, name: str) -> str | None:
    """What is wrong with ``wire`` as the fast-path struct of runtime message ``name`` (None: nothing)."""
    config = getattr(wire, "__struct_config__", None)
    if not (isinstance(wire, type) and issubclass(wire, msgspec.Struct)) or config is None:
        return f"its 'wire' must be a msgspec.Struct class, got {wire!r:.80}"
    if config.tag_field != "type" or config.tag != name:
        return (
            f"its 'wire' struct must be declared with tag_field='type', tag={name!r}; it has "
            f"tag_field={config.tag_field!r}, tag={config.tag!r}"
        )
    return None


def _unpack(frame: bytes) -> dict[Any, Any]:
    try:
        data = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:
        raise ProtocolError("bad_frame", f"the frame is not valid msgpack ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_message", "a message must be a msgpack map with a 'type' key")
    if not isinstance(data.get("type"), str):
        raise ProtocolError("bad_message", "a message must have a string 'type'")
    return data


def _decode(frame: bytes) -> ClientMessage:
    """The general decoder of the built-in messages (tests compare the fast path with it)."""
    return _BUILT_IN._decode(frame)


_BUILT_IN = MessageDecoder()
