"""The API as an OpenAPI 3.1 document, served at /api/v1/openapi.json.

Made on each request from the code's own definitions: the error codes and their statuses
(errors.ERROR_STATUS), the upload's field and size limit, the bands and their colours.
The answer's fields are described here; tests validate real answers against this document,
so a field added to Prediction.as_dict without a word here fails them."""
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from classifier.bands import ConfidenceBand
from classifier.images import MIN_SIDE, SUPPORTED_FORMATS
from classifier.openset import REASONS
from classifier.quality import MESSAGES
from idclass.forms import UploadForm
from idclass.models import Prediction
from idclass.errors import ERROR_STATUS

CLASSIFY_PATH = "/api/v1/classify"
DOCUMENT_TYPES_PATH = "/api/v1/document-types"


def error_descriptions() -> dict[int, str]:
    """When each status comes; a status in ERROR_STATUS must have one (openapi_document looks it up)."""
    formats = ", ".join(sorted(SUPPORTED_FORMATS))
    return {
        400: f"Refused: no file, an empty or damaged one, not an image, under {MIN_SIDE} px on a side, too many "
             "pixels, or a body that is not multipart/form-data.",
        401: "The server only takes uploads from signed-in users (IDCLASS_REQUIRE_LOGIN).",
        404: "No such API endpoint.",
        405: "A method the endpoint does not take; Allow names those it does.",
        411: "A chunked body without Content-Length.",
        413: f"Larger than the server's limit (IDCLASS_UPLOAD_MAX_BYTES, here "
             f"{filesizeformat(settings.IDCLASS_UPLOAD_MAX_BYTES)}).",
        415: f"An image, but not in a format photos and scans come in ({formats}).",
        429: "Too many uploads from this client (IDCLASS_UPLOAD_RATES), or too many refused ones "
             "(IDCLASS_REFUSED_UPLOAD_RATES); Retry-After says when to try again.",
        500: "A fault on the server, logged there.",
        503: "No usable model is loaded, or the database or the media folder cannot be used right now; "
             "GET /healthz says which.",
        507: "The server's media volume is nearly full (IDCLASS_MIN_FREE_MB).",
    }


RETRY_AFTER = {"Retry-After": {"description": "Seconds until trying again may work.", "required": True,
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}


def object_schema(properties: dict, **extra) -> dict:
    """An object with exactly these properties, all of them present."""
    return {"type": "object", "required": list(properties), "additionalProperties": False,
            "properties": properties, **extra}


def error_response(status: int, description: str) -> dict:
    codes = [code for code, code_status in ERROR_STATUS.items() if code_status == status]
    error = object_schema({"code": {"type": "string", "enum": codes, "description": "For programs."},
                           "message": {"type": "string", "description": "Fit to show to a person."}})
    response = {"description": description,
                "content": {"application/json": {"schema": object_schema({"error": error})}}}
    if status == 405:
        response["headers"] = {"Allow": {"required": True, "schema": {"type": "string"},
                                         "description": "The methods the endpoint takes, e.g. POST."}}
    if status in (429, 503):
        response["headers"] = RETRY_AFTER
    return response


def prediction_schema() -> dict:
    """Prediction.as_dict, field by field."""
    alternative = object_schema({"document_type": {"type": "string"}, "label": {"type": "string"},
                                 "score": {"type": "number", "minimum": 0, "maximum": 1}})
    point = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    quality_issue = object_schema({
        "code": {"type": "string", "enum": list(MESSAGES), "description": "For programs."},
        "value": {"type": "number", "description": "What the check measured, in its own unit."},
        "message": {"type": "string", "description": "What to do for a better photo, fit to show to a person."}})
    localisation = object_schema({
        "found": {"type": "boolean"}, "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "quad": {"type": ["array", "null"], "items": point, "minItems": 4, "maxItems": 4,
                 "description": "The corners in the upright image's pixels, top-left first, clockwise."},
    }, type=["object", "null"], description="Where the document was found; null when the model does not localise.")
    return object_schema({
        "id": {"type": "string", "format": "uuid", "description": "The Reference on the result page."},
        "document_type": {"type": ["string", "null"],
                          "description": "The type's code, e.g. lva_passport; null when band is unsupported."},
        "label": {"type": "string", "description": "The type in plain words; with no type, \"Not a supported "
                                                   "document\" or \"Too blurred to tell\"."},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "band": {"type": "string", "enum": list(Prediction.Band.values)},
        "colour": {"type": "string", "enum": [band.colour for band in ConfidenceBand]},
        "reason": {"type": ["string", "null"], "enum": [*REASONS, None],
                   "description": "Why the answer names no type: no_document (none was found in the photo), "
                                  "unsupported_type (a document of a type the model does not know) or too_blurred "
                                  "(too blurred to tell: take a sharper photo); null when it names a type, and for "
                                  "answers of models that did not say."},
        "reason_message": {"type": ["string", "null"], "description": "The reason in plain words."},
        "quality": {"type": "array", "items": quality_issue,
                    "description": "What is wrong with the photo, most important first; empty for a good photo. "
                                   "It explains the band and never changes the answer."},
        "top_k": {"type": "array", "items": alternative, "minItems": 1,
                  "description": "The best types, best first; for an unsupported answer, the closest ones."},
        "model_version": {"type": "string"},
        "localisation": localisation,
    })


def classify_operation() -> dict:
    [field] = UploadForm.base_fields
    upload = {"schema": object_schema({field: {"type": "string", "contentMediaType": "application/octet-stream",
                                               "minLength": 1, "description": "The photo or scan: a file "
                                               "that is not empty."}})}
    errors = {str(status): {"$ref": f"#/components/responses/Error{status}"}
              for status in sorted(set(ERROR_STATUS.values())) if status not in (404, 405)}
    return {"operationId": "classify", "summary": "Classify a photo or scan of an identity document",
            "description": "Stores the prediction for review. No CSRF token is needed. Errors store nothing.",
            "requestBody": {"required": True, "content": {"multipart/form-data": upload}},
            "responses": {"201": {"description": "The document's type, band and runners-up.", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Prediction"}}}}, **errors}}


def document_types_operation() -> dict:
    """services.supported_documents, field by field."""
    document_type = object_schema({
        "code": {"type": "string", "description": "What document_type says in a classification, e.g. lva_passport."},
        "name": {"type": "string", "description": "In plain words, e.g. Passport of Latvia."},
        "training_images": {"type": ["integer", "null"], "minimum": 0,
                            "description": "The labelled images it was trained on; "
                                           "null if the model did not record it."},
        "validation_accuracy": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                                "description": "The share of its validation views the model answered with this "
                                               "type; null if there were none or the model did not record it."},
    })
    body = object_schema({"model_version": {"type": "string"},
                          "document_types": {"type": "array", "items": document_type, "minItems": 1,
                                             "description": "In the model's order; any other document is "
                                                            "answered as not supported."}})
    return {"operationId": "document_types", "summary": "The document types the served model knows",
            "description": "Follows the model the server serves: a new model's types show without a restart.",
            "responses": {"200": {"description": "The served model's types.",
                                  "content": {"application/json": {"schema": body}}},
                          "503": {"$ref": "#/components/responses/Error503"}}}


def healthz_operation() -> dict:
    check = {"type": "string", "description": '"ok", or why not (no file paths)'}
    checks = object_schema({"model": check, "database": check},
                           description="media is there too when images are kept (IDCLASS_STORE_IMAGES).")
    checks["properties"]["media"] = check
    optional = {
        "model_version": {"type": "string"},
        "reload_error": {"type": "string", "description": "Present while a newer model in IDCLASS_MODEL_DIR "
                         "failed to load and the previous one still serves."},
        "detail": {"type": "string", "description": "For signed-in staff only: why the model did not load."},
    }
    ok = object_schema({"status": {"const": "ok"}, "model_version": optional["model_version"], "checks": checks})
    ok["properties"] |= {k: v for k, v in optional.items() if k != "model_version"}
    unavailable = object_schema({"status": {"const": "unavailable"}, "checks": checks,
                                 "reason": {"type": "string", "description": "The first check that failed."}})
    unavailable["properties"] |= optional
    return {"operationId": "healthz", "summary": "Whether this process can classify and keep uploads", "responses": {
        "200": {"description": "Ready.", "content": {"application/json": {"schema": ok}}},
        "503": {"description": "Not ready; checks say what is not.",
                "content": {"application/json": {"schema": unavailable}}}}}


def openapi_document() -> dict:
    descriptions = error_descriptions()
    return {
        "openapi": "3.1.0",
        "info": {"title": "idclass", "version": "1",
                 "description": "Which identity document type a photo or scan shows, and how sure the model is. "
                                "A method an endpoint does not list is answered 405, "
                                "with Allow naming those it takes."},
        "paths": {CLASSIFY_PATH: {"post": classify_operation()},
                  DOCUMENT_TYPES_PATH: {"get": document_types_operation()},
                  "/healthz": {"get": healthz_operation()}},
        "components": {
            "schemas": {"Prediction": prediction_schema()},
            "responses": {f"Error{status}": error_response(status, descriptions[status])
                          for status in sorted(set(ERROR_STATUS.values()))},
        },
    }
