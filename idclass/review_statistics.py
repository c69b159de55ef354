"""How the review loop is going, counted by the database: per predicted type and band, how many
predictions there are, how many a person reviewed and how many of those they confirmed. Staff read
it to see whether "high" still earns its name in production and which types need more training images."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Max, Q, QuerySet
from django.db.models.fields.json import KT

from classifier.bands import UNSUPPORTED_LABEL
from idclass.models import Prediction

LOW_CONFIRMED_SHARE = 0.8  # reviewed predictions confirmed less often than this are highlighted
BANDS = tuple(Prediction.Band.values)  # high, medium, low, unsupported: the order they are shown in


@dataclass(frozen=True)
class Counts:
    predictions: int = 0
    confirmed: int = 0
    corrected: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.predictions + other.predictions, self.confirmed + other.confirmed,
                      self.corrected + other.corrected)

    @property
    def reviewed(self) -> int:
        return self.confirmed + self.corrected

    @property
    def confirmed_share(self) -> float | None:
        """Of the reviewed predictions, the share a person confirmed; None before any review."""
        return self.confirmed / self.reviewed if self.reviewed else None

    @property
    def needs_attention(self) -> bool:
        return self.reviewed > 0 and self.confirmed_share < LOW_CONFIRMED_SHARE


def total(counts) -> Counts:
    return sum(counts, Counts())


@dataclass(frozen=True)
class TypeStatistics:
    """One predicted type: its counts per band (only the bands it was predicted in) and the
    types reviewers corrected it to, most often first."""
    document_type: str
    label: str
    bands: list[tuple[str, Counts]]
    corrected_to: list[tuple[str, int]]

    @property
    def total(self) -> Counts:
        return total(c for _, c in self.bands)


@dataclass(frozen=True)
class Correction:
    """A type the reviewers said a prediction really was: the examples the model missed."""
    document_type: str
    label: str
    count: int
    predicted_as: list[tuple[str, int]]


@dataclass(frozen=True)
class ReviewStatistics:
    types: list[TypeStatistics]  # the least often confirmed first
    corrections: list[Correction]  # the most corrections first

    @property
    def bands(self) -> list[tuple[str, Counts]]:
        by_band = [(band, total(c for t in self.types for b, c in t.bands if b == band)) for band in BANDS]
        return [(band, counts) for band, counts in by_band if counts.predictions]

    @property
    def total(self) -> Counts:
        return total(t.total for t in self.types)


def review_statistics(predictions: QuerySet[Prediction]) -> ReviewStatistics:
    """Three grouped queries, however many predictions there are."""
    grouped = predictions.order_by().values("document_type", "band").annotate(
        predictions=Count("pk"),
        confirmed=Count("pk", filter=Q(review_status=Prediction.Review.CONFIRMED)),
        corrected=Count("pk", filter=Q(review_status=Prediction.Review.CORRECTED)),
        type_label=Max(KT("top_k__0__label")))
    changes = (predictions.order_by().filter(review_status=Prediction.Review.CORRECTED)
               .values_list("document_type", "reviewed_label").annotate(n=Count("pk")))
    counts, labels = {}, {}
    for row in grouped:
        counts[row["document_type"], row["band"]] = Counts(row["predictions"], row["confirmed"], row["corrected"])
        # no type ("" in the record): its top_k still ranks types, but the answer named none
        labels[row["document_type"]] = (row["type_label"] or row["document_type"]) if row["document_type"] \
            else UNSUPPORTED_LABEL
    changes = sorted(changes, key=lambda change: -change[2])
    types = [TypeStatistics(t, labels[t], [(b, counts[t, b]) for b in BANDS if (t, b) in counts],
                            [(to, n) for predicted, to, n in changes if predicted == t]) for t in labels]
    # a new type no model knows yet has the name its reviewer gave it
    named = predictions.order_by().exclude(reviewed_name="").values_list("reviewed_label", "reviewed_name").distinct()
    return ReviewStatistics(sorted(types, key=least_confirmed_first), corrections(changes, dict(named) | labels))


def corrections(changes: list[tuple[str, str, int]], labels: dict[str, str]) -> list[Correction]:
    """The (predicted, correct, count) groups turned round: per correct type, what it was taken for."""
    found = {}
    for predicted, correct, n in changes:
        found.setdefault(correct, []).append((predicted, n))
    result = [Correction(t, labels.get(t, t) if t else UNSUPPORTED_LABEL, sum(n for _, n in was), was)
              for t, was in found.items()]
    return sorted(result, key=lambda c: (-c.count, c.label))


def least_confirmed_first(row: TypeStatistics):
    share = row.total.confirmed_share
    return share is None, share or 0.0, -row.total.corrected, row.label
