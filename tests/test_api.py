import pytest
from django.db import OperationalError
from django.test import Client

from idclass.models import Prediction
from tests.web import BAD_UPLOADS, jpeg, stored_files, upload

pytestmark = pytest.mark.django_db
URL = "/api/v1/classify"


def assert_error(response, status, code, message=""):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert message in error["message"]


def test_classify(served_model, demo_image, media_root):
    client = Client(enforce_csrf_checks=True)  # programs have no CSRF token; the API needs none
    response = client.post(URL, {"image": upload(demo_image[1])})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "document_type", "label", "score", "band", "colour", "top_k", "model_version",
                         "localisation", "reason", "reason_message", "quality"}
    assert body["reason"] is None and body["reason_message"] is None  # a typed answer
    prediction = Prediction.objects.get()
    assert body["id"] == str(prediction.id)
    assert body["document_type"] == prediction.document_type in served_model.model.classes
    assert body["label"] == served_model.model.display_names[body["document_type"]]
    assert body["band"] in {"high", "medium", "low"}
    assert body["colour"] == {"high": "green", "medium": "amber", "low": "red"}[body["band"]]
    assert 0 <= body["score"] <= 1 and body["model_version"] == served_model.version
    assert [alt["document_type"] for alt in body["top_k"]][0] == body["document_type"]
    assert len(body["top_k"]) == 3
    assert [p.name for p in stored_files(media_root)] == [f"{prediction.sha256}.jpg"]


def test_api_page_and_record_give_the_predictors_answer_in_one_shape(client, served_model, demo_image):
    """Prediction.as_dict is the one place the answer's JSON is built: the API returns it, the
    stored record gives it back, and the result page shows the same answer."""
    expected = Prediction.from_classification(served_model.predict(demo_image[1]), demo_image[1], "x.jpg").as_dict()
    body = client.post(URL, {"image": upload(demo_image[1])}).json()
    assert body == expected | {"id": body["id"]}
    assert Prediction.objects.get(id=body["id"]).as_dict() == body
    page = client.post("/", {"image": upload(demo_image[1])}, follow=True).content.decode()
    shown = Prediction.objects.exclude(id=body["id"]).get().as_dict()
    assert shown == body | {"id": shown["id"]}
    for text in (body["label"], f"{body['score']:.1%}", f"{body['band'].capitalize()} confidence",
                 *(f"{alt['score']:.1%}" for alt in body["top_k"][1:]), body["model_version"]):
        assert text in page, text


def test_get_is_405(client, served_model):
    response = client.get(URL)
    assert_error(response, 405, "method_not_allowed", "POST")
    assert response["Allow"] == "POST"


@pytest.mark.parametrize("make, status, code, message", BAD_UPLOADS)
def test_bad_upload(client, served_model, media_root, make, status, code, message):
    assert_error(client.post(URL, {"image": upload(make())}), status, code, message)
    assert not Prediction.objects.exists() and not stored_files(media_root)


def test_no_file(client, served_model):
    assert_error(client.post(URL, {"picture": upload(jpeg())}), 400, "required", "Choose a photo")
    assert_error(client.post(URL, {"image": "not a file"}), 400, "required")
    assert_error(client.post(URL, b'{"image": "x"}', content_type="application/json"), 400, "required")


def test_unreadable_multipart(client, served_model):
    response = client.post(URL, b"--x\r\n", content_type="multipart/form-data")  # no boundary
    assert_error(response, 400, "bad_request", "multipart/form-data")


def test_over_the_limit_is_413(client, settings, served_model, media_root):
    settings.IDCLASS_UPLOAD_MAX_BYTES = 5000
    assert_error(client.post(URL, {"image": upload(jpeg() + bytes(5000))}), 413, "too_large", "4.9\xa0KB")
    assert not Prediction.objects.exists() and not stored_files(media_root)


def test_a_body_far_over_the_limit_is_refused_by_its_length(client, settings, served_model):
    settings.IDCLASS_UPLOAD_MAX_BYTES = 5000
    response = client.post(URL, {"image": upload(bytes(200_000))})
    assert_error(response, 413, "too_large")
    assert not hasattr(response.wsgi_request, "_files")  # the body was never parsed


def test_over_the_default_limit_is_413_not_a_django_400(client, served_model, media_root):
    assert_error(client.post(URL, {"image": upload(bytes(15 * 1024 * 1024 + 1))}), 413, "too_large", "15.0\xa0MB")
    assert_error(client.post(URL, {"image": upload(bytes(40 * 1024 * 1024))}), 413, "too_large")


def test_no_model_is_503(client, settings, no_model, media_root):
    response = client.post(URL, {"image": upload(jpeg())})
    assert_error(response, 503, "model_unavailable", "No trained model is installed yet")
    assert str(settings.IDCLASS_MODEL_DIR) not in response.content.decode()  # paths are for staff and the log
    assert response["Retry-After"].isdigit()
    assert not Prediction.objects.exists() and not stored_files(media_root)


def test_too_many_parts_is_a_json_400(client, served_model, media_root):
    response = client.post(URL, {"image": [upload(jpeg()) for _ in range(101)]})  # Django's limit is 100 files
    assert_error(response, 400, "bad_request", "one file")
    fields = "&".join(f"f{n}=x" for n in range(1001))  # and 1000 fields
    response = client.post(URL, fields, content_type="application/x-www-form-urlencoded")
    assert_error(response, 400, "bad_request")
    assert not Prediction.objects.exists() and not stored_files(media_root)


def test_a_chunked_body_without_length_is_411(client, served_model, media_root):
    """Django reads a body without Content-Length as empty; say so instead of "no file"."""
    response = client.post(URL, {"image": upload(jpeg())}, CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked")
    assert_error(response, 411, "length_required", "Content-Length")


def test_a_locked_database_is_a_json_503(client, served_model, demo_image, media_root, monkeypatch):
    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(Prediction, "save", locked)
    assert_error(client.post(URL, {"image": upload(demo_image[1])}), 503, "database_unavailable", "try again")
    assert not stored_files(media_root)


def test_unknown_api_paths_are_json_404(client):
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found", "openapi.json")
    assert client.get("/no-such-page")["Content-Type"].startswith("text/html")


def test_a_fault_in_the_api_is_a_json_500(served_model, monkeypatch):
    def fault(request):
        raise RuntimeError("a bug")

    monkeypatch.setattr("idclass.views.classify_upload", fault)
    response = Client(raise_request_exception=False).post(URL, {"image": upload(jpeg())})
    assert_error(response, 500, "server_error", "logged")
    assert "a bug" not in response.content.decode()
