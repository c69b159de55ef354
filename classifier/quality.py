"""Capture quality: what is wrong with a photo, measured, and what to do for a better one.

Each check reads what the pipeline already has: the found outline (how much of the document lies
outside the photo, its share of the photo, its size in the photo's own pixels), the document in
the decoded photo (sharpness, at the resolution it has there), and the view the model looks at
(its blown-out share, its darkest and brightest tones). They explain the band; they do not
change the answer, but say where a document's printed design cannot be read (``designs.readable``).
The thresholds were fitted on simulated captures whose conditions are known (``benchmarks.quality``
prints how well each does, and what it would fit).

Not checked: glare on a document that fills the frame (a scan or a crop), where a white patch is
as likely the paper's own, or where no outline was found (a white patch anywhere in the photo is
not on the document); another document beside the first: the localiser is trained to look
past it, and nothing else measured found it (AUROC 0.61 for its corner heatmap's peaks away from
the outline).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from classifier.localise import Localisation, visible_share


@dataclass(frozen=True)
class QualityIssue:
    """One thing wrong with a photo: which (``code``), how much (``value``, in the check's own
    measure) and what to do about it, in plain words (``message``)."""

    code: str
    value: float
    message: str

    def as_json(self) -> dict:
        return {"code": self.code, "value": round(self.value, 4), "message": self.message}


# Every check, most important first: the order answers list them in.
MESSAGES = {
    "partly_out_of_frame": "Move back so that the whole document is in view.",
    "too_small": "Move closer, so that the document fills most of the photo.",
    "blurred": "Hold the camera steady and let it focus on the document.",
    "glare": "Tilt the document or move away from the light: part of it is washed out by a reflection.",
    "too_dark": "Take the photo in brighter light.",
    "overexposed": "Take the photo in softer light: it is too bright to read.",
}
CODES = tuple(MESSAGES)

# Thresholds (benchmarks.quality fitted them; their measures are in ``measure``)
OUTSIDE_SHARE = 0.03  # more of the document's area outside the photo than this, ...
FILLS_FRAME = 0.85  # ... unless it covers this much of the photo: a scan or a crop, its outline at the border
MIN_DOCUMENT_SHARE = 0.08  # the document covers less of the photo than this ...
MIN_DOCUMENT_PIXELS = 112  # ... or its shorter side has fewer of the photo's own pixels than half the model's input
MIN_SHARPNESS = 0.016  # the document's least curvature variance against its own (``_focus``), below: blurred
GLARE_SHARE = 0.02  # more of the document's view than this blown out (every channel at 250 or more)
DARK_HIGHLIGHTS = 0.45  # the view's 95th percentile of brightness, 0..1, below which it is too dark
BRIGHT_SHADOWS = 0.55  # its 5th percentile, above which it is overexposed: not even print stays dark
SHARPNESS_SIDE = 512  # the document is measured at most this large: the cost stays under a millisecond


def measure(view: Image.Image, localisation: Localisation | None, photo: Image.Image,
            original_size: tuple[int, int]) -> dict[str, float]:
    """Every measure the checks read: ``view`` is the model's input (the cut-out document, or the
    whole photo), ``photo`` the decoded photo, in whose pixels the outline is given, and
    ``original_size`` the file's own. The outline's measures are absent without one."""
    rgb = np.asarray(view.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR))
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    found = localisation is not None and localisation.found
    shadows, highlights = np.quantile(grey, [0.05, 0.95]) / 255
    measures = {"sharpness": sharpness(photo, localisation.quad if found else None),
                "shadows": float(shadows), "highlights": float(highlights)}
    if found:
        quad, size = localisation.quad, photo.size
        inside = visible_share(quad, size)
        scale = np.array(original_size, float) / np.array(size, float)
        sides = np.linalg.norm((np.roll(quad, -1, axis=0) - quad) * scale, axis=1)
        measures |= {"blown_out": blown_out(rgb), "outside_share": 1 - inside,
                     "document_share": cv2.contourArea(np.float32(quad)) * inside / (size[0] * size[1]),
                     "document_pixels": float(min(sides[0] + sides[2], sides[1] + sides[3]) / 2)}
    return measures


def sharpness(photo: Image.Image, quad: np.ndarray | None, side: int = SHARPNESS_SIDE) -> float:
    """How sharp the document is where it lies in the photo (without an outline, the photo's sharpest part):
    the variance of its second differences in the direction where they are least (``_focus``),
    against the variance of its grey levels, so that a plain document is not taken for a blurred one.
    At the photo's own resolution, reduced to at most ``side`` pixels long: a small document upscaled to
    the model's input would look blurred however sharp the photo."""
    if quad is not None:  # the document's box only, before the conversion to grey: half the cost
        (x0, y0), (x1, y1) = np.clip(quad.min(axis=0), 0, None).astype(int), np.ceil(quad.max(axis=0)).astype(int)
        photo = photo.crop((x0, y0, min(x1, photo.width), min(y1, photo.height)))
        quad = quad - [x0, y0]
    grey = np.asarray(photo.convert("L"))
    factor = side / max(grey.shape)
    if factor < 1:
        grey = cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        quad = None if quad is None else quad * factor
    inside = None  # every pixel
    if quad is not None:
        mask = np.zeros(grey.shape, np.uint8)
        cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 1)
        inside = cv2.erode(mask, np.ones((5, 5), np.uint8))  # not the document's own edge
    if (grey.size if inside is None else cv2.countNonZero(inside)) < 64:
        return float("inf")  # too little to judge
    grey = grey.astype(np.float32)
    curvatures = cv2.merge([cv2.filter2D(grey, cv2.CV_32F, kernel) for kernel in SECOND_DIFFERENCES])
    if quad is None and min(grey.shape) >= 48:  # the sharpest ninth: a missed document on a soft background
        (h, w), (th, tw) = grey.shape, (grey.shape[0] // 3, grey.shape[1] // 3)
        return max(_focus(curvatures[r:r + th, c:c + tw], grey[r:r + th, c:c + tw])
                   for r in range(0, h - th + 1, th) for c in range(0, w - tw + 1, tw))
    return _focus(curvatures, grey, inside)


# The grey levels' second difference along a row, a column and both diagonals (these halved: their
# step is sqrt(2) long). A shaken camera smears one direction only; a Laplacian, their sum, missed it.
SECOND_DIFFERENCES = [np.float32([[1, -2, 1]]), np.float32([[1], [-2], [1]]),
                      np.float32([[0, 0, 1], [0, -2, 0], [1, 0, 0]]) / 2,
                      np.float32([[1, 0, 0], [0, -2, 0], [0, 0, 1]]) / 2]


def _focus(curvatures: np.ndarray, grey: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The least variance of the curvatures (one channel a direction) over the directions, against
    the grey levels' variance, where ``mask`` is set (None: everywhere)."""
    least = cv2.meanStdDev(curvatures, mask=mask)[1].min() ** 2
    return float(least / (cv2.meanStdDev(grey, mask=mask)[1][0, 0] ** 2 + 100.0))


def blown_out(rgb: np.ndarray) -> float:
    """The share of the view blown out to white, every channel at 250 or more: by glare, or by light
    strong enough to wash the print away."""
    return cv2.countNonZero(cv2.inRange(rgb, (250, 250, 250), (255, 255, 255))) / (rgb.shape[0] * rgb.shape[1])


def assess(measures: dict[str, float]) -> list[QualityIssue]:
    """The checks that fail, most important first."""
    failing = {}
    if measures.get("outside_share", 0) > OUTSIDE_SHARE and measures["document_share"] < FILLS_FRAME:
        failing["partly_out_of_frame"] = measures["outside_share"]
    if "document_share" in measures and (measures["document_share"] < MIN_DOCUMENT_SHARE
                                         or measures["document_pixels"] < MIN_DOCUMENT_PIXELS):
        failing["too_small"] = measures["document_share"]
    if measures["sharpness"] < MIN_SHARPNESS:
        failing["blurred"] = measures["sharpness"]
    if measures["shadows"] > BRIGHT_SHADOWS:
        failing["overexposed"] = measures["shadows"]
    elif measures.get("blown_out", 0) > GLARE_SHARE and measures["document_share"] < FILLS_FRAME:
        failing["glare"] = measures["blown_out"]
    if measures["highlights"] < DARK_HIGHLIGHTS:
        failing["too_dark"] = measures["highlights"]
    return [QualityIssue(code, failing[code], MESSAGES[code]) for code in CODES if code in failing]
