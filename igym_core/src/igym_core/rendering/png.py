"""A small, dependency-free PNG encoder for ``rgb_array`` frames (8-bit RGB or RGBA).

Every scanline uses filter type 0 (none): building the scanlines is one numpy copy, and game
frames (flat backgrounds, few shapes) still compress well. ``compression`` is the zlib level:
1 is several times faster than 6 for a few percent more bytes, the right trade at 30 frames a second.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

from igym_core.rendering.interface import RenderError

__all__ = ["encode_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {3: 2, 4: 6}  # channels -> PNG colour type (2: truecolour, 6: truecolour + alpha)
_IEND = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def encode_png(array: Any, *, compression: int = 1) -> bytes:
    """Encode an ``(height, width, 3)`` or ``(height, width, 4)`` uint8 array as PNG bytes.

    Raises :class:`RenderError` for any other shape or dtype, and ``ValueError`` for a compression
    level outside 0..9.
    """
    if not (isinstance(compression, int) and 0 <= compression <= 9):
        raise ValueError(f"compression must be a zlib level from 0 to 9; got {compression!r}.")
    pixels = np.asarray(array)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in _COLOUR_TYPES:
        raise RenderError(
            "encode_png needs a (height, width, 3) or (height, width, 4) uint8 array; got shape "
            f"{pixels.shape} and dtype {pixels.dtype}."
        )
    height, width, channels = pixels.shape
    if height == 0 or width == 0:
        raise RenderError(f"encode_png needs an image of at least 1x1 pixels; got shape {pixels.shape}.")

    # Each scanline: one filter-type byte (0) then the row's bytes. Works for any strides.
    scanlines = np.zeros((height, 1 + width * channels), dtype=np.uint8)
    scanlines[:, 1:] = pixels.reshape(height, width * channels)

    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    return b"".join(
        (
            _SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(scanlines.data, compression)),
            _IEND,
        )
    )
