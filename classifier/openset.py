"""Open-set answers: whether a photo shows a document of a type the model knows at all.

The head keeps the hidden activations of some training views of every type (``MLPHead.references``).
An image's novelty is how far its own activations lie from the nearest of them (1 - cosine
similarity, 0 to 2). Training sets the threshold on held-out validation views: above the novelty
that ``KNOWN_QUANTILE`` of them stay under, the answer is "Not a supported document" (band
unsupported). It is that answer too where the localiser measures that no document is in view
(``Localisation.no_document``) and the head agrees: its novelty is above what half the validation
views stay under (``DOCUMENT_LIKE_QUANTILE``). Either signal alone can be wrong (the localiser on a
small document at the edge of a cluttered photo, the head on a photo whose colours and edges
resemble a document's), both together rarely are.

Where a localising model finds no document outline, the whole photo is classified and judged like
any other: the head also learned from documents filling the frame. Models trained before that
(``no_outline_rejected``) give such a photo the largest novelty, ``NO_OUTLINE_NOVELTY``, as their
head only ever learned from cut-out documents.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from classifier.bands import UNSUPPORTED_LABEL

# Why an answer names no type, for programs and in plain words: it is "Not a supported document", or the
# photo is too blurred to tell (``classifier.designs``)
REASONS = {
    "no_document": "No identity document was found in the photo.",
    "unsupported_type": "This looks like an identity document, but not one of the types this service knows.",
    "too_blurred": "The photo is too blurred to tell whether this is a document this service knows: "
                   "take a sharper one.",
}
TOO_BLURRED_LABEL = "Too blurred to tell"
# Of the validation views' novelty: 5% of them would be turned away, but they are augmented, harder
# than photos (0-0.7% of the demo test photos are); lower, known real documents pay (docs/measurements.md)
KNOWN_QUANTILE = 0.95
DOCUMENT_LIKE_QUANTILE = 0.5  # of the validation views' novelty: at most this, like a known document
REFERENCES_PER_CLASS = 64  # training views per type kept as references
NO_OUTLINE_NOVELTY = 2.0


def untyped_label(reason: str | None) -> str:
    """The answer's words where it names no type, for its reason."""
    return TOO_BLURRED_LABEL if reason == "too_blurred" else UNSUPPORTED_LABEL


@dataclass(frozen=True)
class OpenSetRule:
    threshold: float  # novelty above this: not a supported document
    quantile: float  # of the validation views' novelty that the threshold is
    n_validation: int
    document_like: float | None = None  # novelty at most this outweighs a localiser that sees no document
    no_outline_rejected: bool = False  # models trained before whole-frame views: no outline, no document

    def turns_away(self, novelty: float, no_document_in_view: bool = False) -> str | None:
        """Why the answer is not a supported document (a key of ``REASONS``), or None where it names
        a type: no document in view (the localiser's measured decision, or for a model of the earlier
        kind no outline) and none like a known one; else too novel, a document of another type."""
        document_like = self.document_like is not None and novelty <= self.document_like
        if no_document_in_view and not document_like:
            return "no_document"
        return "unsupported_type" if novelty > self.threshold else None

    @classmethod
    def fit(cls, validation_novelty: np.ndarray, quantile: float = KNOWN_QUANTILE) -> "OpenSetRule":
        novelty = np.asarray(validation_novelty, dtype=np.float64)
        return cls(float(np.quantile(novelty, quantile)), quantile, int(len(novelty)),
                   float(np.quantile(novelty, DOCUMENT_LIKE_QUANTILE)))

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "quantile": self.quantile, "n_validation": self.n_validation,
                "document_like": self.document_like, "no_outline_rejected": self.no_outline_rejected}

    @classmethod
    def from_dict(cls, d: dict) -> "OpenSetRule":
        document_like = d.get("document_like")
        return cls(float(d["threshold"]), float(d["quantile"]), int(d["n_validation"]),
                   None if document_like is None else float(document_like),
                   bool(d.get("no_outline_rejected", True)))  # models that do not say are the earlier kind
