"""Accuracy, calibration error and per-class scores of a set of predictions, and how well
document outlines were found."""
from __future__ import annotations

import cv2
import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from classifier.localise import order_corners, plausible

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
