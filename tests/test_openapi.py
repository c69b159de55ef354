"""The OpenAPI document is valid, and the API's real answers, good and bad, are what it says."""
import pytest
from django.http import JsonResponse
from django.test import Client
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIResponse
from openapi_core.exceptions import OpenAPIError
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from classifier.errors import InvalidImage
from idclass.errors import ERROR_STATUS, UploadRejected
from idclass.openapi import CLASSIFY_PATH as CLASSIFY, DOCUMENT_TYPES_PATH
from tests.web import BAD_UPLOADS, AnsweredRequest, conforms, jpeg, upload

pytestmark = pytest.mark.django_db




def test_is_a_valid_openapi_3_document(document, spec):
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {CLASSIFY, DOCUMENT_TYPES_PATH, "/healthz"}
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


@pytest.mark.parametrize("path, allowed", [(CLASSIFY, "POST"), (DOCUMENT_TYPES_PATH, "GET, HEAD"),
                                           ("/healthz", "GET, HEAD"), ("/api/v1/openapi.json", "GET, HEAD")])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
def test_a_method_an_endpoint_does_not_take_is_405_with_allow_and_no_operation(client, document, path, allowed,
                                                                               method):
    """Not an operation in the document (a client would take it for supported), answered 405 with Allow."""
    if method in allowed.split(", "):
        return
    response = client.generic(method, path)
    assert response.status_code == 405 and response["Allow"] == allowed
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert method.lower() not in document["paths"].get(path, {})


def test_a_file_part_must_not_be_empty_says_the_request_schema(document):
    [body] = document["paths"][CLASSIFY]["post"]["requestBody"]["content"].values()
    assert body["schema"]["properties"]["image"]["minLength"] == 1


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
