"""Image augmentation shared by training and the synthetic demo generator.

Two kinds of views of a labelled document image:

* ``simulate_capture`` - a phone-photo-like view: the document warped in
  perspective onto a cluttered background (desk, keyboard, papers, a photo), at
  any rotation, sometimes partly out of frame, held by fingers or beside a second
  card, with glare, a hologram's sheen, shadows and camera-like lighting, blur,
  noise and JPEG artefacts. It also returns where the
  document's corners ended up, so the demo generator can write corner labels.
* ``augment`` - one random training view: either a capture or the document
  filling the frame, as a scan or a tight phone crop gives it.

Everything random is drawn from the ``numpy.random.Generator`` passed in, so
a given generator state always yields the same image. All pixel work is done
with OpenCV on uint8 arrays for speed (a call takes a few milliseconds).

Coordinates: a W x H image spans [0, W] x [0, H] (pixel centres at
i + 0.5, as in Pillow), so a flat image's corners are (0, 0), (W, 0), (W, H)
and (0, H).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from classifier.errors import DatasetError
from classifier.images import image_files
from classifier.localise import visible_share

AUGMENT_VERSION = "6"  # bump when what a view looks like changes: cached training features are remade
PHOTO_SIZES = ((640, 480), (480, 640), (800, 600), (600, 800))
MAX_SIDE = 800
FRAMINGS = ("any", "partial", "whole", "scan")  # simulate_capture's framing
PARTIAL_PROBABILITY = 0.25  # share of "any" captures with one or two corners outside the frame
MIN_VISIBLE = 0.6  # a partly framed document keeps at least this share of its area in the photo
DISTRACTOR_PROBABILITY = 0.2  # share of captures with a second card lying beside the document
# Photos used as backgrounds are decoded once per process at this size.
_BACKGROUND_CACHE_SIDE = 1024


def _shrink(a: np.ndarray, max_side: int) -> np.ndarray:
    """Area-downscale so the longer side is at most ``max_side`` (area averaging does not alias)."""
    if max(a.shape[:2]) <= max_side:
        return a
    f = max_side / max(a.shape[:2])
    size = (max(1, round(a.shape[1] * f)), max(1, round(a.shape[0] * f)))
    return cv2.resize(a, size, interpolation=cv2.INTER_AREA)


def _rgb_array(img: Image.Image, max_side: int | None = None) -> np.ndarray:
    """RGB uint8 array of ``img``, optionally shrunk to ``max_side``."""
    a = np.asarray(img.convert("RGB"))
    return a if max_side is None else _shrink(a, max_side)


def _edge_to_centre(m: np.ndarray) -> np.ndarray:
    """Convert a homography between edge coordinates (image spans [0, W]) into the
    pixel-centre convention OpenCV's warps use, so corners land exactly."""
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    unshift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    return unshift @ m @ shift


def _warp(src: np.ndarray, dst_quad: np.ndarray, size: tuple[int, int], **kwargs) -> np.ndarray:
    """Warp ``src`` so that its corners land on ``dst_quad`` in an image of ``size`` (w, h)."""
    h, w = src.shape[:2]
    src_quad = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    m = cv2.getPerspectiveTransform(src_quad, np.float32(dst_quad))
    return cv2.warpPerspective(src, _edge_to_centre(m), size, flags=cv2.INTER_LINEAR, **kwargs)


def _rotation(degrees: float) -> np.ndarray:
    """2x2 rotation matrix; positive angles turn clockwise on screen (y points down)."""
    t = np.deg2rad(degrees)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def _random_colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(low, high, 3))


# --------------------------------------------------------------------------
# Backgrounds
# --------------------------------------------------------------------------

def background_photos(folder: Path | None) -> tuple[Path, ...]:
    """What ``--backgrounds DIR`` means wherever it is accepted: every image under DIR
    (none without a folder); a folder without images is refused."""
    if folder is None:
        return ()
    photos = tuple(image_files(folder))
    if not photos:
        raise DatasetError(f"no images (JPEG, PNG, ...) in {folder} to use as backgrounds")
    return photos


@lru_cache(maxsize=64)
def _load_background(path: str) -> np.ndarray:
    """Decoded (and downscaled) background photo, cached because decoding a
    large photo costs more than a whole augmentation."""
    with Image.open(path) as img:
        img.draft("RGB", (_BACKGROUND_CACHE_SIDE, _BACKGROUND_CACHE_SIDE))  # fast JPEG downscale
        return _rgb_array(img, _BACKGROUND_CACHE_SIDE)


def photo_crop(rng: np.random.Generator, size: tuple[int, int], path: Path) -> np.ndarray:
    """Random crop of a photo with the aspect ratio of ``size``, resized to it (RGB array)."""
    photo = _load_background(str(path))
    ph, pw = photo.shape[:2]
    w, h = size
    frac = rng.uniform(0.5, 1.0)
    cw = min(pw, ph * w / h) * frac
    ch = cw * h / w
    x0, y0 = rng.uniform(0, pw - cw), rng.uniform(0, ph - ch)
    crop = photo[int(y0):int(y0 + ch) + 1, int(x0):int(x0 + cw) + 1]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), size, interpolation=cv2.INTER_AREA)


def _texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Base surface: a tinted flat, gradient, blotchy, wood-like or fabric-like texture."""
    w, h = size
    base = np.array(_random_colour(rng, 30, 230), np.float32)
    kind = rng.choice(["flat", "gradient", "blotches", "wood", "fabric"])
    # Low-resolution intensity fields are computed small and upscaled: cheap and smooth.
    if kind == "gradient":
        field = cv2.resize(rng.uniform(-50, 50, (2, 2)).astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    elif kind == "blotches":
        cells = int(rng.integers(3, 12))
        field = cv2.resize(rng.uniform(-35, 35, (cells, cells)).astype(np.float32), size, interpolation=cv2.INTER_CUBIC)
    elif kind == "wood":
        sw, sh = max(2, w // 4), max(2, h // 4)
        warp = cv2.resize(rng.uniform(-1, 1, (4, 4)).astype(np.float32), (sw, sh), interpolation=cv2.INTER_CUBIC)
        along = np.linspace(0, rng.uniform(8, 30), sh, dtype=np.float32)[:, None]
        grain = np.sin(2 * np.pi * (along + 2.5 * warp)) + 0.4 * np.sin(7 * np.pi * (along + warp))
        field = cv2.resize(20 * grain.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        if rng.random() < 0.5:
            field = cv2.resize(cv2.rotate(field, cv2.ROTATE_90_CLOCKWISE), size)
    elif kind == "fabric":
        period = rng.uniform(2.5, 7)
        sx = np.sin(np.arange(w, dtype=np.float32) * 2 * np.pi / period)
        sy = np.sin(np.arange(h, dtype=np.float32) * 2 * np.pi / period)
        field = 12 * (sy[:, None] + sx[None, :]) + 10 * np.outer(sy, sx)
    else:
        field = np.zeros((h, w), np.float32)
    # Tint the grey field with the base colour through a per-channel lookup table:
    # much cheaper than float arithmetic on three full-size channels.
    grey = np.clip(field + 128, 0, 255).astype(np.uint8)
    lut = np.clip(base[None, :] + np.arange(-128, 128, dtype=np.float32)[:, None], 0, 255)
    return cv2.LUT(cv2.merge([grey, grey, grey]), lut.astype(np.uint8)[:, None, :])


def _clutter(rng: np.random.Generator, img: np.ndarray) -> None:
    """Draw desk clutter in place: papers with text-like lines, keyboards, mugs, cables, scribbles."""
    h, w = img.shape[:2]
    scale = max(w, h)
    for _ in range(int(rng.integers(0, 9))):
        kind = rng.choice(["paper", "keyboard", "disc", "line", "scribble", "text"])
        cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
        colour = _random_colour(rng)
        if kind == "paper":
            bw, bh = rng.uniform(0.15, 0.6, 2) * scale
            box = cv2.boxPoints(((cx, cy), (bw, bh), rng.uniform(0, 180)))
            cv2.fillConvexPoly(img, box.astype(np.int32), _random_colour(rng, 200, 256), cv2.LINE_AA)
            rows = int(rng.integers(4, 14))  # text lines
            ink = _random_colour(rng, 0, 90)
            for r in range(1, rows):
                a, b = box[0] + (box[3] - box[0]) * r / rows, box[1] + (box[2] - box[1]) * r / rows
                end = a + (b - a) * rng.uniform(0.4, 0.95)
                cv2.line(img, tuple(a.astype(int)), tuple(end.astype(int)), ink, 3, cv2.LINE_AA)
        elif kind == "keyboard":
            _keyboard(rng, img, (cx, cy), scale)
        elif kind == "disc":
            r = int(rng.uniform(0.03, 0.15) * scale)
            cv2.circle(img, (int(cx), int(cy)), r, colour, -1, cv2.LINE_AA)
            cv2.circle(img, (int(cx), int(cy)), int(r * 0.8), _random_colour(rng), max(1, r // 8), cv2.LINE_AA)
        elif kind == "line":
            end = (int(cx + rng.normal(0, scale / 2)), int(cy + rng.normal(0, scale / 2)))
            cv2.line(img, (int(cx), int(cy)), end, colour, int(rng.integers(1, 8)), cv2.LINE_AA)
        elif kind == "scribble":
            pts = np.cumsum(rng.normal(0, scale / 30, (int(rng.integers(5, 30)), 2)), axis=0) + (cx, cy)
            cv2.polylines(img, [pts.astype(np.int32)], False, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
        else:  # text-like: random letters, like a poster or a screen in the background
            letters = "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "), int(rng.integers(4, 20))))
            cv2.putText(img, letters, (int(cx), int(cy)), cv2.FONT_HERSHEY_SIMPLEX,
                        rng.uniform(0.4, 2.0), colour, int(rng.integers(1, 4)), cv2.LINE_AA)


def _keyboard(rng: np.random.Generator, img: np.ndarray, centre: tuple[float, float], scale: float) -> None:
    """A keyboard: a dark slab with a grid of lighter keys, at any angle. Its many
    straight parallel edges are what a corner finder must learn to ignore."""
    cols, rows = int(rng.integers(10, 16)), int(rng.integers(4, 7))
    pitch = rng.uniform(0.025, 0.06) * scale
    key = pitch * rng.uniform(0.75, 0.9)
    axes = _rotation(rng.uniform(-30, 30) + 90 * rng.integers(2))
    angle = np.degrees(np.arctan2(axes[1, 0], axes[0, 0]))
    slab = cv2.boxPoints((centre, ((cols + 0.6) * pitch, (rows + 0.6) * pitch), angle))
    base = _random_colour(rng, 10, 80)
    cv2.fillConvexPoly(img, slab.astype(np.int32), base, cv2.LINE_AA)
    cap = tuple(min(255, c + int(rng.integers(20, 120))) for c in base)
    unit = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * key / 2
    for r in range(rows):
        for c in range(cols):
            offset = np.array([(c - (cols - 1) / 2) * pitch, (r - (rows - 1) / 2) * pitch])
            cv2.fillConvexPoly(img, ((unit + offset) @ axes.T + centre).astype(np.int32), cap, cv2.LINE_AA)


def _random_background_array(rng: np.random.Generator, size: tuple[int, int],
                             backgrounds: Sequence[Path]) -> np.ndarray:
    if backgrounds and rng.random() < 0.6:
        img = photo_crop(rng, size, backgrounds[int(rng.integers(len(backgrounds)))])
        if rng.random() < 0.3:
            _clutter(rng, img)
        return img
    img = _texture(rng, size)
    _clutter(rng, img)
    if rng.random() < 0.5:  # out-of-focus surroundings
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.5))
    return img


def random_background(rng: np.random.Generator, size: tuple[int, int], backgrounds: Sequence[Path] = ()) -> Image.Image:
    """Cluttered RGB background of ``size`` (w, h): a procedural texture with desk
    clutter or, when ``backgrounds`` (photo paths) are given, often a random crop of one."""
    return Image.fromarray(_random_background_array(rng, size, backgrounds))


# --------------------------------------------------------------------------
# Camera and scanner artefacts
# --------------------------------------------------------------------------

def _photometric(img: np.ndarray, rng: np.random.Generator, strength: float,
                 conditions: dict | None = None) -> np.ndarray:
    """Uneven lighting and colour cast, brightness/contrast/gamma, blur, sensor noise
    and JPEG re-compression; ``strength`` 1 is phone-photo-like, smaller is scan-like. Records
    what it applied in ``conditions`` (``simulate_capture``)."""
    conditions = {} if conditions is None else conditions
    h, w = img.shape[:2]
    # Lighting: a smooth per-channel gain field (uneven light plus white-balance cast).
    cells = int(rng.integers(2, 4))
    gain = rng.uniform(1 - 0.45 * strength, 1 + 0.1 * strength, (cells, cells, 1))
    gain = gain * rng.uniform(1 - 0.12 * strength, 1 + 0.12 * strength, (1, 1, 3))
    gain = cv2.resize(np.clip(gain * 128, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
    img = cv2.multiply(img, gain, scale=1 / 128)
    # Brightness, contrast and gamma in one lookup table.
    x = np.arange(256) / 255.0
    y = x ** rng.uniform(1 - 0.25 * strength, 1 + 0.3 * strength)
    y = (y - 0.5) * rng.uniform(1 - 0.3 * strength, 1 + 0.2 * strength) + 0.5
    y = y + rng.uniform(-0.12, 0.12) * strength
    conditions["tone"] = np.clip(y, 0, 1)[[64, 128, 192]].round(3).tolist()  # where quarter, half and 3/4 grey land
    img = cv2.LUT(img, np.clip(y * 255, 0, 255).astype(np.uint8))
    # Blur: defocus, sometimes hand shake.
    r = rng.random()
    if r < 0.15 * strength:
        length = int(rng.integers(3, 10))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        img = cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))
        conditions["blur"] = {"motion_px": length}
    elif r < 0.75:
        sigma = rng.uniform(0.3, 0.3 + 1.4 * strength)
        img = cv2.GaussianBlur(img, (0, 0), sigma)
        conditions["blur"] = {"sigma_px": round(float(sigma), 3)}
    # Sensor noise (uniform integer noise: as good as Gaussian after JPEG, and much cheaper).
    amp = int(rng.integers(0, 2 + 12 * strength))
    if amp:
        noise = rng.integers(-amp, amp + 1, img.shape, dtype=np.int16)
        img = cv2.add(img, noise, dtype=cv2.CV_8U)
    quality = int(rng.integers(35 if strength >= 1 else 60, 96))
    _, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def _shadow(img: np.ndarray, quad: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Soft shadow the document casts on the surface, drawn at quarter resolution for speed."""
    h, w = img.shape[:2]
    sw, sh = max(1, w // 4), max(1, h // 4)
    offset = rng.normal(0, 0.015 * max(w, h), 2)
    mask = np.zeros((sh, sw), np.uint8)
    cv2.fillConvexPoly(mask, np.round((quad + offset) / 4).astype(np.int32), 255, cv2.LINE_AA)
    mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(1, 5))
    shade = 255 - (cv2.resize(mask, (w, h)) * rng.uniform(0.2, 0.6)).astype(np.uint8)
    return cv2.multiply(img, cv2.merge([shade, shade, shade]), scale=1 / 255)


SKIN_LIGHT, SKIN_DARK = np.array([236, 196, 164]), np.array([92, 58, 40])


def _hand(rng: np.random.Generator, img: np.ndarray, quad: np.ndarray) -> None:
    """Fingers holding the document: skin-coloured rounded strokes reaching over one of its
    edges from a palm outside it, as when a card is held up to the camera."""
    edge = int(rng.integers(4))
    a, b = quad[edge], quad[(edge + 1) % 4]
    along = (b - a) / max(np.linalg.norm(b - a), 1e-6)
    inward = np.array([-along[1], along[0]])  # clockwise quad: the inside is to the right of a -> b
    short = min(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[1]))
    skin = SKIN_LIGHT + (SKIN_DARK - SKIN_LIGHT) * rng.uniform() + rng.normal(0, 8, 3)
    colour = tuple(int(c) for c in np.clip(skin, 0, 255))
    width = rng.uniform(0.1, 0.16) * short
    grip = a + (b - a) * rng.uniform(0.1, 0.9)
    fingers = int(rng.integers(1, 5))
    for f in range(fingers):
        base = grip + along * (f - (fingers - 1) / 2) * width * 1.05 - inward * width * 1.5
        tip = grip + along * (f - (fingers - 1) / 2) * width * 1.05 + inward * rng.uniform(0.05, 0.3) * short
        cv2.line(img, tuple(base.astype(int)), tuple(tip.astype(int)), colour, max(2, int(width)), cv2.LINE_AA)
    palm = grip - inward * width * rng.uniform(3, 5)
    angle = np.degrees(np.arctan2(along[1], along[0]))
    axes = (int(width * max(fingers, 2) * 0.8), int(width * 2.5))
    cv2.ellipse(img, tuple(palm.astype(int)), axes, angle, 0, 360, colour, -1, cv2.LINE_AA)


def _soft_field(img: np.ndarray, draw) -> np.ndarray:
    """A smooth 0..255 mask at full size: ``draw(mask, scale)`` paints it at quarter
    resolution, where blurring is 16 times cheaper."""
    h, w = img.shape[:2]
    small = np.zeros((max(1, h // 4), max(1, w // 4)), np.uint8)
    blur = draw(small, 0.25)
    small = cv2.GaussianBlur(small, (0, 0), blur)
    return cv2.merge([cv2.resize(small, (w, h))] * 3)


def _shade_band(rng: np.random.Generator, img: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """A soft shadow (a head, a phone or a hand between the lamp and the desk) falling
    across part of the document."""
    centre = quad.mean(axis=0) + rng.normal(0, 0.2, 2) * np.ptp(quad, axis=0)
    normal = _rotation(rng.uniform(0, 360)) @ np.array([1.0, 0.0])
    far = 4 * max(img.shape[:2])

    def draw(mask, s):
        side = np.array([-normal[1], normal[0]]) * far
        poly = np.array([centre - side, centre + side, centre + side + normal * far, centre - side + normal * far]) * s
        cv2.fillConvexPoly(mask, poly.astype(np.int32), 255)
        return rng.uniform(2, 12)

    shade = 255 - (_soft_field(img, draw) * rng.uniform(0.25, 0.6)).astype(np.uint8)
    return cv2.multiply(img, shade, scale=1 / 255)


def _spot_on(rng: np.random.Generator, quad: np.ndarray, sizes: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A random point on the document, and an ellipse's two radii drawn from ``sizes`` (shares of its diagonal)."""
    t = rng.uniform(0.1, 0.9, 2)
    centre = quad[0] + (quad[1] - quad[0]) * t[0] + (quad[3] - quad[0]) * t[1]
    return centre, np.linalg.norm(quad[2] - quad[0]) * rng.uniform(*sizes, 2)


def _ellipse(rng: np.random.Generator, centre: np.ndarray, size: np.ndarray, softness: float):
    """A ``_soft_field`` painter: an ellipse at a random angle, its edge blurred by ``softness`` of its radius."""
    def draw(mask, s):
        cv2.ellipse(mask, tuple((centre * s).astype(int)), tuple(np.maximum(1, size * s).astype(int)),
                    rng.uniform(0, 180), 0, 360, 255, -1)
        return max(0.5, float(size.min() * s * softness))
    return draw


def _glare(rng: np.random.Generator, img: np.ndarray, quad: np.ndarray, conditions: dict) -> np.ndarray:
    """A bright elliptical highlight, as a lamp or flash reflects off a laminated card."""
    centre, size = _spot_on(rng, quad, (0.05, 0.25))
    light = _soft_field(img, _ellipse(rng, centre, size, 0.5))
    strength = rng.uniform(0.6, 1.0)
    conditions["glare"] = {"strength": round(float(strength), 3),
                           "radii": (size / np.linalg.norm(quad[2] - quad[0])).round(3).tolist()}
    return cv2.add(img, cv2.multiply(255 - img, light, scale=strength / 255))


def _washed_share(unlit: np.ndarray, photo: np.ndarray, quad: np.ndarray) -> float:
    """The share of the document that the light turned white in the finished photo (glare, uneven
    light, the tone curve, which may also darken a highlight again): white there, not white before."""
    document = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillConvexPoly(document, np.round(quad).astype(np.int32), 1)
    washed = (photo.min(axis=2) >= 250) & (unlit.min(axis=2) < 245) & (document > 0)
    return round(float(washed.sum() / max(document.sum(), 1)), 4)


def _hologram(rng: np.random.Generator, img: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """A hologram's rainbow sheen: a soft patch on the document whose colour runs through the
    hues across it, as a laminate's security foil catches the light."""
    centre, size = _spot_on(rng, quad, (0.08, 0.3))
    h, w = img.shape[:2]
    normal = _rotation(rng.uniform(0, 360)) @ np.array([1.0, 0.0])
    ys, xs = np.mgrid[0:h // 4 + 1, 0:w // 4 + 1].astype(np.float32) * 4
    phase = ((xs - centre[0]) * normal[0] + (ys - centre[1]) * normal[1]) / max(float(size.max()), 1.0)
    hue = ((phase * rng.uniform(40, 90) + rng.uniform(0, 180)) % 180).astype(np.uint8)
    hsv = cv2.merge([hue, np.full_like(hue, int(rng.integers(120, 256))), np.full_like(hue, 255)])
    rainbow = cv2.resize(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), (w, h), interpolation=cv2.INTER_LINEAR)
    patch = _soft_field(img, _ellipse(rng, centre, size, 0.3))
    sheen = cv2.multiply(patch, rainbow, scale=rng.uniform(0.3, 0.7) / 255)
    return cv2.add(img, sheen)


def corners_outside(quad: np.ndarray, frame: tuple[int, int]) -> int:
    return int(((quad < 0) | (quad > np.array(frame))).any(axis=1).sum())


def _cut_by_frame(rng: np.random.Generator, quad: np.ndarray, frame: tuple[int, int]) -> np.ndarray | None:
    """``quad`` slid towards a side or a corner of the frame until only a random 60-97% of
    the document is inside, with one or two of its corners outside; None when the draw
    leaves three or more out (the caller keeps the document in frame)."""
    direction = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)][int(rng.integers(8))]
    direction = np.array(direction, float)
    target = rng.uniform(MIN_VISIBLE, 0.97)
    low, high = 0.0, float(max(frame))
    for _ in range(20):  # bisection: the visible share falls as the document slides out
        mid = (low + high) / 2
        low, high = (mid, high) if visible_share(quad + direction * mid, frame) > target else (low, mid)
    moved = quad + direction * high
    return moved if 1 <= corners_outside(moved, frame) <= 2 else None


def _capture_quad(rng: np.random.Generator, doc_size: tuple[int, int], frame: tuple[int, int],
                  partial: bool) -> np.ndarray:
    """Where the document's corners go in the photo: its longer side covers 30-80% of the
    frame's longer side (less if needed to stay in frame), any rotation, some tilt;
    ``partial``: then slid partly out of the frame (``_cut_by_frame``)."""
    w, h = doc_size
    fw, fh = frame
    long_side = rng.uniform(0.3, 0.8) * max(fw, fh)
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], float) / 2 * (long_side / max(w, h))
    if rng.random() < 0.7:  # mostly near-upright in one of the four orientations ...
        angle = 90 * rng.integers(4) + rng.normal(0, 6)
    else:  # ... but any angle happens
        angle = rng.uniform(0, 360)
    quad = corners @ _rotation(angle).T
    quad += rng.uniform(-0.07, 0.07, (4, 2)) * long_side  # perspective tilt
    margin = 0.02 * min(fw, fh)
    extent = quad.max(axis=0) - quad.min(axis=0)
    quad *= min(1.0, (fw - 2 * margin) / extent[0], (fh - 2 * margin) / extent[1])
    low = margin - quad.min(axis=0)
    high = np.array([fw, fh]) - margin - quad.max(axis=0)
    quad = quad + rng.uniform(low, np.maximum(low, high))
    for _ in range(4 if partial else 0):
        cut = _cut_by_frame(rng, quad, frame)
        if cut is not None:
            return cut
    return quad


def _plain_card(rng: np.random.Generator) -> np.ndarray:
    """A card that is not an identity document (a bank, loyalty or business card): a
    gradient or plain face with a few stripes, lines of text and sometimes a chip."""
    w, h = 428, 270
    a = np.empty((h, w, 3), np.uint8)
    top, bottom = np.array(_random_colour(rng)), np.array(_random_colour(rng))
    a[:] = (top[None, :] + (bottom - top)[None, :] * np.linspace(0, 1, h)[:, None])[:, None, :].astype(np.uint8)
    for _ in range(int(rng.integers(0, 3))):
        y = int(rng.uniform(0, h))
        cv2.rectangle(a, (0, y), (w, y + int(rng.integers(8, 50))), _random_colour(rng), -1)
    ink = _random_colour(rng)
    for _ in range(int(rng.integers(1, 5))):
        letters = "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "), int(rng.integers(4, 16))))
        org = (int(rng.uniform(10, w / 2)), int(rng.uniform(30, h - 10)))
        cv2.putText(a, letters, org, cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.6, 1.4), ink, 2, cv2.LINE_AA)
    if rng.random() < 0.5:
        cv2.rectangle(a, (40, 90), (100, 140), (200, 170, 90), -1)
    return a


def _distractor(rng: np.random.Generator, img: np.ndarray, quad: np.ndarray, card: np.ndarray) -> float:
    """Draw ``card`` in place as a second document lying on the desk beside the photographed
    one: 40-80% of its size, anywhere (partly out of frame too), under it where they overlap.
    Returns the share of the photo it covers (the part under the document included)."""
    h, w = img.shape[:2]
    side = max(np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1)) * rng.uniform(0.4, 0.8)
    ch, cw = card.shape[:2]
    corners = np.array([[-cw, -ch], [cw, -ch], [cw, ch], [-cw, ch]], float) / 2 * (side / max(cw, ch))
    corners = corners @ _rotation(rng.uniform(0, 360)).T + rng.uniform(-0.05, 0.05, (4, 2)) * side
    centre = np.array([rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h])
    src = _shrink(card, int(side)) if max(card.shape[:2]) > 1.3 * side else card
    _warp(src, corners + centre, (w, h), dst=img, borderMode=cv2.BORDER_TRANSPARENT)
    return cv2.contourArea(np.float32(corners)) * visible_share(corners + centre, (w, h)) / (w * h)


def simulate_capture(doc: Image.Image, rng: np.random.Generator, *, backgrounds: Sequence[Path] = (),
                     out_size: tuple[int, int] | None = None, framing: str = "any",
                     distractors: Sequence[Image.Image] = (),
                     conditions: dict | None = None) -> tuple[Image.Image, np.ndarray]:
    """Photograph-like view of a flat document on a cluttered background.

    Returns the RGB image (``out_size`` (w, h), by default a random phone-like size)
    and the document's corners in it as a float (4, 2) array: the document's own
    top-left, top-right, bottom-right, bottom-left (clockwise on screen), whatever
    the rotation. ``framing`` (one of ``FRAMINGS``): "any" puts part of the document outside
    the frame in a share of captures (``PARTIAL_PROBABILITY``), "partial" always, "whole" never;
    the quad still gives the true corners there. Fingers, a shadow band, glare or a hologram's
    sheen may cover parts of the document, and a second card may lie beside it: one of
    ``distractors`` (other documents) where given, else a plain card. "scan" is no photo of a
    desk but the document filling the frame (``_whole_frame``), at a size of its own; the other
    arguments do not apply there.

    ``conditions``, where given, is filled with what the capture applied, to score capture-quality
    checks against (``classifier.quality``): the document's share of the photo and out of it, its
    longest side in photo pixels, the
    share a second card covers, glare (strength, radii as shares of the diagonal), the share of the
    document washed out to white in the finished photo (by glare or by the light alone), blur
    (Gaussian sigma or motion length, in photo pixels) and the tone curve (where quarter, half and
    3/4 grey land).
    """
    conditions = {} if conditions is None else conditions
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {FRAMINGS}, not {framing!r}")
    if framing == "scan":
        img, quad = _whole_frame(doc, rng, conditions)
        return Image.fromarray(img), quad.astype(np.float32)
    if out_size is None:
        out_size = PHOTO_SIZES[int(rng.integers(len(PHOTO_SIZES)))]
    src = _rgb_array(doc)
    partial = framing == "partial" or (framing == "any" and rng.random() < PARTIAL_PROBABILITY)
    quad = _capture_quad(rng, (src.shape[1], src.shape[0]), out_size, partial)
    # Pre-shrink to about the size it will have: a perspective warp alone would alias fine print.
    side = max(np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1))
    if max(src.shape[:2]) > 1.3 * side:
        src = _shrink(src, int(side))
    img = _random_background_array(rng, out_size, backgrounds)
    conditions["second_document"] = 0.0  # the share of the photo a second card covers
    if rng.random() < DISTRACTOR_PROBABILITY:
        card = _rgb_array(distractors[int(rng.integers(len(distractors)))]) if distractors else _plain_card(rng)
        conditions["second_document"] = round(_distractor(rng, img, quad, card), 4)
    if rng.random() < 0.5:
        img = _shadow(img, quad, rng)
    img = _warp(src, quad, out_size, dst=img, borderMode=cv2.BORDER_TRANSPARENT)
    if rng.random() < 0.35:
        _hand(rng, img, quad)
    if rng.random() < 0.3:
        img = _shade_band(rng, img, quad)
    unlit = img  # every step after returns a new array
    if rng.random() < 0.4:
        img = _glare(rng, img, quad, conditions)
    if rng.random() < 0.25:
        img = _hologram(rng, img, quad)
    img = _photometric(img, rng, 1.0, conditions)
    conditions["washed_share"] = _washed_share(unlit, img, quad)
    _framing(conditions, quad, out_size)
    return Image.fromarray(img), quad.astype(np.float32)


def _framing(conditions: dict, quad: np.ndarray, frame: tuple[int, int]) -> None:
    """Where the document lies in the photo, as ``conditions`` record it."""
    area = cv2.contourArea(np.float32(quad))
    conditions["document_share"] = round(area * visible_share(quad, frame) / (frame[0] * frame[1]), 4)
    conditions["outside_share"] = round(max(0.0, 1 - visible_share(quad, frame)), 4)
    conditions["document_px"] = round(float(np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1).max()), 1)


SCAN_STYLES = ("margin", "border", "tight", "beyond")  # how a whole-frame view meets the image's edge


def _scan_quad(rng: np.random.Generator, doc_size: tuple[int, int], style: str) -> tuple[np.ndarray, tuple[int, int]]:
    """Where a document that fills the frame lies, and the frame's size: upright or a quarter turn
    from it, skewed by a degree or two, in a frame its outline fills 80-97% of ("margin", "border"),
    all of ("tight") or overruns on every side by 1-6% ("beyond": every corner outside)."""
    w, h = doc_size
    quad = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], float) / 2
    quad = quad @ _rotation(90 * rng.integers(4) * (rng.random() < 0.3) + rng.normal(0, 1.5)).T
    quad += rng.uniform(-0.015, 0.015, (4, 2)) * max(w, h)  # a phone crop's leftover perspective
    extent = quad.max(axis=0) - quad.min(axis=0)
    fill = {"margin": (0.8, 0.97), "border": (0.94, 0.99), "tight": (0.995, 1.005), "beyond": (1.02, 1.12)}[style]
    frame = extent / rng.uniform(*fill, 2)
    quad += (frame - extent) * rng.uniform(0.2, 0.8, 2) - quad.min(axis=0)
    scale = rng.uniform(400, MAX_SIDE) / frame.max()
    return quad * scale, (max(8, round(frame[0] * scale)), max(8, round(frame[1] * scale)))


def _whole_frame(doc: Image.Image, rng: np.random.Generator, conditions: dict) -> tuple[np.ndarray, np.ndarray]:
    """A document filling the frame, as a flatbed scan, a phone crop or a screenshot gives it
    (``SCAN_STYLES``: a white scanner margin, a thin dark border, no margin, or cut by the frame
    on every side), with scanner- to phone-like artefacts. Returns the RGB array and the quad."""
    src = _rgb_array(doc, MAX_SIDE)
    style = SCAN_STYLES[int(rng.integers(len(SCAN_STYLES)))]
    quad, size = _scan_quad(rng, (src.shape[1], src.shape[0]), style)
    if style == "margin":
        surround = np.full((size[1], size[0], 3), _random_colour(rng, 215, 256), np.uint8)
    elif style == "border":
        surround = np.full((size[1], size[0], 3), _random_colour(rng, 0, 70), np.uint8)
    else:
        surround = _random_background_array(rng, size, ())  # shows only where the outline falls short
    side = max(np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1))
    if max(src.shape[:2]) > 1.3 * side:
        src = _shrink(src, int(side))
    img = _warp(src, quad, size, dst=surround, borderMode=cv2.BORDER_TRANSPARENT)
    unlit = img
    if rng.random() < 0.15:
        img = _glare(rng, img, quad, conditions)
    if rng.random() < 0.1:
        img = _hologram(rng, img, quad)
    img = _photometric(img, rng, rng.uniform(0.2, 0.8), conditions)
    conditions["washed_share"] = _washed_share(unlit, img, quad)
    conditions["second_document"] = 0.0
    _framing(conditions, quad, size)
    return img, quad


def augment(img: Image.Image, rng: np.random.Generator, *, backgrounds: Sequence[Path] = (),
            capture_probability: float = 0.5) -> Image.Image:
    """One random training view of a labelled image: with ``capture_probability`` a
    simulated photo (``simulate_capture``), otherwise a scan-like view. RGB, at most
    about 800 px on the longer side; deterministic for a given ``rng`` state."""
    if rng.random() < capture_probability:
        # Shrinking first keeps big uploads fast; the capture shrinks the document further.
        small = Image.fromarray(_rgb_array(img, MAX_SIDE))
        return simulate_capture(small, rng, backgrounds=backgrounds)[0]
    return Image.fromarray(_whole_frame(img, rng, {})[0])
