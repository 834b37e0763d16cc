"""Read the pixels of a PNG (a browser screenshot) without an imaging library: for tests that check
what a canvas shows.

Handles what browsers write: 8-bit greyscale, RGB or RGBA, non-interlaced, any of the five row
filters. Returns a numpy array of shape ``(height, width, 4)`` (RGBA, alpha 255 when the image has
none).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["colour_mask", "png_pixels"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel


def png_pixels(data: bytes) -> np.ndarray:
    """Decode ``data`` (PNG bytes) to an RGBA uint8 array of shape (height, width, 4)."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG file")
    position = len(_SIGNATURE)
    header = None
    compressed = bytearray()
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed += body
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, colour, _compression, _filter, interlace = header
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}")
    channels = _CHANNELS[colour]
    stride = width * channels
    raw = zlib.decompress(bytes(compressed))
    rows = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=start + 1).astype(np.int32)
        if kind == 0:
            out = line
        elif kind == 2:
            out = (line + previous) & 0xFF
        else:  # Sub, Average and Paeth depend on the pixel to the left: done pixel by pixel
            out = np.zeros(stride, dtype=np.int32)
            for x in range(stride):
                left = out[x - channels] if x >= channels else 0
                up = previous[x]
                if kind == 1:
                    predictor = left
                elif kind == 3:
                    predictor = (left + up) // 2
                elif kind == 4:
                    corner = previous[x - channels] if x >= channels else 0
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                else:
                    raise ValueError(f"unknown PNG row filter {kind}")
                out[x] = (line[x] + predictor) & 0xFF
        rows[y] = out
        previous = out
    pixels = rows.reshape(height, width, channels)
    if channels == 4:
        return pixels
    rgba = np.full((height, width, 4), 255, dtype=np.uint8)
    if channels == 3:
        rgba[..., :3] = pixels
    else:  # greyscale (with alpha for colour type 4)
        rgba[..., :3] = pixels[..., :1]
        if channels == 2:
            rgba[..., 3] = pixels[..., 1]
    return rgba


def colour_mask(pixels: np.ndarray, colour: str, tolerance: int = 24) -> np.ndarray:
    """Boolean (height, width) mask of pixels within ``tolerance`` (per channel) of ``#rrggbb``."""
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return (np.abs(pixels[..., :3].astype(np.int16) - target) <= tolerance).all(axis=-1)
