import io

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from classifier.errors import InvalidImage
from classifier.images import load_image
from idclass.forms import UploadForm
from idclass.models import Prediction
from idclass.openapi import openapi_document
from idclass.serving import ModelUnavailable, get_predictor, reload_error, unavailable_reason
from idclass.services import ERROR_STATUS, UploadRejected, classify_upload

SESSION_KEY = "prediction_ids"
SESSION_LIMIT = 50  # the uploads a browser can see again; older ones drop out of its session
PREVIEW_SIZE = 1200


def upload(request):
    if request.method == "POST":
        try:
            prediction = classify_upload(request)
        except UploadRejected as exc:
            return upload_page(request, error=exc.message, status=exc.status)
        request.session[SESSION_KEY] = (request.session.get(SESSION_KEY, []) + [str(prediction.id)])[-SESSION_LIMIT:]
        return redirect("result", prediction.id)
    return upload_page(request)


def upload_page(request, error=None, status=200):
    context = {"form": UploadForm(), "error": error, "unavailable": unavailable_reason(),
               "max_bytes": settings.IDCLASS_UPLOAD_MAX_BYTES, "model_dir": settings.IDCLASS_MODEL_DIR,
               "store_images": settings.IDCLASS_STORE_IMAGES, "retention_days": settings.IDCLASS_RETENTION_DAYS}
    return render(request, "upload.html", context, status=status)


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
    """The stored image as a JPEG at most `size` pixels across: small, upright, and one
    format every browser shows (uploads may be TIFF or BMP)."""
    if not prediction.image:
        raise Http404
    try:
        with prediction.image.open("rb") as fh:
            image = load_image(fh, min_size=size)
    except (FileNotFoundError, InvalidImage) as exc:
        raise Http404 from exc
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return HttpResponse(out.getvalue(), content_type="image/jpeg")


@csrf_exempt
def api_classify(request):
    """For programs: multipart field `image` in, JSON out; errors are JSON too."""
    if request.method != "POST":
        response = api_error("method_not_allowed", "Use POST with the image in a multipart field named image.")
        response["Allow"] = "POST"
        return response
    try:
        prediction = classify_upload(request)
    except UploadRejected as exc:
        return api_error(exc.code, exc.message)
    return JsonResponse(prediction.as_dict(), status=201)


def api_error(code: str, message: str) -> JsonResponse:
    """The API's one error shape, with the status ERROR_STATUS gives the code."""
    return JsonResponse({"error": {"code": code, "message": message}}, status=ERROR_STATUS[code])


def openapi(request):
    return JsonResponse(openapi_document())


def healthz(request):
    try:
        predictor = get_predictor()
    except ModelUnavailable as exc:
        return JsonResponse({"status": "unavailable", "reason": str(exc)}, status=503)
    body = {"status": "ok", "model_version": predictor.version}
    if error := reload_error():
        body["reload_error"] = error
    return JsonResponse(body)
