"""Confidence bands: the score compared with how sure the model was when right.

On held-out data, m and s are the mean and standard deviation of the top score of
every correct prediction. A score >= m is high, >= m - s is medium, below is low.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

UNSUPPORTED_LABEL = "Not a supported document"  # the answer's words in the unsupported band
MIN_CORRECT = 5  # fewer correct validation predictions than this give no usable statistics
FALLBACK_MEAN, FALLBACK_STD = 0.9, 0.15


class ConfidenceBand(str, enum.Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    UNSUPPORTED = "unsupported"  # the answer names no type (``openset.REASONS`` says why)

    @property
    def colour(self) -> str:
        return {"high": "green", "medium": "amber", "low": "red", "unsupported": "grey"}[self.value]

    @property
    def hex_colour(self) -> str:
        return {"high": "#1a7f37", "medium": "#9a6700", "low": "#cf222e", "unsupported": "#59636e"}[self.value]

    @property
    def meaning(self) -> str:
        return {
            "high": "As sure as the model usually is when it is right.",
            "medium": "Less sure than usual; worth a second look.",
            "low": "Unsure; the answer may well be wrong. Retake the photo flat, well lit, "
                   "with the whole document in frame.",
            "unsupported": "No type is named: the photo holds no identity document, or one of a type this model "
                           "was not trained on, or is too blurred to tell.",
        }[self.value]


@dataclass(frozen=True)
class Calibration:
    mean: float
    std: float
    n_correct: int
    fallback: bool = False

    def band(self, score: float) -> ConfidenceBand:
        if score >= self.mean:
            return ConfidenceBand.HIGH
        if score >= self.mean - self.std:
            return ConfidenceBand.MEDIUM
        return ConfidenceBand.LOW

    @classmethod
    def fit(cls, top_scores: np.ndarray, correct: np.ndarray) -> "Calibration":
        """From the validation set's top scores and whether each prediction was right."""
        scores = np.asarray(top_scores, dtype=np.float64)[np.asarray(correct, dtype=bool)]
        if len(scores) < MIN_CORRECT:
            return cls(FALLBACK_MEAN, FALLBACK_STD, int(len(scores)), fallback=True)
        return cls(float(scores.mean()), float(scores.std()), int(len(scores)))

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "n_correct": self.n_correct, "fallback": self.fallback}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        return cls(float(d["mean"]), float(d["std"]), int(d["n_correct"]), bool(d.get("fallback", False)))
