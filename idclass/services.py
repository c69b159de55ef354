"""Classify an upload, then keep a record of it: the one path the page and the API share."""
import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePath

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError

from classifier.errors import InvalidImage
from classifier.images import FORMAT_SUFFIXES
from classifier.predictor import Classification
from idclass.forms import FIELD_ERRORS, TOO_LARGE, UploadForm, too_large_message
from idclass.models import DocumentStorage, Prediction, StorageUnavailable, delete_unused_image
from idclass.rate_limit import seconds_until_allowed
from idclass.serving import ModelUnavailable, get_predictor

MULTIPART_ALLOWANCE = 64 * 1024  # boundaries, headers and the CSRF token around the file
_writer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="idclass-write")  # as many as gunicorn's threads

# Every code the upload page and the API refuse with, and its HTTP status: the one list that
# UploadRejected, the API's views and its OpenAPI document (idclass/openapi.py) read.
ERROR_STATUS: dict[str, int] = {
    **dict.fromkeys(FIELD_ERRORS, 400),  # no file, or an empty one
    "bad_request": 400,  # a body that is not multipart/form-data
    **dict.fromkeys(InvalidImage.CODES, 400),  # the file is no photo the classifier can read ...
    "unsupported_format": 415,  # ... or an image in a format nobody uploads as a photo
    TOO_LARGE: 413,
    "length_required": 411,  # a chunked body without Content-Length
    "login_required": 401,  # IDCLASS_REQUIRE_LOGIN is on
    "method_not_allowed": 405,
    "not_found": 404,
    "rate_limited": 429,
    "model_unavailable": 503,
    "database_unavailable": 503,  # locked past its timeout, or unreachable
    "storage_unavailable": 503,  # the media folder cannot be written
    "storage_full": 507,
    "server_error": 500,
}
UNAVAILABLE_RETRY_SECONDS = 30  # the Retry-After of a 503: the server is meant to recover by itself


class UploadRejected(Exception):
    """An upload that was refused and not stored; `message` is fit to show to a person, and
    `retry_after` (seconds) says when trying again may work, where that is known."""

    def __init__(self, code: str, message: str, retry_after: int | None = None):
        if code not in ERROR_STATUS:  # an API answer its document does not list
            raise ValueError(f"unknown error code {code!r}; add it to ERROR_STATUS")
        super().__init__(message)
        self.code = code
        self.message = message
        if retry_after is None and self.status == 503:
            retry_after = UNAVAILABLE_RETRY_SECONDS
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.code]


def classify_upload(request: HttpRequest) -> Prediction:
    """The `image` of a multipart POST, classified and stored; raises UploadRejected."""
    try:
        predictor = get_predictor()
    except ModelUnavailable as exc:
        raise UploadRejected("model_unavailable", str(exc)) from exc
    check_request(request)
    try:
        form = UploadForm(request.POST, request.FILES)
        valid = form.is_valid()
    except RequestDataTooBig as exc:
        raise UploadRejected(TOO_LARGE, too_large_message()) from exc
    except (MultiPartParserError, SuspiciousOperation) as exc:  # e.g. too many parts
        raise UploadRejected("bad_request", "The upload could not be read; send one file as multipart/form-data "
                             "in a field named image.") from exc
    if not valid:
        error = form.errors.as_data()["image"][0]
        raise UploadRejected(error.code, error.messages[0])
    upload = form.cleaned_data["image"]
    data = upload.read()
    # The image goes to disk while the model looks at it; a refused upload's file is deleted.
    writing = _writer.submit(DocumentStorage().write_partial, data) if settings.IDCLASS_STORE_IMAGES else None
    try:
        result = predictor.predict(data)
        return store(data, upload.name, result, writing)
    except InvalidImage as exc:
        raise UploadRejected(exc.code, exc.message) from exc
    finally:
        if writing is not None and writing.exception() is None:
            writing.result().unlink(missing_ok=True)  # gone already where it was placed


def check_request(request: HttpRequest) -> None:
    """Refuse what can be refused before the body is read: who sends it, how much, and whether there is room."""
    if settings.IDCLASS_REQUIRE_LOGIN and not request.user.is_authenticated:
        raise UploadRejected("login_required", "Sign in to upload documents.")
    length = request.META.get("CONTENT_LENGTH")
    if not length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise UploadRejected("length_required", "Send the upload with a Content-Length, not in chunks.")
    try:
        wait = seconds_until_allowed(request)
    except DatabaseError as exc:
        raise UploadRejected("database_unavailable", DATABASE_UNAVAILABLE) from exc
    if wait is not None:
        raise UploadRejected("rate_limited", f"Too many uploads from here; try again in {wait} seconds.", wait)
    # Refuse an oversized body by its declared length, before parsing spools it to disk.
    if int(length or 0) > settings.IDCLASS_UPLOAD_MAX_BYTES + MULTIPART_ALLOWANCE:
        raise UploadRejected(TOO_LARGE, too_large_message())
    if settings.IDCLASS_STORE_IMAGES:
        try:
            DocumentStorage().check_room(int(length or 0))
        except StorageUnavailable as exc:
            raise storage_rejected(exc) from exc


DATABASE_UNAVAILABLE = "The server cannot record uploads right now; try again in a minute."
STORAGE_FULL = "The server has no room for more uploads right now; try again later."
STORAGE_UNAVAILABLE = "The server cannot store uploads right now; try again in a minute."


def storage_rejected(exc: StorageUnavailable) -> UploadRejected:
    return (UploadRejected("storage_full", STORAGE_FULL) if exc.full
            else UploadRejected("storage_unavailable", STORAGE_UNAVAILABLE))


def store(data: bytes, file_name: str, result: Classification, writing: Future[Path] | None) -> Prediction:
    """Place the image `writing` wrote (one file for identical uploads, named by its sha256), then
    save the row. If the row fails, the image goes too, unless an older row shares it."""
    prediction = Prediction.from_classification(result, data, display_file_name(file_name))
    storage = DocumentStorage()
    if writing is not None:
        prediction.image.name = f"{prediction.sha256}{FORMAT_SUFFIXES[result.image_format]}"
        try:
            storage.place(writing.result(), prediction.image.name)
        except StorageUnavailable as exc:
            raise storage_rejected(exc) from exc
    try:
        prediction.save(force_insert=True)
    except DatabaseError as exc:
        try:
            delete_unused_image(prediction.image.name)
        except DatabaseError:
            pass  # the database is gone: purge_predictions deletes the file once no row names it
        raise UploadRejected("database_unavailable", DATABASE_UNAVAILABLE) from exc
    if prediction.image and not storage.exists(prediction.image.name):  # its twin's last row was deleted meanwhile
        try:
            storage.save_document(prediction.image.name, data)
        except StorageUnavailable as exc:
            prediction.delete()  # a refused upload leaves no record
            raise storage_rejected(exc) from exc
    return prediction


def display_file_name(name: str) -> str:
    """The uploaded file's name without folders or control characters; never used as a path."""
    name = PurePath(name.replace("\\", "/")).name
    return "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()[:255]
