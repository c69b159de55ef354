from __future__ import annotations

import hashlib
import os
import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from classifier.bands import ConfidenceBand

if TYPE_CHECKING:  # the record needs the classifier's types, not torch, to be imported
    from classifier.predictor import Classification


class DocumentStorage(FileSystemStorage):
    """Uploaded identity documents: readable by the server's user only, and without
    any URL, so only the session-guarded and staff-only views can stream them."""

    def __init__(self):
        super().__init__(file_permissions_mode=0o600, directory_permissions_mode=0o700)

    @property
    def base_location(self):
        # Read on use, so a changed IDCLASS_MEDIA_ROOT (tests, a moved volume) takes effect.
        return settings.IDCLASS_MEDIA_ROOT

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    def url(self, name):
        raise NotImplementedError("Stored documents have no public URL.")


class Prediction(models.Model):
    class Band(models.TextChoices):
        HIGH = ConfidenceBand.HIGH.value, "High"
        MEDIUM = ConfidenceBand.MEDIUM.value, "Medium"
        LOW = ConfidenceBand.LOW.value, "Low"

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
    document_type = models.CharField("predicted type", max_length=100, db_index=True)
    score = models.FloatField()
    band = models.CharField(max_length=10, choices=Band.choices)
    top_k = models.JSONField(help_text="The best types, best first: document_type, label, score.")
    model_version = models.CharField(max_length=100)
    localisation = models.JSONField(null=True, blank=True,
                                    help_text="Where the document was found: found, confidence, quad (corners in pixels).")
    latency_ms = models.FloatField()
    review_status = models.CharField(max_length=10, choices=Review.choices, default=Review.UNREVIEWED,
                                     db_index=True)
    reviewed_label = models.CharField("correct type", max_length=100, blank=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["score", "-created"]  # the least sure first: the review queue

    def __str__(self):
        return str(self.id)

    @classmethod
    def from_classification(cls, result: Classification, data: bytes, original_name: str) -> Prediction:
        """The unsaved record of an upload and the classifier's answer to it."""
        top_k = [{"document_type": a.document_type, "label": a.label, "score": round(a.score, 4)} for a in result.top_k]
        return cls(original_name=original_name, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
                   width=result.width, height=result.height, document_type=result.document_type,
                   score=result.score, band=result.band.value, top_k=top_k, model_version=result.model_version,
                   latency_ms=result.timings_ms["total_ms"],
                   localisation=result.localisation.as_json() if result.localisation else None)

    @property
    def label(self) -> str:
        """The predicted type in plain words."""
        return self.top_k[0]["label"]

    @property
    def alternatives(self) -> list[dict]:
        """The runners-up after the prediction itself."""
        return self.top_k[1:]

    @property
    def confidence_band(self) -> ConfidenceBand:
        return ConfidenceBand(self.band)

    @property
    def reviewed_type(self) -> str:
        """The type a person settled on: their correction, or the prediction they confirmed."""
        if self.review_status == self.Review.CORRECTED:
            return self.reviewed_label
        return self.document_type

    @property
    def outline_points(self) -> str | None:
        """The found document's corners as SVG polygon points, or None."""
        quad = (self.localisation or {}).get("quad")
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in quad) if quad else None

    def as_dict(self) -> dict:
        """What the API answers about a prediction: the one place that says so."""
        return {"id": str(self.id), "document_type": self.document_type, "label": self.label,
                "score": round(self.score, 4), "band": self.band, "colour": self.confidence_band.colour,
                "top_k": self.top_k, "model_version": self.model_version, "localisation": self.localisation}

    def record_review(self, label: str, reviewer) -> None:
        self.reviewed_label = label
        self.review_status = self.Review.CONFIRMED if label == self.document_type else self.Review.CORRECTED
        self.reviewer = reviewer
        self.reviewed_at = timezone.now()


@receiver(post_delete, sender=Prediction)
def delete_image_file(sender, instance, **kwargs):
    """Deleting a record, one or in bulk, also deletes its image once that is final."""
    if instance.image:
        name, storage = instance.image.name, instance.image.storage
        transaction.on_commit(lambda: storage.delete(name))
