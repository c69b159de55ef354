"""Images as the bytes of a file, for tests and benchmarks: the one encoder they share."""
from __future__ import annotations

import io

from PIL import Image


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    """``img`` saved as format ``fmt`` (Pillow's name, e.g. "JPEG"), with Pillow's save options."""
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()
