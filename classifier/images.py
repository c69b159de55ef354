"""Turning whatever a person uploads into a clean RGB image, or a clear refusal.

Uploads are untrusted: anything that is not a plain, intact raster photo or scan
of sensible size is refused with `InvalidImage`, whose message can be shown to
the person as it is.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from classifier.errors import InvalidImage

ImageSource = Union[bytes, bytearray, str, Path, BinaryIO, Image.Image]

# Formats a camera, phone or scanner produces, each with the suffix a stored copy gets.
# Pillow reads many more (PSD, ICO, EPS, ...), which nobody means to upload as a document photo.
FORMAT_SUFFIXES = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp",
                   "GIF": ".gif"}
SUPPORTED_FORMATS = frozenset(FORMAT_SUFFIXES)
# File names taken for images when reading a folder (datasets, backgrounds, batches).
IMAGE_SUFFIXES = frozenset(FORMAT_SUFFIXES.values()) | {".jpeg", ".tiff"}
MAX_PIXELS = 60_000_000  # ~ a 9000x6600 photo; beyond that it is a decompression bomb
# A baseline JPEG is decoded at a reduced scale (Pillow's draft) and may have up to MAX_PIXELS. Other
# formats, and progressive JPEGs, are decoded whole before they can be reduced: that decode is their
# cost, so they have lower limits, each keeping its decoder's worst near DECODE_BYTES (times the uploads
# one server process takes at once: gunicorn.conf.py's threads). PNG, GIF, BMP: the image, 4 bytes a
# pixel at most. WebP: 16, Pillow's decoder holds two canvases and a copy of the image. Where it
# depends on the file (`pixel_limit`), lower still for a progressive JPEG with colour at full
# resolution, or a TIFF stored in big strips. 16 MP keeps a 12 MP phone photo or a Letter or A4 page
# at 400 dpi; the 7 KB 1-bit 7700x7700 PNG a tester sent is refused.
MAX_PIXELS_DECODED_WHOLE = {"PNG": 16_000_000, "GIF": 16_000_000, "BMP": 16_000_000, "TIFF": 16_000_000,
                            "WEBP": 4_000_000, "JPEG-progressive": 16_000_000}
DECODE_BYTES = 64_000_000  # what decoding one image whole may take, where `pixel_limit` can tell
FORMAT_NAMES = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP", "TIFF": "TIFF", "BMP": "BMP",
                "GIF": "GIF", "JPEG-progressive": "progressive JPEG"}
MIN_SIDE = 32  # smaller than this carries no readable document
MAX_ASPECT = 4  # with min_size, the long side is reduced to at most this many times min_size
REDUCE_BAND_PIXELS = 262_144  # converted to RGB about this many pixels at a time before reducing
# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose)
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("squash", "letterbox", "centre_crop")


def load_image(source: ImageSource, *, min_size: int | None = None, max_pixels: int = MAX_PIXELS,
               min_side: int = MIN_SIDE) -> Image.Image:
    """Decode `source` into an upright RGB image.

    The decoded size may be reduced; `info["original_size"]` keeps the file's own and
    `info["format"]` its format (one of `SUPPORTED_FORMATS`, None for a given Image).
    With `min_size`, the image is decoded or reduced to the smallest size that still
    leaves both sides at least `min_size` pixels (a JPEG by Pillow's `draft`, during
    decoding; other formats by `Image.reduce` after it, before any conversion to RGB),
    and its long side to at most `MAX_ASPECT * min_size`: a 12 MP photo then costs a
    fraction of a full decode when the model only needs ~224 px.

    Refused (`InvalidImage` "too_many_pixels") above `max_pixels`, and for formats decoded
    whole above `pixel_limit`'s lower limit.
    """
    if isinstance(source, Image.Image):
        img = source
    else:
        img = _open(source)
    width, height = img.size
    limit, kind = pixel_limit(img, max_pixels)
    if width * height > limit:
        raise InvalidImage("too_many_pixels", too_many_pixels_message(width, height, kind, limit, max_pixels))
    if min(width, height) < min_side:
        raise InvalidImage("too_small", f"The image is only {width}x{height} pixels; a document photo "
                                        f"needs at least {min_side} pixels on each side.")
    try:
        orientation = img.getexif().get(0x0112, 1)
        if orientation in (5, 6, 7, 8):  # EXIF orientations that swap the sides
            width, height = height, width
        if min_size and img.format in ("JPEG", "MPO"):
            scale = _reduction(img.size, min_size)
            if scale >= 2:
                img.draft("RGB", (int(img.width / scale) + 1, int(img.height / scale) + 1))
        img.load()
        factor = _factor(img.size, min_size) if min_size else 1
        rgb = reduced_rgb(img, factor) if factor >= 2 else to_rgb(img)
        if orientation in _UPRIGHT:
            rgb = rgb.transpose(_UPRIGHT[orientation])
        elif rgb is img:
            rgb = img.copy()  # a plain image, which keeps no hold on the file
    except Exception as exc:  # Pillow's decoders fail on bad data in many ways; all mean the same here
        raise InvalidImage("corrupt", "The image file is damaged or incomplete.") from exc
    rgb.info["original_size"] = (width, height)  # before any reduction
    rgb.info["format"] = img.format
    return rgb


def pixel_limit(img: Image.Image, max_pixels: int = MAX_PIXELS) -> tuple[int, str | None]:
    """The most pixels an opened (not yet decoded) image like this one may have, and its kind
    (a key of `MAX_PIXELS_DECODED_WHOLE`, or None where `max_pixels` applies)."""
    kind = img.format
    if kind in ("JPEG", "MPO"):
        kind = "JPEG-progressive" if img.info.get("progressive") or img.info.get("progression") else None
    if kind not in MAX_PIXELS_DECODED_WHOLE:
        return max_pixels, None  # a baseline JPEG, or an Image already decoded
    limit = min(max_pixels, MAX_PIXELS_DECODED_WHOLE[kind])
    if kind == "JPEG-progressive":  # its decoder keeps 2 bytes for every sample of the whole image
        limit = min(limit, int(DECODE_BYTES / (2 * _samples_per_pixel(img))))
    elif kind == "TIFF":  # the image, and the strip or tile libtiff decodes into first
        limit = min(limit, int(DECODE_BYTES / (4 + _tiff_buffer(img) / (img.width * img.height))))
    return limit, kind


def _samples_per_pixel(jpeg: Image.Image) -> float:
    """Samples a JPEG stores per pixel: its channels, each weighed by its resolution (from the
    sampling factors of its frame header); 3 for a colour photo as cameras save it, 4 for CMYK."""
    layers = getattr(jpeg, "layer", None) or []
    h, v = max((layer[1] for layer in layers), default=0), max((layer[2] for layer in layers), default=0)
    if not h * v:
        return float(len(jpeg.getbands()))
    return sum(layer[1] * layer[2] for layer in layers) / (h * v)


def _tiff_buffer(tiff: Image.Image) -> int:
    """Bytes of the strip (or tile) libtiff decodes a compressed TIFF's first page into, besides
    the image: small as most writers store it, the whole image for a TIFF in one strip."""
    tags = tiff.tag_v2
    if tags.get(259, 1) == 1:  # uncompressed: read straight into the image
        return 0
    bits = tags.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    pixel_bits = sum(bits) * (int(tags.get(277, 1)) if len(bits) == 1 else 1)
    if tags.get(262) == 6:  # YCbCr: Pillow has libtiff decode it as RGBA
        pixel_bits = max(pixel_bits, 32)
    if 322 in tags and 323 in tags:
        return -(-int(tags[322]) * pixel_bits // 8) * int(tags[323])
    return -(-tiff.width * pixel_bits // 8) * min(int(tags.get(278, tiff.height)), tiff.height)


def too_many_pixels_message(width: int, height: int, kind: str | None, limit: int, max_pixels: int) -> str:
    if kind is None:
        return f"The image is {width}x{height} pixels; the limit is {max_pixels // 1_000_000} megapixels."
    what = f"a {FORMAT_NAMES[kind]}"
    if _megapixels(limit) != _megapixels(min(max_pixels, MAX_PIXELS_DECODED_WHOLE[kind])):
        what += " like this one"  # lowered for how this file is stored
    jpeg, advice = ("a baseline JPEG", "a baseline (not progressive) JPEG") if kind == "JPEG-progressive" else (
        "a JPEG", "a JPEG")
    return (f"The image is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels); {what} may have "
            f"at most {_megapixels(limit)} megapixels, {jpeg} up to {_megapixels(max_pixels)}. Make it smaller, "
            f"or save it as {advice}.")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f}".removesuffix(".0")


def _reduction(size: tuple[int, int], min_size: int) -> float:
    """How many times smaller than `size` the image may be: both sides stay at least `min_size`,
    unless that would leave the long side above `MAX_ASPECT * min_size`."""
    return max(min(size) / min_size, max(size) / (MAX_ASPECT * min_size))


def _factor(size: tuple[int, int], min_size: int) -> int:
    """`_reduction` as a whole factor for `Image.reduce`: rounded down for the short side, up for the long."""
    return max(min(size) // min_size, -(-max(size) // (MAX_ASPECT * min_size)))


def reduced_rgb(img: Image.Image, factor: int) -> Image.Image:
    """``to_rgb(img).reduce(factor)`` without ever holding the whole image in RGB: a band of rows
    at a time is converted and reduced (1-bit, greyscale and palette images take 1 byte a pixel,
    RGB 4). The same pixels as converting whole, since the bands are whole multiples of `factor`."""
    if img.mode == "RGB":
        return img.reduce(factor)
    out = Image.new("RGB", (-(-img.width // factor), -(-img.height // factor)))
    rows = max(1, REDUCE_BAND_PIXELS // (img.width * factor)) * factor
    top = _top(img)
    for y in range(0, img.height, rows):
        band = img.crop((0, y, img.width, min(y + rows, img.height)))
        out.paste(_to_rgb(band, top).reduce(factor), (0, y // factor))
    return out


def _top(img: Image.Image) -> float:
    """The white of a 16-bit, 32-bit or float image (see `to_rgb`), from the whole image."""
    if img.mode.startswith("I;16"):
        return 65535.0
    if img.mode in ("I", "F"):
        return 65535.0 if img.getextrema()[1] > 255 else 255.0
    return 255.0


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise InvalidImage("empty", "The file is empty.")
        stream: BinaryIO = io.BytesIO(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InvalidImage("missing", f"No such file: {path}")
        if path.stat().st_size == 0:
            raise InvalidImage("empty", "The file is empty.")
        try:
            stream = io.BytesIO(path.read_bytes())
        except OSError as exc:  # no permission, a failing disk: one bad file in a folder
            raise InvalidImage("unreadable", f"Cannot read {path}: {exc.strerror or exc}") from exc
    else:
        data = source.read()
        if not data:
            raise InvalidImage("empty", "The file is empty.")
        stream = io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(stream)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage("too_many_pixels", "The image has far too many pixels to be a photo.") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("not_an_image", "The file is not an image (expected a JPEG, PNG, WebP, "
                                           "TIFF, BMP or GIF photo or scan).") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage("corrupt", "The image file is damaged or incomplete.") from exc
    if img.format not in SUPPORTED_FORMATS:
        raise InvalidImage("unsupported_format", f"{img.format} images are not supported; upload a JPEG, "
                                                 "PNG, WebP, TIFF, BMP or GIF.")
    return img


def image_files(folder: Path) -> list[Path]:
    """The images under ``folder`` (recursively, by suffix), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def image_paths(paths: list[Path]) -> list[Path]:
    """The images a person names: each folder's ``image_files``, each other path as given
    (whatever its name, so a missing or odd file gets its own answer rather than vanishing)."""
    return [f for p in map(Path, paths) for f in (image_files(p) if p.is_dir() else [p])]


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB with transparency flattened onto white and 16-bit/float data scaled to 8 bits."""
    return _to_rgb(img, _top(img))


def _to_rgb(img: Image.Image, top: float) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        arr = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def resize_for_model(img: Image.Image, size: int, mode: str) -> Image.Image:
    """The `size`x`size` view the backbone sees.

    squash keeps the whole document but distorts its proportions; letterbox keeps
    both and pads; centre_crop (torchvision's default) can cut a document's edges.
    """
    if mode == "squash":
        return img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if mode == "letterbox":
        scale = size / max(img.size)
        w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
        canvas = Image.new("RGB", (size, size), (124, 116, 104))  # ImageNet mean colour
        canvas.paste(img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0),
                     ((size - w) // 2, (size - h) // 2))
        return canvas
    if mode == "centre_crop":
        scale = size / min(img.size)
        w, h = max(size, round(img.width * scale)), max(size, round(img.height * scale))
        resized = img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=2.0)
        left, top = (w - size) // 2, (h - size) // 2
        return resized.crop((left, top, left + size, top + size))
    raise ValueError(f"unknown resize mode {mode!r}; expected one of {RESIZE_MODES}")


def to_array(img: Image.Image, size: int = 224, mode: str = "squash", detail: int | None = None) -> np.ndarray:
    """Normalised CHW float32 array for an ImageNet backbone. ``detail``: the view is shrunk to that
    many pixels across and enlarged back, so it holds no finer detail however sharp the image was."""
    view = resize_for_model(img, size, mode)
    if detail is not None and detail < size:
        view = view.resize((detail, detail), Image.Resampling.BOX).resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(view, dtype=np.float32) / 255.0
    arr = (arr - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)
