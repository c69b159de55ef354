"""Classify an upload, then keep a record of it: the one path the page and the API share."""
import unicodedata
from pathlib import PurePath

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import DatabaseError
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError

from classifier.errors import InvalidImage
from classifier.images import FORMAT_SUFFIXES
from classifier.predictor import Classification
from idclass.forms import UploadForm, too_large_message
from idclass.models import Prediction
from idclass.serving import ModelUnavailable, get_predictor

MULTIPART_ALLOWANCE = 64 * 1024  # boundaries, headers and the CSRF token around the file


class UploadRejected(Exception):
    """An upload that was refused and not stored; `message` is fit to show to a person."""

    STATUS = {"too_large": 413, "unsupported_format": 415, "model_unavailable": 503}

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return self.STATUS.get(self.code, 400)


def classify_upload(request: HttpRequest) -> Prediction:
    """The `image` of a multipart POST, classified and stored; raises UploadRejected."""
    try:
        predictor = get_predictor()
    except ModelUnavailable as exc:
        raise UploadRejected("model_unavailable", str(exc)) from exc
    # Refuse an oversized body by its declared length, before parsing spools it to disk.
    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.IDCLASS_UPLOAD_MAX_BYTES + MULTIPART_ALLOWANCE:
        raise UploadRejected("too_large", too_large_message())
    try:
        form = UploadForm(request.POST, request.FILES)
    except MultiPartParserError as exc:
        raise UploadRejected("bad_request", "The upload could not be read; send it as multipart/form-data.") from exc
    if not form.is_valid():
        error = form.errors.as_data()["image"][0]
        raise UploadRejected(error.code, error.messages[0])
    upload = form.cleaned_data["image"]
    data = upload.read()
    try:
        result = predictor.predict(data)
    except InvalidImage as exc:
        raise UploadRejected(exc.code, exc.message) from exc
    return store(data, upload.name, result)


def store(data: bytes, file_name: str, result: Classification) -> Prediction:
    """Write the image, then the row; if the row fails, the image goes too."""
    prediction = Prediction.from_classification(result, data, display_file_name(file_name))
    if settings.IDCLASS_STORE_IMAGES:
        suffix = FORMAT_SUFFIXES[result.image_format]
        prediction.image.save(f"{prediction.id}{suffix}", ContentFile(data), save=False)
    try:
        prediction.save(force_insert=True)
    except DatabaseError:
        prediction.image.delete(save=False)
        raise
    return prediction


def display_file_name(name: str) -> str:
    """The uploaded file's name without folders or control characters; never used as a path."""
    name = PurePath(name.replace("\\", "/")).name
    return "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()[:255]
