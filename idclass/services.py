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
from idclass.forms import FIELD_ERRORS, TOO_LARGE, UploadForm, too_large_message
from idclass.models import Prediction
from idclass.serving import ModelUnavailable, get_predictor

MULTIPART_ALLOWANCE = 64 * 1024  # boundaries, headers and the CSRF token around the file

# Every code the upload page and the API refuse with, and its HTTP status: the one list that
# UploadRejected, the API's views and its OpenAPI document (idclass/openapi.py) read.
ERROR_STATUS: dict[str, int] = {
    **dict.fromkeys(FIELD_ERRORS, 400),  # no file, or an empty one
    "bad_request": 400,  # a body that is not multipart/form-data
    **dict.fromkeys(InvalidImage.CODES, 400),  # the file is no photo the classifier can read ...
    "unsupported_format": 415,  # ... or an image in a format nobody uploads as a photo
    TOO_LARGE: 413,
    "method_not_allowed": 405,
    "model_unavailable": 503,
}


class UploadRejected(Exception):
    """An upload that was refused and not stored; `message` is fit to show to a person."""

    def __init__(self, code: str, message: str):
        if code not in ERROR_STATUS:  # an API answer its document does not list
            raise ValueError(f"unknown error code {code!r}; add it to ERROR_STATUS")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.code]


def classify_upload(request: HttpRequest) -> Prediction:
    """The `image` of a multipart POST, classified and stored; raises UploadRejected."""
    try:
        predictor = get_predictor()
    except ModelUnavailable as exc:
        raise UploadRejected("model_unavailable", str(exc)) from exc
    # Refuse an oversized body by its declared length, before parsing spools it to disk.
    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.IDCLASS_UPLOAD_MAX_BYTES + MULTIPART_ALLOWANCE:
        raise UploadRejected(TOO_LARGE, too_large_message())
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
