from __future__ import annotations

import errno
import hashlib
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from classifier.bands import UNSUPPORTED_LABEL, ConfidenceBand

if TYPE_CHECKING:  # the record needs the classifier's types, not torch, to be imported
    from classifier.predictor import Classification


class StorageUnavailable(Exception):
    """Images cannot be written now: the volume is (nearly) full when `full`, else unwritable."""

    def __init__(self, full: bool):
        super().__init__("no room for images" if full else "images cannot be written")
        self.full = full


class DocumentStorage(FileSystemStorage):
    """Uploaded identity documents: readable by the server's user only, and without
    any URL, so only the session-guarded and staff-only views can stream them.

    An image is written whole or not at all (`save_document`), and it is there before the
    record that names it, so a process killed mid-upload leaves at most a file without a
    record, which `orphans` finds and purge_predictions deletes."""

    PARTIAL_DIR = ".partial"  # images being written, under names no record uses

    def __init__(self):
        super().__init__(file_permissions_mode=0o600, directory_permissions_mode=0o700)

    def save_document(self, name: str, data: bytes) -> None:
        """Write `data` as `name`: to a private temporary file first, then renamed into place."""
        temporary = self.write_partial(data)
        try:
            self.place(temporary, name)
        finally:
            temporary.unlink(missing_ok=True)

    def write_partial(self, data: bytes) -> Path:
        """`data` in a new private temporary file, on disk when this returns; `place` names it."""
        with storage_errors():
            temporary, fd = self._partial_file()
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        return temporary

    def place(self, temporary: Path, name: str) -> None:
        """Rename a file from `write_partial` to `name`, replacing any file of that name."""
        with storage_errors():
            os.replace(temporary, self.path(name))

    def check_writable(self) -> None:
        """Raises StorageUnavailable when an image could not be written now."""
        with storage_errors():
            temporary, fd = self._partial_file()
            os.close(fd)
            temporary.unlink()

    def check_room(self, incoming: int) -> None:
        """Raises StorageUnavailable when `incoming` bytes would leave less than IDCLASS_MIN_FREE_BYTES free."""
        folder = Path(self.location)
        while not folder.exists() and folder != folder.parent:  # made by the first upload, on its parent's volume
            folder = folder.parent
        with storage_errors():
            free = shutil.disk_usage(folder).free
        if free - incoming < settings.IDCLASS_MIN_FREE_BYTES:
            raise StorageUnavailable(full=True)

    def _partial_file(self) -> tuple[Path, int]:
        """A new file only the server's user can read, and its descriptor, open for writing."""
        partial = Path(self.path(self.PARTIAL_DIR))
        partial.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # private from the first upload on
        partial.mkdir(mode=0o700, exist_ok=True)
        temporary = partial / f"{uuid.uuid4().hex}.part"
        return temporary, os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def orphans(self, in_use: set[str], older_than: timedelta) -> list[Path]:
        """Files no record names (`in_use`), left longer than `older_than` (uploads in flight are younger)."""
        root = Path(self.location)
        if not root.is_dir():
            return []
        cutoff = time.time() - older_than.total_seconds()
        files = [*root.iterdir(), *(root / self.PARTIAL_DIR).glob("*")]
        return [f for f in files if f.is_file() and f.name not in in_use and f.stat().st_mtime < cutoff]

    @property
    def base_location(self):
        # Read on use, so a changed IDCLASS_MEDIA_ROOT (tests, a moved volume) takes effect.
        return settings.IDCLASS_MEDIA_ROOT

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    def url(self, name):
        raise NotImplementedError("Stored documents have no public URL.")


@contextmanager
def storage_errors():
    """The file system's errors as the one kind callers handle."""
    try:
        yield
    except OSError as exc:
        raise StorageUnavailable(full=exc.errno in (errno.ENOSPC, errno.EDQUOT)) from exc


class Prediction(models.Model):
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
                                     help_text=f"Empty when the answer is \"{UNSUPPORTED_LABEL}\".")
    score = models.FloatField()
    band = models.CharField(max_length=12, choices=Band.choices)
    top_k = models.JSONField(help_text="The best types, best first: document_type, label, score.")
    model_version = models.CharField(max_length=100)
    localisation = models.JSONField(null=True, blank=True,
                                    help_text="Where the document was found: found, confidence, quad (corners in pixels).")
    latency_ms = models.FloatField()
    review_status = models.CharField(max_length=10, choices=Review.choices, default=Review.UNREVIEWED,
                                     db_index=True)
    reviewed_label = models.CharField("correct type", max_length=100, blank=True,
                                      help_text="Empty with a review: not a document of any supported type.")
    reviewed_name = models.CharField("name of the correct type", max_length=200, blank=True,
                                     help_text="A new type's name in plain words, as its reviewer gave it.")
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
                   width=result.width, height=result.height, document_type=result.document_type or "",
                   score=result.score, band=result.band.value, top_k=top_k, model_version=result.model_version,
                   latency_ms=result.timings_ms["total_ms"],
                   localisation=result.localisation.as_json() if result.localisation else None)

    @property
    def unsupported(self) -> bool:
        return self.band == self.Band.UNSUPPORTED

    @property
    def label(self) -> str:
        """The predicted type in plain words, or that there is none."""
        return UNSUPPORTED_LABEL if self.unsupported else self.top_k[0]["label"]

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

    def as_dict(self) -> dict:
        """What the API answers about a prediction: the one place that says so."""
        return {"id": str(self.id), "document_type": self.document_type or None, "label": self.label,
                "score": round(self.score, 4), "band": self.band, "colour": self.confidence_band.colour,
                "top_k": self.top_k, "model_version": self.model_version, "localisation": self.localisation}

    def record_review(self, label: str, reviewer, name: str = "") -> None:
        """``label``: the correct type ("" for none supported); ``name``: a new type's plain words."""
        self.reviewed_label, self.reviewed_name = label, name
        self.review_status = self.Review.CONFIRMED if label == self.document_type else self.Review.CORRECTED
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

    key = models.CharField(max_length=100, unique=True, help_text="client key : period seconds : window number")
    count = models.PositiveIntegerField(default=0)
    expires = models.DateTimeField(db_index=True)
