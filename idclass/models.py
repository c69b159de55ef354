from __future__ import annotations

import hashlib
import unicodedata
import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from classifier.bands import ConfidenceBand
from classifier.openset import REASONS, untyped_label
from idclass.storage import DocumentStorage

if TYPE_CHECKING:  # the record needs the classifier's types, not torch, to be imported
    from classifier.predictor import Classification


def plain_text(text: str, limit: int) -> str:
    """``text`` without control or format characters (bidi overrides such as U+202E, zero-width
    marks), which could make one name display as another; stripped and cut to ``limit``."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()[:limit]


class PredictionQuerySet(models.QuerySet):
    def confirm(self, reviewer) -> int:
        """Confirm the predicted type of every prediction here, by the one review rule
        (``Prediction.record_review``); how many were confirmed."""
        with transaction.atomic():
            predictions = list(self.select_for_update())
            for prediction in predictions:
                prediction.record_review(prediction.document_type, reviewer)
            Prediction.objects.bulk_update(predictions, Prediction.REVIEW_FIELDS)
        return len(predictions)


class Prediction(models.Model):
    REVIEW_FIELDS = ["reviewed_label", "reviewed_name", "review_status", "reviewer", "reviewed_at"]

    class Band(models.TextChoices):
        HIGH = ConfidenceBand.HIGH.value, "High"
        MEDIUM = ConfidenceBand.MEDIUM.value, "Medium"
        LOW = ConfidenceBand.LOW.value, "Low"
        UNSUPPORTED = ConfidenceBand.UNSUPPORTED.value, "Not supported"

    class Review(models.TextChoices):
        UNREVIEWED = "unreviewed", "Unreviewed"
        CONFIRMED = "confirmed", "Confirmed"
        CORRECTED = "corrected", "Corrected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    image = models.FileField(storage=DocumentStorage, blank=True, help_text="Empty when images are not stored.")
    original_name = models.CharField(max_length=255, blank=True, help_text="As uploaded; for display only.")
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    document_type = models.CharField("predicted type", max_length=100, db_index=True, blank=True,
                                     help_text="Empty when the answer names no type.")
    score = models.FloatField()
    band = models.CharField(max_length=12, choices=Band.choices)
    top_k = models.JSONField(help_text="The best types, best first: document_type, label, score.")
    model_version = models.CharField(max_length=100)
    localisation = models.JSONField(null=True, blank=True,
                                    help_text="Where the document was found: found, confidence, "
                                              "quad (corners in pixels).")
    reason = models.CharField("why no type", max_length=20, choices=list(REASONS.items()), blank=True,
                              help_text="Empty when the answer names a type.")
    quality = models.JSONField("capture problems", default=list, blank=True,
                               help_text="What was wrong with the photo, most important first: code, value, message.")
    latency_ms = models.FloatField()
    review_status = models.CharField(max_length=10, choices=Review.choices, default=Review.UNREVIEWED,
                                     db_index=True)
    reviewed_label = models.CharField("correct type", max_length=100, blank=True,
                                      help_text="Empty with a review: not a document of any supported type.")
    reviewed_name = models.CharField("name of the correct type", max_length=200, blank=True,
                                     help_text="A new type's name in plain words, as its reviewer gave it.")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)

    objects = PredictionQuerySet.as_manager()

    class Meta:
        ordering = ["score", "-created"]  # the least sure first: the review queue

    def __str__(self):
        return str(self.id)

    @classmethod
    def from_classification(cls, result: Classification, data: bytes, original_name: str) -> Prediction:
        """The unsaved record of an upload and the classifier's answer to it."""
        top_k = [{"document_type": a.document_type, "label": a.label, "score": round(a.score, 4)} for a in result.top_k]
        return cls(original_name=original_name, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
                   width=result.width, height=result.height, document_type=result.document_type or "",
                   score=result.score, band=result.band.value, top_k=top_k, model_version=result.model_version,
                   latency_ms=result.timings_ms["total_ms"], reason=result.reason or "",
                   localisation=result.localisation.as_json() if result.localisation else None,
                   quality=[issue.as_json() for issue in result.quality])

    @property
    def unsupported(self) -> bool:
        return self.band == self.Band.UNSUPPORTED

    @property
    def label(self) -> str:
        """The predicted type in plain words, or that there is none."""
        return untyped_label(self.reason or None) if self.unsupported else self.top_k[0]["label"]

    @property
    def alternatives(self) -> list[dict]:
        """The runners-up after the prediction itself; every ranked type when none was chosen."""
        return self.top_k if self.unsupported else self.top_k[1:]

    @property
    def confidence_band(self) -> ConfidenceBand:
        return ConfidenceBand(self.band)

    @property
    def reviewed_type(self) -> str:
        """The type a person settled on: their correction, or the prediction they confirmed;
        empty for "not a document of a supported type"."""
        if self.review_status == self.Review.CORRECTED:
            return self.reviewed_label
        return self.document_type

    @property
    def outline_points(self) -> str | None:
        """The found document's corners as SVG polygon points, or None."""
        quad = (self.localisation or {}).get("quad")
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in quad) if quad else None

    @property
    def reason_message(self) -> str:
        """Why the answer names no type, in plain words; empty with a type."""
        return REASONS.get(self.reason, "")

    @property
    def quality_codes(self) -> list[str]:
        return [issue["code"] for issue in self.quality]

    def as_dict(self) -> dict:
        """What the API answers about a prediction: the one place that says so."""
        return {"id": str(self.id), "document_type": self.document_type or None, "label": self.label,
                "score": round(self.score, 4), "band": self.band, "colour": self.confidence_band.colour,
                "reason": self.reason or None, "reason_message": self.reason_message or None,
                "quality": self.quality, "top_k": self.top_k, "model_version": self.model_version,
                "localisation": self.localisation}

    def record_review(self, label: str, reviewer, name: str = "") -> None:
        """The review rule, for every way of reviewing. ``label``: the correct type ("" for none
        supported); ``name``: a new type's plain words, kept only with a correction to a type, so a
        name given before never sticks to the predicted type once that is confirmed."""
        corrected = label != self.document_type
        self.reviewed_label = label
        name = plain_text(name, self._meta.get_field("reviewed_name").max_length)
        self.reviewed_name = name if corrected and label else ""
        self.review_status = self.Review.CORRECTED if corrected else self.Review.CONFIRMED
        self.reviewer = reviewer
        self.reviewed_at = timezone.now()


def delete_unused_image(name: str) -> None:
    """Identical uploads share one file: it goes with the last record that names it."""
    if name and not Prediction.objects.filter(image=name).exists():
        DocumentStorage().delete(name)


@receiver(post_delete, sender=Prediction)
def delete_image_file(sender, instance, **kwargs):
    """Deleting a record, one or in bulk, also deletes its image once that is final."""
    if instance.image:
        name = instance.image.name
        transaction.on_commit(lambda: delete_unused_image(name))


class UploadCount(models.Model):
    """Uploads one client made in one window of one rate: the upload rate limit's counter,
    in the database so that every server process counts together."""

    key = models.CharField(max_length=100, unique=True,
                           help_text="client key : accepted or refused : period seconds : window number")
    count = models.PositiveIntegerField(default=0)
    expires = models.DateTimeField(db_index=True)
