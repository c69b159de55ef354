"""An answer as one flat CSV row, and the batch CSV of ``classify_images``.

The columns an answer fills are defined here once, so the batch CSV and evaluation's
``predictions.csv`` read alike; a spreadsheet or pandas opens either as it is.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from typing import Iterable, TextIO

from classifier.predictor import BatchItem, Classification

# What one answer fills in: the type (folder name and plain words), the top score, the band,
# whether the document's outline was found ("true"/"false", empty when the model does not
# localise) and its four corners as JSON [[x, y], ...] in the image's own pixels, or empty; how unlike
# the training images it is (``classifier.openset``). An unsupported answer has an empty document_type.
RESULT_COLUMNS = ("document_type", "label", "score", "band", "novelty", "outline_found", "corners")
BATCH_COLUMNS = ("path", *RESULT_COLUMNS, "error")  # error: InvalidImage.code, e.g. "corrupt"
SCORE_DECIMALS = 6


def result_fields(answer: Classification | None) -> dict[str, str]:
    """The ``RESULT_COLUMNS`` of one answer; all empty for none."""
    if answer is None:
        return dict.fromkeys(RESULT_COLUMNS, "")
    loc = answer.localisation
    found = "" if loc is None else str(loc.found).lower()
    corners = json.dumps(loc.as_json()["quad"]) if loc and loc.found else ""
    novelty = "" if answer.novelty is None else f"{answer.novelty:.{SCORE_DECIMALS}f}"
    return {"document_type": answer.document_type or "", "label": answer.label,
            "score": f"{answer.score:.{SCORE_DECIMALS}f}", "band": answer.band.value, "novelty": novelty,
            "outline_found": found, "corners": corners}


@dataclass(frozen=True)
class BatchSummary:
    images: int
    errors: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (f"{self.images} images, {self.errors} errors, {self.seconds:.1f} s, "
                f"{self.per_second:.1f} images/s")


def write_batch_csv(items: Iterable[BatchItem], out: TextIO) -> BatchSummary:
    """Write one ``BATCH_COLUMNS`` row per item as it comes (``Predictor.predict_each``), timed."""
    started = time.perf_counter()
    writer = csv.DictWriter(out, BATCH_COLUMNS, lineterminator="\n")
    writer.writeheader()
    images = errors = 0
    for item in items:
        images += 1
        errors += item.error is not None
        writer.writerow({"path": str(item.source), **result_fields(item.classification),
                         "error": item.error.code if item.error else ""})
    return BatchSummary(images, errors, time.perf_counter() - started)
