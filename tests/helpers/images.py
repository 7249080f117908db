"""Real images, made with Pillow, for upload and media tests."""

from __future__ import annotations

import functools
import io
import os
import struct
import zlib

from PIL import Image


def encoded_image(
    pillow_format: str, size: tuple[int, int] = (7, 5), *, noisy: bool = False
) -> bytes:
    """The bytes of a real image made with Pillow; ``noisy`` ones barely compress."""
    if noisy:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (200, 30, 90))
    buffer = io.BytesIO()
    image.save(buffer, format=pillow_format)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack("!I", len(data)) + kind + data + struct.pack("!I", zlib.crc32(kind + data))


@functools.cache
def png_bomb(width: int, height: int, *, pixels: bool = True) -> bytes:
    """An RGBA PNG of ``width`` x ``height`` black pixels, a few hundred KB that decode to
    4 bytes per pixel. Without ``pixels`` its image data is garbage (a valid header only)."""
    row = b"\x00" * (1 + 4 * width)
    if pixels:
        compressor = zlib.compressobj(9)
        parts = [compressor.compress(row * 64) for _ in range(height // 64)]
        parts += [compressor.compress(row * (height % 64)), compressor.flush()]
        data = b"".join(parts)
    else:
        data = b"not zlib data at all"
    header = struct.pack("!IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )
