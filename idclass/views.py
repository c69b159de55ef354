import functools
import io

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from classifier.errors import InvalidImage
from classifier.images import load_image
from idclass.forms import UploadForm
from idclass.models import Prediction
from idclass.storage import DocumentStorage, StorageUnavailable
from idclass.openapi import openapi_document
from idclass.serving import ModelUnavailable, get_predictor, reload_error
from idclass.errors import ERROR_STATUS, UploadRejected
from idclass.services import classify_upload, supported_documents

SESSION_KEY = "prediction_ids"
SESSION_LIMIT = 50  # the uploads a browser can see again; older ones drop out of its session
PREVIEW_SIZE = 1200
API_PREFIX = "/api/"
READ_ONLY = ("GET", "HEAD")
SHORT_LIST = 12  # more supported types than this, and the upload page lets people search them


def upload(request):
    if settings.IDCLASS_REQUIRE_LOGIN and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.method == "POST":
        try:
            prediction = classify_upload(request)
        except UploadRejected as exc:
            return with_retry_after(upload_page(request, error=exc.message, status=exc.status), exc)
        request.session[SESSION_KEY] = (request.session.get(SESSION_KEY, []) + [str(prediction.id)])[-SESSION_LIMIT:]
        return redirect("result", prediction.id)
    return upload_page(request)


def upload_page(request, error=None, status=200):
    try:
        document_types = sorted(get_predictor().model.document_types, key=lambda t: t.name.casefold())
        unavailable = None
    except ModelUnavailable as exc:
        document_types, unavailable = [], exc
    context = {"form": UploadForm(), "error": error, "unavailable": unavailable, "document_types": document_types,
               "searchable": len(document_types) > SHORT_LIST,
               "max_bytes": settings.IDCLASS_UPLOAD_MAX_BYTES, "model_dir": settings.IDCLASS_MODEL_DIR,
               "store_images": settings.IDCLASS_STORE_IMAGES, "retention_days": settings.IDCLASS_RETENTION_DAYS}
    return render(request, "upload.html", context, status=status)


def with_retry_after(response: HttpResponse, rejected: UploadRejected) -> HttpResponse:
    if rejected.retry_after is not None:
        response["Retry-After"] = str(rejected.retry_after)
    return response


@never_cache
def result(request, prediction_id):
    return render(request, "result.html", {"prediction": own_prediction(request, prediction_id)})


@never_cache
def own_image(request, prediction_id):
    return preview(own_prediction(request, prediction_id), PREVIEW_SIZE)


@never_cache
@staff_member_required
def review_image(request, prediction_id, size=PREVIEW_SIZE):
    """For reviewers: the staff the admin lets see predictions (view or change permission), no other staff."""
    if not admin.site.get_model_admin(Prediction).has_view_permission(request):
        raise PermissionDenied
    return preview(get_object_or_404(Prediction, id=prediction_id), size)


def own_prediction(request, prediction_id) -> Prediction:
    """Only the browser session that uploaded a document may see it again."""
    if str(prediction_id) not in request.session.get(SESSION_KEY, []):
        raise Http404
    return get_object_or_404(Prediction, id=prediction_id)


def preview(prediction: Prediction, size: int) -> HttpResponse:
    """The stored image as a JPEG at most `size` pixels across: small, upright, and one format every
    browser shows (uploads may be TIFF or BMP)."""
    if not prediction.image:
        raise Http404
    try:
        return HttpResponse(rendered(prediction.image.name, size), content_type="image/jpeg")
    except (FileNotFoundError, InvalidImage) as exc:
        raise Http404 from exc


def rendered(name: str, size: int) -> bytes:
    """The stored image `name` at most `size` across, kept once made (``DocumentStorage.rendition``): the
    original is decoded once, for the preview, and smaller sizes are made from that, so however often
    pages show an upload, it costs the server one decode of the original."""
    storage = DocumentStorage()

    def original() -> bytes:
        with storage.open(name, "rb") as fh:
            return fh.read()

    if size >= PREVIEW_SIZE:
        return storage.rendition(name, size, lambda: shrink(original(), size))
    return storage.rendition(name, size, lambda: shrink(rendered(name, PREVIEW_SIZE), size))


def shrink(data: bytes, size: int) -> bytes:
    img = load_image(data, min_size=size)
    img.thumbnail((size, size))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def allowed_methods(*methods: str, usage: str = ""):
    """The view answers only `methods`; any other is answered 405 in the API's error shape, with
    the Allow header, as the OpenAPI document says of every endpoint."""
    def decorate(view):
        @functools.wraps(view)
        def checked(request, *args, **kwargs):
            if request.method not in methods:
                response = api_error("method_not_allowed", usage or f"Use {' or '.join(methods)}.")
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)
        # A view that changes nothing needs no CSRF check; without this, that check would answer a
        # POST to it 403 before the view could say 405.
        return csrf_exempt(checked) if set(methods) <= set(READ_ONLY) else checked
    return decorate


@csrf_exempt
@allowed_methods("POST", usage="Use POST with the image in a multipart field named image.")
def api_classify(request):
    """For programs: multipart field `image` in, JSON out; errors are JSON too."""
    try:
        prediction = classify_upload(request)
    except UploadRejected as exc:
        return api_rejected(exc)
    return JsonResponse(prediction.as_dict(), status=201)


@allowed_methods(*READ_ONLY)
def api_document_types(request):
    """The served model's types: what it can answer, and how well it learned each."""
    try:
        predictor = get_predictor()
    except ModelUnavailable as exc:
        return api_rejected(UploadRejected("model_unavailable", str(exc)))
    return JsonResponse(supported_documents(predictor))


def api_error(code: str, message: str) -> JsonResponse:
    """The API's one error shape, with the status ERROR_STATUS gives the code."""
    return JsonResponse({"error": {"code": code, "message": message}}, status=ERROR_STATUS[code])


def api_rejected(rejected: UploadRejected) -> JsonResponse:
    return with_retry_after(api_error(rejected.code, rejected.message), rejected)


@allowed_methods(*READ_ONLY)
def openapi(request):
    return JsonResponse(openapi_document())


@allowed_methods(*READ_ONLY)
def healthz(request):
    """Ready when the model, the database and (when images are kept) the media folder all are.
    Anyone may ask, so reasons name no paths; staff see the model's own message too."""
    checks, body = {"model": "ok", "database": "ok"}, {}
    try:
        body["model_version"] = get_predictor().version
    except ModelUnavailable as exc:
        checks["model"] = str(exc)
        if request.user.is_staff:
            body["detail"] = exc.detail
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        checks["database"] = "The database cannot be reached."
    if settings.IDCLASS_STORE_IMAGES:
        try:
            DocumentStorage().check_writable()
            checks["media"] = "ok"
        except StorageUnavailable:
            checks["media"] = "The media folder cannot be written."
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ready else "unavailable", **body, "checks": checks}
    if not ready:
        body["reason"] = next(value for value in checks.values() if value != "ok")
    if error := reload_error():
        body["reload_error"] = error
    return JsonResponse(body, status=200 if ready else 503)


def api_not_found(request, exception):
    """Unknown paths: the JSON error shape under /api/, Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return api_error("not_found", "There is no such API endpoint; see /api/v1/openapi.json.")
    return defaults.page_not_found(request, exception)


def api_server_error(request):
    if request.path.startswith(API_PREFIX):
        return api_error("server_error", "Something went wrong on the server; it has been logged.")
    return defaults.server_error(request)
