"""Classify an upload, then keep a record of it: the one path the page and the API share; and what
the served model supports."""
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path, PurePath

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError

from classifier.errors import InvalidImage
from classifier.images import FORMAT_SUFFIXES
from classifier.predictor import Classification, Predictor
from idclass.errors import UploadRejected
from idclass.forms import TOO_LARGE, UploadForm, too_large_message
from idclass.models import Prediction, delete_unused_image, plain_text
from idclass.storage import DocumentStorage, StorageUnavailable
from idclass.rate_limit import Reservation, reserve
from idclass.serving import ModelUnavailable, get_predictor

MULTIPART_ALLOWANCE = 64 * 1024  # boundaries, headers and the CSRF token around the file
_writer = ThreadPoolExecutor(thread_name_prefix="idclass-write")  # one write per request in flight, at most


def supported_documents(predictor: Predictor) -> dict:
    """What GET /api/v1/document-types answers: the one place that says so."""
    return {"model_version": predictor.version,
            "document_types": [asdict(document_type) for document_type in predictor.model.document_types]}


def classify_upload(request: HttpRequest) -> Prediction:
    """The `image` of a multipart POST, classified and stored; raises UploadRejected."""
    try:
        predictor = get_predictor()
    except ModelUnavailable as exc:
        raise UploadRejected("model_unavailable", str(exc)) from exc
    reservation = check_request(request)
    try:
        return classify_and_store(request, predictor)
    except UploadRejected as exc:
        reservation.refused(by_client=exc.status < 500)
        raise


def classify_and_store(request: HttpRequest, predictor) -> Prediction:
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


def check_request(request: HttpRequest) -> Reservation:
    """Refuse what can be refused before the body is read: who sends it, how much, whether there is room,
    and whether the client is within its rates; the upload counted in them (``rate_limit``)."""
    if settings.IDCLASS_REQUIRE_LOGIN and not request.user.is_authenticated:
        raise UploadRejected("login_required", "Sign in to upload documents.")
    length = request.META.get("CONTENT_LENGTH")
    if not length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise UploadRejected("length_required", "Send the upload with a Content-Length, not in chunks.")
    # Refuse an oversized body by its declared length, before parsing spools it to disk.
    if int(length or 0) > settings.IDCLASS_UPLOAD_MAX_BYTES + MULTIPART_ALLOWANCE:
        raise UploadRejected(TOO_LARGE, too_large_message())
    if settings.IDCLASS_STORE_IMAGES:
        try:
            DocumentStorage().check_room(int(length or 0))
        except StorageUnavailable as exc:
            raise storage_rejected(exc) from exc
    try:
        reservation, wait = reserve(request)
    except DatabaseError as exc:
        raise UploadRejected("database_unavailable", DATABASE_UNAVAILABLE) from exc
    if wait is not None:
        raise UploadRejected("rate_limited", f"Too many uploads from here; try again in {wait} seconds.", wait)
    return reservation


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
    return plain_text(PurePath(name.replace("\\", "/")).name, Prediction._meta.get_field("original_name").max_length)
