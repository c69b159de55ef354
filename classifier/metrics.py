"""Accuracy, calibration error and per-class scores of a set of predictions."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

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
