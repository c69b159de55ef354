"""Accuracy, calibration error and per-class scores of a set of predictions, how well
document outlines were found, and how well the capture-quality checks find what a simulated
capture applied."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from classifier.localise import order_corners, plausible
from classifier.quality import SHARPNESS_SIDE

ECE_BINS = 15


def reliability(top_scores: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per score bin: how many predictions, their mean score and their accuracy."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(top_scores, edges[1:-1], right=True), 0, bins - 1)
    return [{"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int((which == b).sum()),
             "confidence": float(top_scores[which == b].mean()) if (which == b).any() else None,
             "accuracy": float(correct[which == b].mean()) if (which == b).any() else None}
            for b in range(bins)]


def expected_calibration_error(top_scores: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    n = len(top_scores)
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"])
                     for b in reliability(top_scores, correct, bins) if b["count"]))


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, n_classes: int) -> dict:
    y_true = np.asarray(y_true)
    y_pred = probs.argmax(1)
    top = probs.max(1)
    correct = y_pred == y_true
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=range(n_classes), zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(correct.mean()),
        "ece": expected_calibration_error(top, correct),
        "per_class": [{"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for p, r, f, s in zip(precision, recall, f1, support)],
        "confusion": confusion_matrix(y_true, y_pred, labels=range(n_classes)).tolist(),
        "reliability": reliability(top, correct),
    }


def polygon_iou(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Intersection over union of two quads (0 when either is missing). Exact for convex quads;
    a non-convex prediction is replaced by its convex hull."""
    if a is None or b is None:
        return 0.0
    a = cv2.convexHull(np.float32(a))
    b = cv2.convexHull(np.float32(b))
    inter, _ = cv2.intersectConvexConvex(a, b)
    union = cv2.contourArea(a) + cv2.contourArea(b) - inter
    return float(inter / union) if union > 0 else 0.0


def localisation_metrics(pred_quads, true_quads, image_areas=None) -> dict:
    """Polygon IoU between predicted quads (None where nothing was found) and the true ones.
    A missed document counts as IoU 0 in ``mean_iou`` and ``share_iou_0_8``. With the images'
    areas, also how many found quads no document could have (``degenerate``: not ``plausible``)."""
    ious = [polygon_iou(p, t) for p, t in zip(pred_quads, true_quads, strict=True)]
    n = len(ious)
    metrics = {"mean_iou": float(np.mean(ious)) if n else 0.0,
               "share_iou_0_8": float(np.mean([i >= 0.8 for i in ious])) if n else 0.0,
               "share_not_found": float(np.mean([p is None for p in pred_quads])) if n else 0.0,
               "n": n}
    if image_areas is not None:
        metrics["degenerate"] = sum(p is not None and not plausible(order_corners(p), area)
                                    for p, area in zip(pred_quads, image_areas, strict=True))
    return metrics


@dataclass(frozen=True)
class Truth:
    """When a quality check's condition is clearly present, and clearly absent, in what a simulated
    capture applied (``simulate_capture``'s conditions); the cases in between are left out."""

    measure: str  # the ``quality.measure`` it reads
    below: bool  # the condition shows as a low measure (a blurred photo is less sharp)
    present: Callable[[dict], bool]
    absent: Callable[[dict], bool]
    threshold: str  # the ``quality`` constant that is its threshold


def _blur(c: dict) -> float:
    """Blur as it shows on the document seen at most ``SHARPNESS_SIDE`` pixels long (a Gaussian's
    sigma, or a third of a motion streak's length): the same blur in a bigger photo matters less."""
    blur = c.get("blur", {})
    pixels = blur.get("sigma_px", blur.get("motion_px", 0) / 3)
    return pixels * min(1.0, SHARPNESS_SIDE / c.get("document_px", SHARPNESS_SIDE))


def _washed(c: dict) -> float:
    """The share of the document washed out to white; datasets made before recorded glare's only."""
    return c.get("washed_share", c.get("glare", {}).get("washed_share", 0))


QUALITY_TRUTH = {
    "partly_out_of_frame": Truth("outside_share", False, lambda c: c["outside_share"] >= 0.06,
                                 lambda c: c["outside_share"] == 0, "OUTSIDE_SHARE"),
    "too_small": Truth("document_share", True, lambda c: c["document_share"] <= 0.06,
                       lambda c: c["document_share"] >= 0.12, "MIN_DOCUMENT_SHARE"),
    "blurred": Truth("sharpness", True, lambda c: _blur(c) >= 1.4, lambda c: _blur(c) <= 0.6, "MIN_SHARPNESS"),
    # washed out by glare or by the light alone; a patch darkened afterwards (a dim room's photo) is
    # grey, no longer blown out: too dark says what is wrong there
    "glare": Truth("blown_out", False, lambda c: _washed(c) >= 0.03 and c.get("exposure") != "dark",
                   lambda c: _washed(c) <= 0.005 and "exposure" not in c, "GLARE_SHARE"),
    "too_dark": Truth("highlights", True, lambda c: c.get("exposure") == "dark",
                      lambda c: "exposure" not in c and c["tone"][1] >= 0.4, "DARK_HIGHLIGHTS"),
    "overexposed": Truth("shadows", False, lambda c: c.get("exposure") == "bright",
                         lambda c: "exposure" not in c and c["tone"][1] <= 0.6, "BRIGHT_SHADOWS"),
}


def quality_metrics(flags: list[set[str]], conditions: list[dict], correct: np.ndarray) -> dict:
    """Each check's precision and recall against what the captures applied (``QUALITY_TRUTH``), and the
    accuracy of the answers it flagged against those it did not (the errors should gather there).
    ``flags``: the checks that failed on each image; ``correct``: whether each answer was right."""
    report = {}
    for code, truth in QUALITY_TRUTH.items():
        flagged = np.array([code in f for f in flags])
        present = np.array([truth.present(c) for c in conditions])
        absent = np.array([truth.absent(c) for c in conditions])
        judged = present | absent
        hits = int((flagged & present).sum())
        report[code] = {"present": int(present.sum()), "absent": int(absent.sum()),
                        "precision": hits / max(int((flagged & judged).sum()), 1) if (flagged & judged).any() else None,
                        "recall": hits / int(present.sum()) if present.any() else None,
                        "flagged": int(flagged.sum()),
                        "accuracy_flagged": float(correct[flagged].mean()) if flagged.any() else None,
                        "accuracy_not_flagged": float(correct[~flagged].mean()) if (~flagged).any() else None}
    clean = np.array([all(t.absent(c) for t in QUALITY_TRUTH.values()) for c in conditions])
    report["clean"] = {"n": int(clean.sum()),
                       "with_any_flag": float(np.mean([bool(f) for f, k in zip(flags, clean) if k])) if clean.any()
                       else None}
    return report
