"""An answer as one flat CSV row, and the batch CSV of ``classify_images``.

The columns an answer fills are defined here once, so the batch CSV and evaluation's
``predictions.csv`` read alike; a spreadsheet or pandas opens either as it is. Every CSV
the product writes goes through ``csv_writer``, which keeps cells from running as formulas.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from typing import Iterable, Sequence, TextIO

from classifier.predictor import BatchItem, Classification

# What one answer fills in: the type (folder name and plain words), the top score, the band,
# whether the document's outline was found ("true"/"false", empty when the model does not
# localise) and its four corners as JSON [[x, y], ...] in the image's own pixels, or empty; how unlike
# the training images it is (``classifier.openset``). An unsupported answer has an empty document_type
# and its reason (``openset.REASONS``); quality: the codes of what is wrong with the photo
# (``classifier.quality``), most important first, separated by spaces.
RESULT_COLUMNS = ("document_type", "label", "score", "band", "reason", "novelty", "outline_found", "corners",
                  "quality")
BATCH_COLUMNS = ("path", *RESULT_COLUMNS, "error")  # error: InvalidImage.code, e.g. "corrupt"
SCORE_DECIMALS = 6
# A cell starting with one of these is a formula to a spreadsheet (=HYPERLINK(...) can send other cells away).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(value: str) -> str:
    """``value`` as a spreadsheet shows it and never runs it: a formula-like start gets a leading
    apostrophe (OWASP's advice on CSV injection). File names and type names come from users."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


class InertDictWriter(csv.DictWriter):
    """A ``csv.DictWriter`` whose every cell goes through ``inert``."""

    def writerow(self, rowdict):
        return super().writerow({key: inert(str(value)) for key, value in rowdict.items()})


def csv_writer(out: TextIO, columns: Sequence[str]) -> InertDictWriter:
    """The product's one way of writing CSV rows: the header written, every cell inert."""
    writer = InertDictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    return writer


def result_fields(answer: Classification | None) -> dict[str, str]:
    """The ``RESULT_COLUMNS`` of one answer; all empty for none."""
    if answer is None:
        return dict.fromkeys(RESULT_COLUMNS, "")
    loc = answer.localisation
    found = "" if loc is None else str(loc.found).lower()
    corners = json.dumps(loc.as_json()["quad"]) if loc and loc.found else ""
    novelty = "" if answer.novelty is None else f"{answer.novelty:.{SCORE_DECIMALS}f}"
    return {"document_type": answer.document_type or "", "label": answer.label,
            "score": f"{answer.score:.{SCORE_DECIMALS}f}", "band": answer.band.value, "reason": answer.reason or "",
            "novelty": novelty, "outline_found": found, "corners": corners,
            "quality": " ".join(issue.code for issue in answer.quality)}


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
    writer = csv_writer(out, BATCH_COLUMNS)
    images = errors = 0
    for item in items:
        images += 1
        errors += item.error is not None
        writer.writerow({"path": str(item.source), **result_fields(item.classification),
                         "error": item.error.code if item.error else ""})
    return BatchSummary(images, errors, time.perf_counter() - started)
