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
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn

from classifier.inference import BatchedForward, frozen


@dataclass(frozen=True)
class Localisation:
    """Where the document is: ``quad`` (4, 2) in pixels, the corner nearest the image's top-left
    first and clockwise, or None when no outline was found; ``confidence`` in 0..1 (the weakest
    corner's peak)."""

    quad: np.ndarray | None
    confidence: float

    @property
    def found(self) -> bool:
        return self.quad is not None

    def as_json(self) -> dict:
        """As records, the API and CSV files give it: corners to 0.1 px, confidence to 4 decimals."""
        return {"found": self.found, "confidence": round(self.confidence, 4),
                "quad": self.quad.round(1).tolist() if self.found else None}

    def scaled(self, fx: float, fy: float) -> "Localisation":
        """The same outline in an image ``fx`` times as wide and ``fy`` times as tall."""
        return self if self.quad is None else Localisation(self.quad * np.array([fx, fy]), self.confidence)


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


STRIDE = 4  # heatmap cell size in network-input pixels
DECODE_VERSION = "2"  # bump when decode_heatmaps changes where corners land: models trained on its crops then retrain


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


def decode_heatmaps(logits: torch.Tensor, window: int = 2, candidates: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Corners in network-input pixels (N, 4, 2), the document's own top-left first and clockwise,
    and their peak probabilities (N, 4).

    Where the corners are comes from the any-corner heatmap: of its strongest separate peaks
    (up to ``candidates``), the four whose quad best covers the predicted document mask, so a
    second peak beside a real corner, or a corner-like spot inside the document, loses to a
    weaker peak that closes the quad. Which corner is which comes from the per-corner heatmaps:
    of the four rotations of the clockwise order, the one they agree with most. Each peak is
    refined to sub-cell precision by the probability-weighted mean of its (2 * window + 1)^2
    neighbourhood."""
    prob = torch.sigmoid(logits[:, :4])
    combined = torch.sigmoid(logits[:, 4])
    mask = torch.sigmoid(logits[:, 5]).numpy()
    local_max = combined == nn.functional.max_pool2d(combined[:, None], 2 * window + 1, 1, window)[:, 0]
    strongest = (combined * local_max).flatten(1).topk(4 * candidates).indices.numpy()
    prob, combined = prob.numpy(), combined.numpy()
    n, _, h, w = prob.shape
    padded = np.pad(combined, ((0, 0), (window, window), (window, window)))
    offsets = np.arange(-window, window + 1)
    corners, peaks = np.zeros((n, 4, 2)), np.zeros((n, 4))
    for i in range(n):
        ys, xs = _separate_peaks(*np.divmod(strongest[i], w), window, candidates)
        points = np.zeros((len(ys), 2))
        for k, (y, x) in enumerate(zip(ys, xs)):
            patch = padded[i, y:y + 2 * window + 1, x:x + 2 * window + 1]
            total = max(float(patch.sum()), 1e-6)
            points[k] = (x + patch.sum(0) @ offsets / total + 0.5, y + patch.sum(1) @ offsets / total + 0.5)
        chosen = _best_quad(points, combined[i, ys, xs], mask[i])
        clockwise = chosen[np.argsort(np.arctan2(*(points[chosen] - points[chosen].mean(axis=0)).T[::-1]))]
        agreement = [sum(prob[i, k, ys[j], xs[j]] for k, j in enumerate(np.roll(clockwise, -s))) for s in range(4)]
        order = np.roll(clockwise, -int(np.argmax(agreement)))
        corners[i] = points[order] * STRIDE
        peaks[i] = combined[i, ys[order], xs[order]]
    return corners, peaks


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


def _best_quad(points: np.ndarray, strengths: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Indices of the four ``points`` (heatmap cell units) whose convex quad scores best: its
    overlap (IoU) with the soft document ``mask`` plus the mean strength of its corner peaks."""
    best, best_score = np.arange(4), -np.inf
    for subset in itertools.combinations(range(len(points)), 4):
        idx = np.array(subset)
        hull = cv2.convexHull(np.float32(points[idx]))
        if len(hull) < 4:  # a triangle or a line: one point lies inside the others
            continue
        area = quad_mask(hull, mask.shape)
        inter = float((area * mask).sum())
        iou = inter / max(float(area.sum() + mask.sum()) - inter, 1e-6)
        score = iou + float(strengths[idx].mean())
        if score > best_score:
            best, best_score = idx, score
    return best


def quad_mask(quad: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 heatmap grid, 1 inside ``quad`` and 0 outside; ``quad`` in cell units where
    cell (x, y) spans [x, x + 1). One rasterisation for the training target and the decoder."""
    out = np.zeros(shape, np.float32)
    cv2.fillPoly(out, [np.round(np.asarray(quad) * 16).astype(np.int32)], 1.0, cv2.LINE_8, shift=4)
    return out


class Localiser:
    """The learned localiser: loaded once (``classifier.artifact.load_localiser``), then
    ``locate(img)`` per image."""

    def __init__(self, net: CornerNet, config: dict):
        self.net = net.eval()
        self.config = config
        self.image_size = int(config["image_size"])
        self.pad = int(config["pad"])
        self.threshold = float(config["found_threshold"])
        self._forward = self.net

    def serve(self, freeze: bool = True) -> None:
        """Ready for a server: concurrent ``locate`` calls share forward passes, of a frozen graph."""
        side = self.image_size + 2 * self.pad
        self._forward = BatchedForward(frozen(self.net, torch.zeros(1, 3, side, side)) if freeze else self.net)

    @torch.inference_mode()
    def locate(self, img: Image.Image) -> Localisation:
        """The document's corners in ``img``, in image-geometric order (see the module docstring)."""
        x = to_input(img, self.image_size, self.pad)[None]
        corners, peaks = decode_heatmaps(self._forward(x))
        confidence = float(peaks[0].min())  # the weakest corner decides: all four must be seen
        if confidence < self.threshold:
            return Localisation(None, confidence)
        return Localisation(order_corners(canvas_to_image(corners[0], img.size, self.image_size, self.pad)),
                            confidence)


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
