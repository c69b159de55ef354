"""Open-set answers: whether a photo shows a document of a type the model knows at all.

The head keeps the hidden activations of some training views of every type (``MLPHead.references``).
An image's novelty is how far its own activations lie from the nearest of them (1 - cosine
similarity, 0 to 2); a photo in which a localising model finds no document outline at all gets
the largest, ``NO_OUTLINE_NOVELTY``: the head only ever learned from cut-out documents. Training
sets the threshold on held-out validation views: above the novelty that ``KNOWN_QUANTILE`` of
them stay under, the answer is "Not a supported document" (band unsupported).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KNOWN_QUANTILE = 0.99  # of the validation views' novelty: about 1% of them would be turned away
REFERENCES_PER_CLASS = 64  # training views per type kept as references
NO_OUTLINE_NOVELTY = 2.0


@dataclass(frozen=True)
class OpenSetRule:
    threshold: float  # novelty above this: not a supported document
    quantile: float  # of the validation views' novelty that the threshold is
    n_validation: int

    def rejects(self, novelty: float) -> bool:
        return novelty > self.threshold

    @classmethod
    def fit(cls, validation_novelty: np.ndarray, quantile: float = KNOWN_QUANTILE) -> "OpenSetRule":
        novelty = np.asarray(validation_novelty, dtype=np.float64)
        return cls(float(np.quantile(novelty, quantile)), quantile, int(len(novelty)))

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "quantile": self.quantile, "n_validation": self.n_validation}

    @classmethod
    def from_dict(cls, d: dict) -> "OpenSetRule":
        return cls(float(d["threshold"]), float(d["quantile"]), int(d["n_validation"]))
