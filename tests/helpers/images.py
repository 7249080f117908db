"""Real images, made with Pillow, for upload and media tests."""

from __future__ import annotations

import io
import os

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
