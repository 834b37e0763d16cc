"""The test kit's PNG reader (for checking screenshots of game canvases)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from igym_core.rendering.png import encode_png
from igym_core.testing.pixels import colour_mask, png_pixels


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _png_with_filters(pixels: np.ndarray, filters: list[int]) -> bytes:
    """An RGB(A) PNG whose row y uses filter filters[y % len(filters)] (an independent encoder)."""
    height, width, channels = pixels.shape
    colour = {3: 2, 4: 6}[channels]
    raw = bytearray()
    previous = [0] * (width * channels)
    for y in range(height):
        row = [int(v) for v in pixels[y].reshape(-1)]
        kind = filters[y % len(filters)]
        out = []
        for x, value in enumerate(row):
            left = row[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            predictor = [0, left, up, (left + up) // 2, _paeth(left, up, corner)][kind]
            out.append((value - predictor) & 0xFF)
        raw += bytes([kind, *out])
        previous = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )


@settings(max_examples=40, deadline=None)
@given(
    pixels=arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 6), st.sampled_from([3, 4]))),
    filters=st.lists(st.integers(0, 4), min_size=1, max_size=5),
)
def test_every_row_filter_decodes_to_the_original_pixels(pixels, filters):
    decoded = png_pixels(_png_with_filters(pixels, filters))
    assert decoded.shape == (*pixels.shape[:2], 4)
    assert (decoded[..., : pixels.shape[2]] == pixels).all()
    if pixels.shape[2] == 3:
        assert (decoded[..., 3] == 255).all()


def test_reads_what_igym_encodes():
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    image[5:10, 10:20] = (239, 68, 68)  # #ef4444
    decoded = png_pixels(encode_png(image))
    mask = colour_mask(decoded, "#ef4444")
    assert mask.sum() == 50 and mask[5:10, 10:20].all()


def test_rejects_what_is_not_a_png():
    with pytest.raises(ValueError, match="not a PNG"):
        png_pixels(b"GIF89a")
