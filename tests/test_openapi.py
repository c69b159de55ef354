"""The OpenAPI document is valid, and the API's real answers, good and bad, are what it says."""
import pytest
from django.http import JsonResponse
from django.test import Client
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse
from openapi_core.exceptions import OpenAPIError
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from classifier.errors import InvalidImage
from idclass.errors import ERROR_STATUS, UploadRejected
from tests.web import BAD_UPLOADS, jpeg, upload

pytestmark = pytest.mark.django_db
URL = "/api/v1/openapi.json"
CLASSIFY = "/api/v1/classify"


@pytest.fixture
def document(client) -> dict:
    response = client.get(URL)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    return response.json()


@pytest.fixture
def spec(document) -> OpenAPI:
    return OpenAPI.from_dict(document)  # refuses a document that is not valid OpenAPI 3


class AnsweredRequest(DjangoOpenAPIRequest):
    """A request as its answer is checked: Django refuses its body once the upload was parsed, and
    finding the operation needs only its path and method."""
    body = b""


def conforms(spec: OpenAPI, response, status: int) -> dict:
    """The real answer, checked against the document's operation for its path, method and status."""
    assert response.status_code == status
    spec.validate_response(AnsweredRequest(response.wsgi_request), DjangoOpenAPIResponse(response))
    return response.json()


def test_is_a_valid_openapi_3_document(document, spec):
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {CLASSIFY, "/healthz"}
    del document["info"]
    with pytest.raises(OpenAPIValidationError):
        OpenAPI.from_dict(document)


def test_lists_every_code_the_code_defines_under_its_status(document):
    responses = document["components"]["responses"]
    listed = {code: int(name.removeprefix("Error")) for name, response in responses.items()
              for code in response["content"]["application/json"]["schema"]["properties"]["error"]
              ["properties"]["code"]["enum"]}
    assert listed == ERROR_STATUS
    assert set(listed) >= {"required", "empty", "not_an_image", "corrupt", "too_small", "too_many_pixels",
                           "bad_request", "too_large", "unsupported_format", "model_unavailable",
                           "method_not_allowed"}
    assert set(InvalidImage.CODES) <= set(listed)


def test_a_code_outside_the_list_cannot_be_raised():
    with pytest.raises(ValueError, match="ERROR_STATUS"):
        UploadRejected("teapot", "No.")
    with pytest.raises(ValueError, match="InvalidImage.CODES"):
        InvalidImage("teapot", "No.")


def test_a_classification(spec, served_model, demo_image, media_root):
    body = conforms(spec, Client().post(CLASSIFY, {"image": upload(demo_image[1])}), 201)
    assert body["localisation"] is not None  # the document says what a found outline looks like, too


@pytest.mark.parametrize("make, status, code, message", BAD_UPLOADS)
def test_bad_uploads(client, spec, served_model, make, status, code, message):
    assert conforms(spec, client.post(CLASSIFY, {"image": upload(make())}), status)["error"]["code"] == code


def test_no_file_and_no_multipart(client, spec, served_model):
    assert conforms(spec, client.post(CLASSIFY, {"picture": upload(jpeg())}), 400)["error"]["code"] == "required"
    response = client.post(CLASSIFY, b"--x\r\n", content_type="multipart/form-data")
    assert conforms(spec, response, 400)["error"]["code"] == "bad_request"


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_methods(client, spec, method):
    assert conforms(spec, getattr(client, method)(CLASSIFY), 405)["error"]["code"] == "method_not_allowed"


def test_too_large(client, settings, spec, served_model, media_root):
    settings.IDCLASS_UPLOAD_MAX_BYTES = 5000
    for data in (jpeg() + bytes(5000), bytes(200_000)):  # refused by the form, then by the body's length
        assert conforms(spec, client.post(CLASSIFY, {"image": upload(data)}), 413)["error"]["code"] == "too_large"


def test_no_model(client, spec, no_model):
    response = client.post(CLASSIFY, {"image": upload(jpeg())})
    assert conforms(spec, response, 503)["error"]["code"] == "model_unavailable"
    assert conforms(spec, client.get("/healthz"), 503)["status"] == "unavailable"


def test_healthz_ready(client, spec, served_model, monkeypatch):
    assert conforms(spec, client.get("/healthz"), 200) == {
        "status": "ok", "model_version": served_model.version,
        "checks": {"model": "ok", "database": "ok", "media": "ok"}}
    monkeypatch.setattr("idclass.views.reload_error", lambda: "ModelUnreadable: the new model could not be loaded")
    assert "reload_error" in conforms(spec, client.get("/healthz"), 200)


def test_an_answer_the_document_does_not_allow_is_caught(client, spec, served_model):
    """The checks above mean something: a code not listed for its status fails them."""
    response = client.post(CLASSIFY, {"image": upload(b"")})
    wrong = JsonResponse({"error": {"code": "too_large", "message": "x"}}, status=400)
    with pytest.raises(OpenAPIError):
        spec.validate_response(AnsweredRequest(response.wsgi_request), DjangoOpenAPIResponse(wrong))
