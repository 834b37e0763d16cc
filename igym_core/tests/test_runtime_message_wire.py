"""A runtime message's fast path (``RuntimeMessage.wire``): frames decoded straight into a msgspec
struct, with every other frame (and every refusal) left to the message's own ``decode``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import attrs
import msgpack
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core.errors import PluginError, ProtocolError
from igym_core.protocol.messages import Input, MessageDecoder, game_id_field
from igym_core.runtime.interface import RuntimeMessage


class _ScoreWire(msgspec.Struct, tag_field="type", tag="score", forbid_unknown_fields=True):
    game_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    points: Annotated[int, msgspec.Meta(ge=0, le=100)]


def _points(data: Mapping[str, Any]) -> int:
    value = data.get("points")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ProtocolError("bad_message", f"'points' must be a whole number to 100, got {value!r:.40}")
    return value


@attrs.frozen
class _Score(RuntimeMessage):
    """Decoded by ``decode`` only (the reference)."""

    type: ClassVar[str] = "score"
    game_id: str
    points: int
    via: str = attrs.field(default="decode", eq=False)

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> _Score:
        if not data.keys() <= {"type", "game_id", "points"}:
            raise ProtocolError("bad_message", "a 'score' has only 'game_id' and 'points'")
        return cls(game_id=game_id_field(data), points=_points(data))


@attrs.frozen
class _FastScore(_Score):
    """The same message with a fast path."""

    type: ClassVar[str] = "score"
    wire: ClassVar[type[Any] | None] = _ScoreWire

    @classmethod
    def from_wire(cls, wire: _ScoreWire, frame: bytes) -> _FastScore | None:
        if wire.points == 13:  # this one is the general decoder's to judge
            return None
        return cls(game_id=wire.game_id, points=wire.points, via="wire")


_REFERENCE = MessageDecoder.for_runtimes([("scores", [_Score])])
_FAST = MessageDecoder.for_runtimes([("scores", [_FastScore])])


def _outcome(decoder: MessageDecoder, frame: bytes) -> tuple[Any, ...]:
    try:
        message = decoder.decode(frame)
    except ProtocolError as exc:
        return ("refused", exc.code, str(exc))
    if isinstance(message, _Score):
        return ("score", message.game_id, message.points)
    return ("other", message)


def test_a_good_frame_takes_the_fast_path_and_a_refusal_reads_as_decode_says() -> None:
    good = msgpack.packb({"type": "score", "game_id": "g-1", "points": 7})
    message = _FAST.decode(good)
    assert (message.game_id, message.points, message.via) == ("g-1", 7, "wire")
    assert _REFERENCE.decode(good).via == "decode"
    # A frame the struct does not take goes to decode, whose reply names the problem.
    bad = msgpack.packb({"type": "score", "game_id": "g-1", "points": 101})
    with pytest.raises(ProtocolError, match="'points' must be a whole number to 100, got 101"):
        _FAST.decode(bad)
    # from_wire may hand a frame it took back to decode.
    handed_back = _FAST.decode(msgpack.packb({"type": "score", "game_id": "g-1", "points": 13}))
    assert handed_back.points == 13 and handed_back.via == "decode"
    # The built-in game messages keep their own fast path beside the runtime's.
    keys = _FAST.decode(msgpack.packb({"type": "input", "game_id": "g-1", "seq": 3, "keys": ["a"]}))
    assert keys == Input(game_id="g-1", seq=3, keys=("a",), press=None)


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=200),
    st.floats(allow_nan=False, width=32),
    st.text(max_size=70),
    st.lists(st.integers(min_value=-(2**63), max_value=2**64 - 1), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(["score", "input", "game_ready", "nope"]),
    fields=st.dictionaries(
        st.sampled_from(["game_id", "points", "seq", "keys", "extra"]), _values, max_size=5
    ),
)
def test_with_or_without_the_fast_path_every_frame_gets_the_same_answer(
    kind: str, fields: dict[str, Any]
) -> None:
    frame = msgpack.packb({"type": kind, **fields})
    assert _outcome(_FAST, frame) == _outcome(_REFERENCE, frame)


def test_a_wire_struct_must_be_tagged_with_its_message_type() -> None:
    class Untagged(msgspec.Struct):
        game_id: str

    class Elsewhere(msgspec.Struct, tag_field="kind", tag="score"):
        game_id: str

    for wire, expected in [
        (Untagged, "tag_field='type', tag='score'"),
        (Elsewhere, "tag_field='kind'"),
        (dict, "must be a msgspec.Struct class"),
    ]:
        fields = {"type": "score", "wire": wire, "__module__": __name__}
        declared = attrs.frozen(type("Declared", (_Score,), fields))
        with pytest.raises(PluginError, match=expected):
            MessageDecoder.for_runtimes([("scores", [declared])])
