"""The built-in renderers (``objects``, ``rgb_array``), their registration, and the PNG encoder."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from igym_core.builtin import renderers as builtin_renderers
from igym_core.builtin.renderers import ObjectRenderer, RgbArrayRenderer
from igym_core.rendering.interface import RenderedFrame, Renderer, RenderError
from igym_core.rendering.objects import Circle, Rect
from igym_core.rendering.png import encode_png

# --- a PNG decoder, independent of the encoder ---------------------------------------------------


def decode_png(data: bytes) -> np.ndarray:
    """Decode a non-interlaced 8-bit RGB/RGBA PNG, checking the signature, every CRC and the layout."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and set(kinds[1:-1]) == {b"IDAT"}
    width, height, depth, colour_type, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1]
    )
    assert (depth, compression, filtering, interlace) == (8, 0, 0, 0)
    channels = {2: 3, 6: 4}[colour_type]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, 1 + width * channels)
    assert not rows[:, 0].any(), "every scanline should use filter type 0"
    return rows[:, 1:].reshape(height, width, channels)


images = hnp.arrays(
    np.uint8,
    st.tuples(st.integers(1, 17), st.integers(1, 17), st.sampled_from([3, 4])),
)


@settings(deadline=None)
@given(images, st.integers(0, 9))
def test_png_round_trips_any_rgb_or_rgba_image(pixels, level):
    png = encode_png(pixels, compression=level)
    decoded = decode_png(png)
    assert decoded.shape == pixels.shape
    assert np.array_equal(decoded, pixels)


def test_png_of_a_non_contiguous_view():
    base = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    view = base.transpose(1, 0, 2)[::2]  # what pygame-style surfarray code hands over
    assert not view.flags.c_contiguous
    assert np.array_equal(decode_png(encode_png(view)), view)


def test_higher_compression_is_smaller_for_game_like_frames():
    frame = np.full((200, 300, 3), 255, dtype=np.uint8)
    frame[120:, :] = (30, 120, 30)
    frame[50:80, 100:140] = (200, 0, 0)
    frame[::7, ::5] = (0, 0, 0)
    fast, small = encode_png(frame, compression=1), encode_png(frame, compression=9)
    assert len(small) <= len(fast) < frame.nbytes / 10


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3), np.float32),
     np.zeros((0, 4, 3), np.uint8)],
)  # fmt: skip
def test_png_rejects_other_shapes_and_dtypes(bad):
    with pytest.raises(RenderError, match="encode_png needs"):
        encode_png(bad)


@pytest.mark.parametrize("level", [-1, 10, 1.0])
def test_png_rejects_bad_compression_levels(level):
    with pytest.raises(ValueError, match="zlib level from 0 to 9"):
        encode_png(np.zeros((1, 1, 3), np.uint8), compression=level)


# --- the object renderer -------------------------------------------------------------------------


class FakeEnv:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.render_calls = 0

    def render(self) -> Any:
        self.render_calls += 1
        return self.result


SCENE = [Rect(id="ground", width=600, height=20, y=390), Circle(id="ball", radius=5, x=10)]


@pytest.mark.parametrize("shape", [list, tuple, lambda objs: (o for o in objs)])
def test_object_renderer_takes_lists_tuples_and_generators_from_env_render(shape):
    env = FakeEnv(shape(SCENE))
    frame = ObjectRenderer().render(env)
    assert frame == RenderedFrame(objects=tuple(SCENE))
    assert env.render_calls == 1


def test_object_renderer_prefers_render_fn():
    env = FakeEnv(None)
    seen = []

    def draw(e: Any) -> list[Rect]:
        seen.append(e)
        return [Rect(id="x", width=1, height=1)]

    frame = ObjectRenderer(render_fn=draw).render(env)
    assert frame.objects == (Rect(id="x", width=1, height=1),) and frame.image_png is None
    assert seen == [env] and env.render_calls == 0


@pytest.mark.parametrize(
    ("result", "patterns"),
    [
        (None, ["env.render() returned None", "render_fn", "without a render_mode"]),
        (np.zeros((4, 4, 3), np.uint8), ["ndarray of shape (4, 4, 3)", "renderer='rgb_array'"]),
        (Rect(id="r", width=1, height=1), ["single render object", "[obj]"]),
        ({"id": "r"}, ["returned a dict", "render_fn"]),
        ("rect", ["returned a str", "Rect, Circle"]),
        ([Rect(id="r", width=1, height=1), {"id": "x"}], ["item 1 is a dict", "Rect, Circle"]),
    ],
)
def test_object_renderer_says_what_came_back_and_how_to_fix_it(result, patterns):
    with pytest.raises(RenderError) as info:
        ObjectRenderer().render(FakeEnv(result))
    for pattern in patterns:
        assert pattern in str(info.value)


def test_object_renderer_names_render_fn_when_it_is_the_culprit():
    with pytest.raises(RenderError, match=r"render_fn\(env\) returned None"):
        ObjectRenderer(render_fn=lambda env: None).render(FakeEnv([]))


# --- the rgb_array renderer ----------------------------------------------------------------------


def test_rgb_array_renderer_encodes_the_env_image_as_png():
    pixels = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    frame = RgbArrayRenderer().render(FakeEnv(pixels))
    assert frame.objects is None and frame.image_png is not None
    assert np.array_equal(decode_png(frame.image_png), pixels)


def test_rgb_array_renderer_accepts_anything_with_array_and_rgba():
    class Surface:
        def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
            return np.full((2, 3, 4), 7, dtype=np.uint8)

    frame = RgbArrayRenderer(render_fn=lambda env: Surface()).render(None)
    assert np.array_equal(decode_png(frame.image_png), np.full((2, 3, 4), 7, np.uint8))


def test_rgb_array_renderer_reuses_the_png_of_an_unchanged_image_but_sees_in_place_drawing():
    buffer = np.zeros((8, 8, 3), np.uint8)  # envs often redraw into one buffer
    env = FakeEnv(buffer)
    renderer = RgbArrayRenderer(compression=6)
    first = renderer.render(env).image_png
    assert renderer.render(env).image_png is first
    buffer[2, 3] = (255, 0, 0)
    changed = renderer.render(env).image_png
    assert changed != first
    assert np.array_equal(decode_png(changed), buffer)


@pytest.mark.parametrize(
    ("result", "patterns"),
    [
        (None, ["returned None", "render_mode='rgb_array'"]),
        ([Rect(id="r", width=1, height=1)], ["use renderer='objects'"]),
        (np.zeros((4, 4), np.uint8), ["shape (4, 4)", "render_mode='rgb_array'"]),
        (np.zeros((2, 4, 4, 3), np.uint8), ["list of frames", "rgb_array_list"]),
        (np.zeros((4, 4, 3), np.float64), ["dtype float64", "astype(np.uint8)"]),
        (np.zeros((4, 0, 3), np.uint8), ["shape (4, 0, 3)"]),
    ],
)
def test_rgb_array_renderer_says_what_came_back_and_how_to_fix_it(result, patterns):
    with pytest.raises(RenderError) as info:
        RgbArrayRenderer().render(FakeEnv(result))
    for pattern in patterns:
        assert pattern in str(info.value)


def test_rgb_array_renderer_rejects_bad_compression():
    with pytest.raises(ValueError, match="zlib level"):
        RgbArrayRenderer(compression=11)


# --- registration --------------------------------------------------------------------------------


def test_the_builtin_module_registers_both_renderers_by_kind(igym_pm, register_plugin):
    if not igym_pm.pm.is_registered(builtin_renderers):
        register_plugin(builtin_renderers, name="igym.renderers")
    registry = igym_pm.registry.renderers
    assert registry.get("objects") is ObjectRenderer
    assert registry.get("rgb_array") is RgbArrayRenderer
    for cls in (ObjectRenderer, RgbArrayRenderer):
        assert issubclass(cls, Renderer)
        assert cls(render_fn=len).render_fn is len


def test_renderer_is_abstract():
    with pytest.raises(TypeError):
        Renderer()  # type: ignore[abstract]
