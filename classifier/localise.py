"""Finding the document in a photo: its four corners, so the classifier can look at
the rectified document instead of the whole cluttered frame.

``Localiser`` is a small U-Net trained from scratch on simulated captures
(``classifier.training.localiser``; ``classifier.artifact`` loads it). It predicts corner heatmaps and a document mask;
the mask decides which heatmap peaks make the quad. The image is squashed to ``image_size``
and padded by ``pad`` pixels on each side, so a corner a little outside the photo
still has a place on the heatmap. Its cost hardly depends on the photo's size,
apart from the one resize: pass an image decoded at a modest size (``load_image(source,
min_size=...)``, for any format) rather than a full 12 MP decode.

Corner order of every quad this module returns: image-geometric, starting at the
corner nearest the image's top-left (smallest x + y), then clockwise on screen
(``order_corners``). Not the document's own top-left: the network's guess of which
way up the document is was right for only 82% of held-out simulated captures, too
few to rotate documents by. So ``rectify`` gives the document flat but as it lies
in the photo, possibly a quarter or half turn from upright; the classifier
already averages over quarter turns. ``decode_heatmaps`` still yields the
network's own-order guess, which training measures (``own_order_share``).

Coordinates: a W x H image spans [0, W] x [0, H] (as in ``classifier.synth.augment``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import NamedTuple

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.models import mobilenet_v3_small

from classifier.inference import BatchedForward, frozen


@dataclass(frozen=True)
class Localisation:
    """Where the document is: ``quad`` (4, 2) in pixels, the corner nearest the image's top-left
    first and clockwise, or None when no outline was found; ``confidence`` in 0..1 (the weakest
    corner's peak, ``found_outline``). ``presence``: how surely any document is in view, outline
    found or not (``decode_heatmaps``); ``no_document``: it is below the localiser's measured
    threshold. Localisers trained before they measured it give None and False."""

    quad: np.ndarray | None
    confidence: float
    presence: float | None = None
    no_document: bool = False

    @property
    def found(self) -> bool:
        return self.quad is not None

    def as_json(self) -> dict:
        """As records, the API and CSV files give it: corners to 0.1 px, confidence to 4 decimals."""
        return {"found": self.found, "confidence": round(self.confidence, 4),
                "quad": self.quad.round(1).tolist() if self.found else None}

    def scaled(self, fx: float, fy: float) -> "Localisation":
        """The same outline in an image ``fx`` times as wide and ``fy`` times as tall."""
        return self if self.quad is None else replace(self, quad=self.quad * np.array([fx, fy]))


# --------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------

def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CornerNet(nn.Module):
    """Tiny U-Net: stride-2 stages down to 1/32 (enough context to tell which way up the
    document is), then back up to 1/4 with skips. Outputs logits at stride 4 for 6 maps: one
    heatmap per corner of the document's own (TL, TR, BR, BL), one for any corner, and the
    document mask. "Any corner" has targets that never contradict each other, whichever way up
    the document is, so it learns where the corners are fastest; the four say which is which."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        chans = (3,) + tuple(widths)
        self.down = nn.ModuleList(nn.Sequential(_conv(chans[i], chans[i + 1], 2), _conv(chans[i + 1], chans[i + 1]))
                                  for i in range(len(widths)))
        # Up from the deepest stage to stride 4 (the second stage).
        self.up = nn.ModuleList(_conv(widths[i + 1] + widths[i], widths[i]) for i in range(len(widths) - 2, 0, -1))
        self.head = nn.Conv2d(widths[1], 6, 1)
        with torch.no_grad():  # corners are rare: start near their prior, not at probability 0.5
            self.head.bias[:5] = -4.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        x = skips.pop()
        for up in self.up:
            skip = skips.pop()
            x = up(torch.cat([nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear"), skip], 1))
        return self.head(x)


class MobileCornerNet(nn.Module):
    """The same six maps as ``CornerNet`` from an ImageNet-pretrained encoder: torchvision's
    MobileNetV3-Small up to stride 32 (its last 1x1 expansion left out), then a decoder back up to
    stride 4 with a skip from each of its stages. Pretrained filters already know edges, text and
    faces on real photographs, which renders of fictional documents alone cannot teach; the
    encoder costs about a quarter of ``CornerNet``'s compute."""

    STAGES = ((0, 2), (2, 4), (4, 9), (9, 12))  # ``features`` slices ending at stride 4, 8, 16 and 32
    CHANNELS = (16, 24, 48, 96)  # what each stage gives
    MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's input normalisation

    def __init__(self, widths: tuple[int, ...], features: nn.Module | None = None):
        """``widths``: the decoder's, at stride 16, 8 and 4. ``features``: MobileNetV3-Small's, to
        start from (training); None builds them untrained, for weights about to be loaded."""
        super().__init__()
        features = features if features is not None else mobilenet_v3_small().features
        self.stages = nn.ModuleList(features[a:b] for a, b in self.STAGES)
        ins = (self.CHANNELS[-1],) + tuple(widths[:-1])
        self.up = nn.ModuleList(_conv(i + c, w) for i, c, w in zip(ins, self.CHANNELS[-2::-1], widths))
        self.head = nn.Conv2d(widths[-1], 6, 1)
        with torch.no_grad():
            self.head.bias[:5] = -4.0
        # ``to_input``'s (pixel - 127.5) / 64, turned into what the ImageNet weights expect
        std = torch.tensor(self.STD).view(1, 3, 1, 1)
        self.register_buffer("scale", 64 / 255 / std, persistent=False)
        self.register_buffer("shift", (0.5 - torch.tensor(self.MEAN).view(1, 3, 1, 1)) / std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.scale + self.shift
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        x = skips.pop()
        for up in self.up:
            skip = skips.pop()
            x = up(torch.cat([nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear"), skip], 1))
        return self.head(x)


NETWORKS = {"unet": CornerNet, "mobilenet_v3_small": MobileCornerNet}  # localiser.json's "network"


STRIDE = 4  # heatmap cell size in network-input pixels
# How heatmaps become an outline (``decode_heatmaps``). A localiser records the version it was
# trained with and keeps being read that way, so the models cut out with it see what they learned
# from; a new localiser gets the newest. Bump when decoding changes where corners land.
DECODE_VERSION = 3
# Version 3: only an outline a document can have in perspective is taken (``plausible``), and three
# strong corners with a mask that agrees vouch for a fourth the heatmap barely shows (a finger or
# glare over it), which can also be where the other three say it must be.
MIN_ANGLE, MAX_ANGLE = 40.0, 140.0  # each corner's angle, in degrees
MIN_SIDE_RATIO = 0.4  # the shorter of two opposite sides against the longer
MAX_ASPECT = 3.0  # the longer pair of opposite sides against the shorter
MIN_AREA = 0.01  # of the photo's area
MASK_AGREEMENT = 0.85  # the outline's IoU with the predicted document mask that vouches for a weak corner
PRESENCE_CELLS = 16  # a document's presence: the mask's 16th strongest cell in the photo (1% of it at 160 px)


def to_input(img: Image.Image | np.ndarray, image_size: int, pad: int) -> torch.Tensor:
    """(3, S, S) tensor: the image squashed to ``image_size`` and padded with zeros (mid-grey)."""
    a = np.asarray(img.convert("RGB")) if isinstance(img, Image.Image) else img
    a = cv2.resize(a, (image_size, image_size), interpolation=cv2.INTER_AREA)
    x = (torch.from_numpy(a).permute(2, 0, 1).float() - 127.5) / 64
    return nn.functional.pad(x, (pad, pad, pad, pad))


def image_to_canvas(quad: np.ndarray, size: tuple[int, int], image_size: int, pad: int) -> np.ndarray:
    """Image pixel coordinates -> network-input coordinates."""
    return quad * (image_size / np.array(size, float)) + pad


def canvas_to_image(quad: np.ndarray, size: tuple[int, int], image_size: int, pad: int) -> np.ndarray:
    return (quad - pad) * (np.array(size, float) / image_size)


def decode_version(config: dict) -> int:
    """The decoding a localiser's ``localiser.json`` asks for: those written before it said are read as 2."""
    return int(config.get("decode", 2))


def plausible(quad: np.ndarray, image_area: float) -> bool:
    """Whether ``quad`` (4, 2, in order around it) can be a document's outline seen in perspective:
    convex, its corners' angles within ``MIN_ANGLE``..``MAX_ANGLE``, opposite sides alike
    (``MIN_SIDE_RATIO``), not a sliver (``MAX_ASPECT``), and at least ``MIN_AREA`` of the photo.
    Two corners almost on one another, or a bow tie, fail."""
    edges = np.roll(quad, -1, axis=0) - quad  # edge k runs from corner k to corner k + 1
    lengths = np.linalg.norm(edges, axis=1)
    if lengths.min() < 1e-6:
        return False
    following = np.roll(edges, -1, axis=0)
    turns = edges[:, 0] * following[:, 1] - edges[:, 1] * following[:, 0]
    if not ((turns > 0).all() or (turns < 0).all()):  # all turns one way and under 180 degrees: convex, simple
        return False
    cosines = -(edges * following).sum(axis=1) / (lengths * np.roll(lengths, -1))
    angles = np.degrees(np.arccos(np.clip(cosines, -1, 1)))
    opposite = np.minimum(lengths[:2], lengths[2:]) / np.maximum(lengths[:2], lengths[2:])
    pairs = lengths[:2] + lengths[2:]
    area = abs(float((quad[:, 0] * np.roll(quad[:, 1], -1) - np.roll(quad[:, 0], -1) * quad[:, 1]).sum())) / 2
    return bool(angles.min() >= MIN_ANGLE and angles.max() <= MAX_ANGLE and opposite.min() >= MIN_SIDE_RATIO
                and pairs.max() <= MAX_ASPECT * pairs.min() and area >= MIN_AREA * image_area)


def found_outline(corners: np.ndarray, peaks: np.ndarray, agreement: float, threshold: float,
                  decode: int) -> tuple[np.ndarray | None, float]:
    """One image's outline from ``decode_heatmaps``, or None where it is not found, and how sure
    it is, in 0..1: the weakest corner's peak, found from ``threshold`` up. From decoding 3, where
    that corner alone is weak but the outline agrees with the document mask (``MASK_AGREEMENT``),
    the second weakest's: three strong corners vouch for it."""
    weakest, second = np.sort(peaks)[:2]
    vouched = decode >= 3 and weakest < threshold and agreement >= MASK_AGREEMENT
    confidence = float(second if vouched else weakest)
    return (None if confidence < threshold or np.isnan(corners).any() else corners), confidence


class Readings(NamedTuple):
    """What ``decode_heatmaps`` reads off a batch's heatmaps."""

    corners: np.ndarray  # (N, 4, 2) network-input pixels, the document's own top-left first, clockwise; NaN: none
    peaks: np.ndarray  # (N, 4) each corner's peak probability
    agreement: np.ndarray  # (N,) the outline's IoU with the document mask
    presence: np.ndarray  # (N,) the document mask's ``PRESENCE_CELLS``-th strongest cell inside the photo


def decode_heatmaps(logits: torch.Tensor, image_cells: int, sizes: np.ndarray | None = None,
                    decode: int = DECODE_VERSION, window: int = 2, candidates: int = 7) -> Readings:
    """Each image's outline (``Readings``). From decoding 3 an image with no ``plausible`` outline
    gets NaN corners. ``presence`` says whether there is a document at all, wherever its corners
    are: a document covers many cells of the mask, even when it fills the frame and has no corner
    in view.

    Where the corners are comes from the any-corner heatmap: of its strongest separate peaks
    (up to ``candidates``), the four whose quad best covers the predicted document mask, so a
    second peak beside a real corner, or a corner-like spot inside the document, loses to a
    weaker peak that closes the quad. From decoding 3 the photo's own border is a candidate too,
    and a fourth corner may be completed from three of the four strongest peaks, as the
    parallelogram they span. Which corner is which
    comes from the per-corner heatmaps: of the four rotations of the clockwise order, the one they
    agree with most. Each peak is refined to sub-cell precision by the probability-weighted mean
    of its (2 * window + 1)^2 neighbourhood. ``image_cells``: the photo's side on the heatmap, which
    pads it equally on every side; ``sizes``: each photo's own (width, height), which the network's
    square input squashed (whether an outline is ``plausible`` depends on it; None: square)."""
    prob = torch.sigmoid(logits[:, :4])
    combined = torch.sigmoid(logits[:, 4])
    mask = torch.sigmoid(logits[:, 5]).numpy()
    local_max = combined == nn.functional.max_pool2d(combined[:, None], 2 * window + 1, 1, window)[:, 0]
    strongest = (combined * local_max).flatten(1).topk(4 * candidates).indices.numpy()
    prob, combined = prob.numpy(), combined.numpy()
    n, _, h, w = prob.shape
    padded = np.pad(combined, ((0, 0), (window, window), (window, window)))
    offsets = np.arange(-window, window + 1)
    corners, peaks, agreement = np.full((n, 4, 2), np.nan), np.zeros((n, 4)), np.zeros(n)
    margin = (w - image_cells) // 2
    inside = mask[:, margin:margin + image_cells, margin:margin + image_cells].reshape(n, -1)
    presence = -np.partition(-inside, PRESENCE_CELLS - 1, axis=1)[:, PRESENCE_CELLS - 1]
    for i in range(n):
        ys, xs = _separate_peaks(*np.divmod(strongest[i], w), window, candidates)
        points = np.zeros((len(ys), 2))
        for k, (y, x) in enumerate(zip(ys, xs)):
            patch = padded[i, y:y + 2 * window + 1, x:x + 2 * window + 1]
            total = max(float(patch.sum()), 1e-6)
            points[k] = (x + patch.sum(0) @ offsets / total + 0.5, y + patch.sum(1) @ offsets / total + 0.5)
        points, cells, quads = _candidate_quads(points, np.stack([xs, ys], axis=1), (w, h),
                                                (margin, margin + image_cells - 1) if decode >= 3 else None)
        size = np.array(sizes[i] if sizes is not None else (image_cells, image_cells), float)
        chosen, agreement[i] = _best_quad(points, combined[i, cells[:, 1], cells[:, 0]], mask[i], quads,
                                          size / image_cells if decode >= 3 else None, float(np.prod(size)))
        if chosen is None:
            continue
        x, y = cells[chosen].T
        votes = [sum(prob[i, k, y[j], x[j]] for k, j in enumerate(np.roll(np.arange(4), -s))) for s in range(4)]
        order = np.roll(chosen, -int(np.argmax(votes)))
        corners[i] = points[order] * STRIDE
        peaks[i] = combined[i, cells[order, 1], cells[order, 0]]
    return Readings(corners, peaks, agreement, presence)


def _separate_peaks(ys: np.ndarray, xs: np.ndarray, distance: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` of the (strongest first) peaks that lie more than ``distance`` cells
    from every stronger one: equal neighbouring cells are both local maxima of a peak between
    them. At least four are returned, repeating the last when there are fewer."""
    kept = []
    for k in range(len(ys)):
        if all(max(abs(ys[k] - ys[j]), abs(xs[k] - xs[j])) > distance for j in kept):
            kept.append(k)
        if len(kept) == limit:
            break
    kept += [kept[-1]] * (4 - len(kept))  # fewer than four peaks: the result will not be trusted anyway
    return ys[kept], xs[kept]


def _candidate_quads(points: np.ndarray, cells: np.ndarray, size: tuple[int, int],
                     border: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The quads to choose from, as indices into the returned points and cells: every four of the
    peaks; with the photo's ``border`` (its first and last cell on the heatmap of ``size`` (w, h)
    cells), also the border itself (a scan or a tight crop), and every three of the four strongest
    peaks with the fourth corner of the parallelogram they span (each of the three as the corner
    opposite it), where it lies on the heatmap."""
    quads = [np.array(q) for q in itertools.combinations(range(len(points)), 4)]
    if border is None:
        return points, cells, quads
    first, last = border
    extra = [np.array([[first, first], [last + 1, first], [last + 1, last + 1], [first, last + 1]], float)]
    quads.append(np.arange(len(points), len(points) + 4))
    for trio in itertools.combinations(range(min(4, len(points))), 3):
        for middle in trio:
            a, c = (points[k] for k in trio if k != middle)
            corner = a + c - points[middle]
            if (corner >= 0).all() and (corner < np.array(size)).all():
                quads.append(np.array([*trio, len(points) + 3 + len(extra)]))
                extra.append(corner[None])
    extra = np.concatenate(extra)
    extra_cells = np.minimum(np.floor(extra).astype(int), np.array(size) - 1)
    extra_cells[:4] = np.clip(extra_cells[:4], first, last)  # the border's corners: the photo's corner cells
    return np.concatenate([points, extra]), np.concatenate([cells, extra_cells]), quads


def _best_quad(points: np.ndarray, strengths: np.ndarray, mask: np.ndarray, quads: list[np.ndarray],
               scale: np.ndarray | None, image_area: float) -> tuple[np.ndarray | None, float]:
    """Of ``quads`` (indices of four ``points``, heatmap cell units), the one whose convex quad scores
    best, clockwise, and its IoU with the soft document ``mask``; the score is that IoU plus the mean
    strength of its corner peaks. With ``scale``, the photo's pixels per heatmap cell (x, y), only
    quads ``plausible`` in the photo (of ``image_area`` pixels) count: None when none is."""
    best, best_score, best_iou = None if scale is not None else np.arange(4), -np.inf, 0.0
    for idx in quads:
        hull = cv2.convexHull(np.float32(points[idx]), returnPoints=False)
        if len(hull) < 4:  # a triangle or a line: one point lies inside the others
            continue
        idx = idx[hull[:, 0]]
        if scale is not None and not plausible(points[idx] * scale, image_area):
            continue
        area = quad_mask(points[idx], mask.shape)
        inter = float((area * mask).sum())
        iou = inter / max(float(area.sum() + mask.sum()) - inter, 1e-6)
        score = iou + float(strengths[idx].mean())
        if score > best_score:
            best, best_score, best_iou = idx, score, iou
    if best is not None:  # clockwise on screen (y down), whichever way the hull ran
        best = best[np.argsort(np.arctan2(*(points[best] - points[best].mean(axis=0)).T[::-1]))]
    return best, best_iou


def quad_mask(quad: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 heatmap grid, 1 inside ``quad`` and 0 outside; ``quad`` in cell units where
    cell (x, y) spans [x, x + 1). One rasterisation for the training target and the decoder."""
    out = np.zeros(shape, np.float32)
    cv2.fillPoly(out, [np.round(np.asarray(quad) * 16).astype(np.int32)], 1.0, cv2.LINE_8, shift=4)
    return out


class Localiser:
    """The learned localiser: loaded once (``classifier.artifact.load_localiser``), then
    ``locate(img)`` per image."""

    def __init__(self, net: nn.Module, config: dict):
        self.net = net.eval()
        self.config = config
        self.image_size = int(config["image_size"])
        self.pad = int(config["pad"])
        self.threshold = float(config["found_threshold"])
        self.decode = decode_version(config)
        # below this presence, no document is in view (``Localisation.no_document``); None: not measured
        self.presence_threshold = config.get("presence_threshold")
        self._forward = self.net

    @classmethod
    def untrained(cls, config: dict) -> "Localiser":
        """The network ``config`` describes, with weights still to load."""
        return cls(NETWORKS[config.get("network", "unet")](tuple(config["widths"])), config)

    @property
    def network(self) -> str:
        return self.config.get("network", "unet")  # localisers before MobileCornerNet do not say

    def serve(self, freeze: bool = True) -> None:
        """Ready for a server: concurrent ``locate`` calls share forward passes, of a frozen graph."""
        side = self.image_size + 2 * self.pad
        self._forward = BatchedForward(frozen(self.net, torch.zeros(1, 3, side, side)) if freeze else self.net)

    @torch.inference_mode()
    def locate(self, img: Image.Image) -> Localisation:
        """The document's corners in ``img``, in image-geometric order (see the module docstring)."""
        x = to_input(img, self.image_size, self.pad)[None]
        read = decode_heatmaps(self._forward(x), self.image_size // STRIDE, np.array([img.size]), self.decode)
        quad, confidence = found_outline(read.corners[0], read.peaks[0], read.agreement[0], self.threshold,
                                         self.decode)
        if quad is not None:
            quad = order_corners(canvas_to_image(quad, img.size, self.image_size, self.pad))
        if self.presence_threshold is None:
            return Localisation(quad, confidence)
        presence = float(read.presence[0])
        return Localisation(quad, confidence, presence, presence < self.presence_threshold)


# --------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------

def order_corners(quad: np.ndarray) -> np.ndarray:
    """Image-geometric order: clockwise on screen around the centre, starting at the corner
    nearest the image's top-left (smallest x + y)."""
    quad = np.asarray(quad, float)
    centre = quad.mean(axis=0)
    angles = np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0])  # y down: increasing = clockwise
    quad = quad[np.argsort(angles)]
    return np.roll(quad, -int(np.argmin(quad.sum(axis=1))), axis=0)


def rectify(img: Image.Image, quad: np.ndarray, long_side: int = 640) -> Image.Image:
    """The document inside ``quad`` warped flat, ``quad[0]`` becoming the output's top-left and
    the quad running clockwise: the width from the mean of the first and third edges, the height
    from the second and fourth, scaled so the longer side is ``long_side`` (so landscape or
    portrait as the quad is). Parts outside the image come out black."""
    q = np.asarray(quad, np.float64)
    width = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    height = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    scale = long_side / max(width, height, 1e-6)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    dst = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    m = cv2.getPerspectiveTransform(np.float32(q), dst)
    # Edge coordinates (image spans [0, W]) to the pixel-centre ones OpenCV warps with.
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    m = np.linalg.inv(shift) @ m @ shift
    src = np.asarray(img.convert("RGB"))
    if scale < 0.5:  # shrinking a lot: pre-shrink so the warp does not alias fine print
        f = max(scale * 1.5, 1 / max(src.shape[:2]))
        src = cv2.resize(src, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        m = m @ np.diag([1 / f, 1 / f, 1])
    return Image.fromarray(cv2.warpPerspective(src, m, (w, h), flags=cv2.INTER_LINEAR))
