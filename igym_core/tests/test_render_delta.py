"""Delta encoding: a client applying every frame (or a keyframe after a drop) sees the server's objects."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core.rendering.delta import DeltaEncoder, FrameDelta, apply_delta
from igym_core.rendering.interface import RenderError
from igym_core.rendering.objects import Circle, Line, Polygon, Rect, RenderObject, Sprite, Text

# --- unit behaviour ------------------------------------------------------------------------------


def rect(oid: str = "r", **fields: Any) -> Rect:
    return Rect(id=oid, **({"width": 10, "height": 10} | fields))


def test_first_frame_adds_everything_then_unchanged_frames_are_empty():
    enc = DeltaEncoder()
    first = enc.update([rect("a"), Circle(id="b", radius=2)])
    assert first.add == [rect("a").to_wire(), Circle(id="b", radius=2).to_wire()]
    assert first.upd == [] and first.rm == []
    again = enc.update([rect("a"), Circle(id="b", radius=2)])
    assert again.is_empty and again.as_message_fields() == {}


def test_changed_fields_only_are_updated_and_defaults_are_sent_explicitly():
    enc = DeltaEncoder()
    enc.update([rect("a", x=5, fill="#ff0000", stroke="#000000")])
    delta = enc.update([rect("a", x=6, fill="#ff0000", stroke="#000000")])
    assert delta.upd == [{"id": "a", "x": 6}] and delta.add == [] and delta.rm == []
    # Back to defaults: to_wire leaves them out, so the update must carry them.
    delta = enc.update([rect("a")])
    assert delta.upd == [{"id": "a", "x": 0, "fill": "#ffffff", "stroke": None}]


def test_a_change_below_wire_precision_sends_nothing():
    enc = DeltaEncoder()
    enc.update([rect("a", x=1.001)])
    assert enc.update([rect("a", x=1.002)]).is_empty


def test_non_permanent_objects_missing_from_a_frame_are_removed():
    enc = DeltaEncoder()
    enc.update([rect("a"), rect("b")])
    delta = enc.update([rect("b")])
    assert delta.rm == ["a"] and delta.add == [] and delta.upd == []
    assert [w["id"] for w in enc.keyframe()] == ["b"]


def test_permanent_objects_persist_until_re_emitted_or_removed():
    enc = DeltaEncoder()
    enc.update([rect("wall", permanent=True), rect("ball")])
    assert enc.update([]).rm == ["ball"]
    assert [w["id"] for w in enc.keyframe()] == ["wall"]
    assert enc.update([rect("wall", permanent=True, fill="#000")]).upd == [{"id": "wall", "fill": "#000000"}]
    enc.remove("wall")  # a single id is not taken as a sequence of characters
    assert enc.keyframe() == []
    assert enc.update([]).rm == ["wall"]
    assert enc.update([]).is_empty


def test_an_object_that_stops_being_permanent_goes_when_omitted():
    enc = DeltaEncoder()
    enc.update([rect("a", permanent=True)])
    assert enc.update([rect("a")]).is_empty  # permanence is not on the wire
    assert enc.update([]).rm == ["a"]


def test_remove_ignores_unknown_ids_and_clear_removes_everything_next_frame():
    enc = DeltaEncoder()
    enc.update([rect("a", permanent=True), rect("b", permanent=True), rect("c")])
    enc.remove(["nope", "a"])
    assert enc.update([rect("b", permanent=True), rect("c")]).rm == ["a"]
    enc.clear()
    assert len(enc) == 0 and enc.keyframe() == []
    delta = enc.update([rect("c")])
    assert sorted(delta.rm) == ["b", "c"] and delta.add == [rect("c").to_wire()]


def test_a_type_change_is_a_removal_and_an_addition():
    enc = DeltaEncoder()
    enc.update([rect("thing")])
    delta = enc.update([Circle(id="thing", radius=3)])
    assert delta.rm == ["thing"]
    assert delta.add == [{"id": "thing", "object_type": "circle", "radius": 3}]
    assert delta.upd == []
    client: dict[str, dict[str, Any]] = {"thing": rect("thing").to_wire()}
    apply_delta(client, **delta.as_message_fields())
    assert client == {"thing": {"id": "thing", "object_type": "circle", "radius": 3}}


def test_duplicate_ids_raise_and_leave_the_encoder_as_it_was():
    enc = DeltaEncoder()
    enc.update([rect("a", x=1)])
    with pytest.raises(RenderError, match="id 'b'; ids must be unique per frame"):
        enc.update([rect("a", x=2), rect("b"), Circle(id="b", radius=1)])
    assert enc.keyframe() == [rect("a", x=1).to_wire()]
    assert enc.update([rect("a", x=2)]).upd == [{"id": "a", "x": 2}]


def test_a_render_error_in_to_wire_leaves_the_encoder_as_it_was():
    enc = DeltaEncoder()
    enc.update([rect("a", permanent=True)])
    enc.remove("a")
    with pytest.raises(RenderError, match="finite"):
        enc.update([rect("b"), rect("c", x=float("nan"))])
    delta = enc.update([rect("b")])
    assert delta.rm == ["a"] and delta.add == [rect("b").to_wire()]


def test_equal_objects_are_not_converted_again(monkeypatch):
    calls: list[str] = []
    original = Rect.to_wire

    def counting(self: Rect) -> dict[str, Any]:
        calls.append(self.id)
        return original(self)

    monkeypatch.setattr(Rect, "to_wire", counting)
    enc = DeltaEncoder()
    enc.update([rect(f"r{i}", x=i) for i in range(50)])
    assert len(calls) == 50
    calls.clear()
    # New but equal instances: one equality check each, no wire conversion.
    for _ in range(10):
        assert enc.update([rect(f"r{i}", x=i) for i in range(50)]).is_empty
    assert calls == []
    enc.update([rect(f"r{i}", x=i + (i == 7)) for i in range(50)])
    assert calls == ["r7"]


def test_update_accepts_a_generator():
    enc = DeltaEncoder()
    delta = enc.update(rect(f"r{i}") for i in range(3))
    assert [w["id"] for w in delta.add] == ["r0", "r1", "r2"]


def test_frame_delta_message_fields_omit_empty_lists():
    assert FrameDelta().is_empty
    assert FrameDelta().as_message_fields() == {}
    delta = FrameDelta(rm=["a"])
    assert not delta.is_empty and delta.as_message_fields() == {"rm": ["a"]}
    full = FrameDelta(add=[{"id": "b", "object_type": "circle", "radius": 1}], upd=[{"id": "c", "x": 1}])
    assert set(full.as_message_fields()) == {"add", "upd"}


def test_the_reference_client():
    state: dict[str, dict[str, Any]] = {"old": rect("old").to_wire()}
    apply_delta(state, key=True, add=[rect("a", x=3).to_wire()])
    assert state == {"a": rect("a", x=3).to_wire()}
    apply_delta(state, upd=[{"id": "a", "x": 0, "alpha": 0.5}], rm=["never-existed"])
    assert state == {"a": rect("a", alpha=0.5).to_wire()}  # x back at its default is dropped
    with pytest.raises(KeyError, match="'ghost'"):
        apply_delta(state, upd=[{"id": "ghost", "x": 1}])


# --- the state space -----------------------------------------------------------------------------
# Few ids and few values per field, so that objects often reappear, change type, change back, and
# fields often return to their defaults.

IDS = ["a", "b", "c", "d", "e", "f"]
small_num = st.sampled_from([0, 0, 1.5, -3, 100.25, 0.004])
maybe_colour = st.sampled_from(["#ffffff", "#fff", "#f00", None])
colour = st.sampled_from(["#ffffff", "#00ff00", "#123"])
few_points = st.sampled_from([[], [(0, 0), (1, 1)], [(0, 0), (10, 0), (10, 10)]])


def base(oid: str) -> dict[str, Any]:
    return {
        "id": st.just(oid),
        "x": small_num,
        "y": small_num,
        "angle": st.sampled_from([0, 45]),
        "alpha": st.sampled_from([1, 0.5]),
        "depth": st.sampled_from([0, 2]),
        "permanent": st.booleans(),
        "tween_ms": st.sampled_from([None, 0, 200]),
    }


def object_with_id(oid: str) -> st.SearchStrategy[RenderObject]:
    return st.one_of(
        st.builds(Rect, **base(oid), width=small_num, height=small_num, fill=maybe_colour,
                  stroke=maybe_colour, line_width=st.sampled_from([1, 3])),
        st.builds(Circle, **base(oid), radius=small_num, fill=maybe_colour),
        st.builds(Line, **base(oid), points=few_points, color=colour),
        st.builds(Polygon, **base(oid), points=few_points, stroke=maybe_colour),
        st.builds(Text, **base(oid), text=st.sampled_from(["", "score: 1"]), color=colour,
                  align=st.sampled_from(["left", "center"]), origin_x=st.sampled_from([0, 0.5])),
        st.builds(Sprite, **base(oid), image=st.sampled_from(["car", "flag"]),
                  frame=st.sampled_from([None, 0, "idle"]), tint=maybe_colour, flip_x=st.booleans()),
    )  # fmt: skip


frames = st.lists(st.sampled_from(IDS), unique=True, max_size=len(IDS)).flatmap(
    lambda ids: st.tuples(*[object_with_id(i) for i in ids]) if ids else st.just(())
)
between = st.one_of(
    st.just(("none",)),
    st.tuples(st.just("remove"), st.lists(st.sampled_from([*IDS, "unknown"]), max_size=3)),
    st.just(("clear",)),
)
steps = st.lists(st.tuples(between, frames, st.booleans()), min_size=1, max_size=25)


def over_the_wire(message: dict[str, Any]) -> dict[str, Any]:
    return msgpack.unpackb(msgpack.packb(message))


@settings(max_examples=150, deadline=None)
@given(steps)
def test_clients_reproduce_the_servers_objects_exactly(steps):
    enc = DeltaEncoder()
    twin = DeltaEncoder()  # the same frames through update_fields, the server's path
    model: dict[str, RenderObject] = {}  # what should be on screen, computed independently
    faithful: dict[str, dict[str, Any]] = {}  # a client that receives every frame
    lossy: dict[str, dict[str, Any]] = {}  # a client that drops frames and then gets a keyframe
    lossy_needs_key = True  # the first frame a connection gets is a keyframe

    for (operation, *args), frame, dropped in steps:
        if operation == "remove":
            enc.remove(args[0])
            twin.remove(args[0])
            for oid in args[0]:
                model.pop(oid, None)
        elif operation == "clear":
            enc.clear()
            twin.clear()
            model = {}

        delta = enc.update(frame)
        assert twin.update_fields(frame) == delta.as_message_fields()
        model = {oid: o for oid, o in model.items() if o.permanent} | {o.id: o for o in frame}
        expected = {oid: o.to_wire() for oid, o in model.items()}
        keyframe = enc.keyframe()
        assert {w["id"]: w for w in keyframe} == expected
        assert len(keyframe) == len(expected)

        # Deltas are minimal: no id twice in a list, no update without a change, rm+add only on a type change.
        assert len({w["id"] for w in delta.add}) == len(delta.add)
        assert len(set(delta.rm)) == len(delta.rm)
        assert all(len(u) > 1 for u in delta.upd)
        assert not {u["id"] for u in delta.upd} & ({w["id"] for w in delta.add} | set(delta.rm))

        apply_delta(faithful, **over_the_wire({"key": False, **delta.as_message_fields()}))
        assert faithful == expected

        if dropped:
            lossy_needs_key = True
        elif lossy_needs_key:
            apply_delta(lossy, **over_the_wire({"key": True, "add": keyframe}))
            lossy_needs_key = False
            assert lossy == expected
        else:
            apply_delta(lossy, **over_the_wire({"key": False, **delta.as_message_fields()}))
            assert lossy == expected
