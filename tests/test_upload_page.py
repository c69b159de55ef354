import re

import pytest
from django.test import Client

from classifier.openset import REASONS
from classifier.quality import MESSAGES, QualityIssue
from idclass.models import Prediction
from tests.web import BAD_UPLOADS, jpeg, make_prediction, stored_files, upload

pytestmark = pytest.mark.django_db


def remember(client, prediction):
    """Put a prediction in the client's session, as uploading it would."""
    session = client.session
    session["prediction_ids"] = [str(prediction.id)]
    session.save()


def test_form(client, served_model):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert '<label class="dropzone-label" for="id_image">' in html
    assert 'type="file" name="image" id="id_image"' in html
    assert "15.0\xa0MB" in html


def test_without_a_model_says_so_and_tells_staff_how_to_train_one(client, settings, no_model,
                                                                   admin_user):
    response = client.get("/")
    assert response.status_code == 200
    assert b"The classifier is not ready yet" in response.content and b"No trained model" in response.content
    assert b'type="file"' not in response.content
    assert str(settings.IDCLASS_MODEL_DIR) not in response.content.decode()  # paths are for staff only
    assert b"train_classifier" not in response.content

    client.force_login(admin_user)
    staff_page = client.get("/").content.decode()
    assert "python manage.py train_classifier DATA_DIR" in staff_page
    assert str(settings.IDCLASS_MODEL_DIR) in staff_page


def test_posting_without_a_model_is_503_and_stores_nothing(client, no_model, media_root):
    response = client.post("/", {"image": upload(jpeg())})
    assert response.status_code == 503 and response["Retry-After"].isdigit()
    assert b"No trained model" in response.content
    assert not Prediction.objects.exists() and not stored_files(media_root)


def test_upload_redirects_to_the_result(client, served_model, demo_image, media_root):
    document_type, data = demo_image
    response = client.post("/", {"image": upload(data, "scan of my passport.jpg")})
    assert response.status_code == 302
    prediction = Prediction.objects.get()
    assert response["Location"] == f"/p/{prediction.id}/"
    assert prediction.original_name == "scan of my passport.jpg"
    assert prediction.size_bytes == len(data)
    assert len(prediction.sha256) == 64 and prediction.model_version == served_model.version
    assert [p.name for p in stored_files(media_root)] == [f"{prediction.sha256}.jpg"]
    assert (media_root / prediction.image.name).read_bytes() == data

    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert prediction.label in html and prediction.document_type in html
    assert f"{prediction.get_band_display()} confidence" in html
    assert prediction.confidence_band.meaning in html
    assert f"{prediction.score:.1%}" in html
    for alternative in prediction.alternatives:
        assert alternative["label"] in html
    assert len(prediction.alternatives) == 2
    assert f'src="/p/{prediction.id}/image"' in html

    image = client.get(f"/p/{prediction.id}/image")
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("band, colour, word", [("high", "#1a7f37", "High"), ("medium", "#9a6700", "Medium"),
                                                ("low", "#cf222e", "Low")])
def test_result_shows_the_band_as_colour_and_word(client, media_root, band, colour, word):
    prediction = make_prediction(jpeg(), score={"high": 0.97, "medium": 0.7, "low": 0.3}[band], band=band)
    remember(client, prediction)
    html = client.get(f"/p/{prediction.id}/").content.decode()
    assert f"--band-colour: {colour}" in html
    assert f"<strong>{word} confidence</strong>" in html
    assert "For a better photo" not in html  # a good photo has no tips, whatever its band


def test_result_gives_the_tips_that_apply_most_important_first(client, media_root):
    issues = [QualityIssue(code, 0.5, MESSAGES[code]).as_json() for code in ("partly_out_of_frame", "glare")]
    prediction = make_prediction(jpeg(), score=0.3, band="low", quality=issues)
    remember(client, prediction)
    html = client.get(f"/p/{prediction.id}/").content.decode()
    assert "For a better photo" in html
    tips = [html.index(MESSAGES[code]) for code in ("partly_out_of_frame", "glare")]
    assert tips == sorted(tips) and MESSAGES["blurred"] not in html


@pytest.mark.parametrize("reason", REASONS)
def test_a_not_supported_result_says_why(client, media_root, reason):
    prediction = make_prediction(jpeg(), document_type="", score=0.4, band="unsupported", reason=reason)
    remember(client, prediction)
    html = client.get(f"/p/{prediction.id}/").content.decode()
    assert REASONS[reason] in html and all(REASONS[other] not in html for other in REASONS if other != reason)
    heading = "Too blurred to tell" if reason == "too_blurred" else "Not a supported document"
    assert f'<h1 class="document-type">{heading}</h1>' in html


def test_a_result_is_only_for_the_session_that_uploaded_it(client, served_model, demo_image):
    client.post("/", {"image": upload(demo_image[1])})
    prediction = Prediction.objects.get()
    stranger = Client()
    assert stranger.get(f"/p/{prediction.id}/").status_code == 404
    assert stranger.get(f"/p/{prediction.id}/image").status_code == 404
    assert client.get(f"/p/{prediction.id}/").status_code == 200


@pytest.mark.parametrize("make, status, code, message", BAD_UPLOADS)
def test_bad_upload(client, served_model, media_root, make, status, code, message):
    response = client.post("/", {"image": upload(make())})
    assert response.status_code == status
    html = response.content.decode()
    assert re.search(r'<div class="error" id="upload-error" role="alert">.*' + re.escape(message), html)
    assert 'aria-invalid="true"' in html
    assert not Prediction.objects.exists() and not stored_files(media_root)


def test_no_file(client, served_model):
    response = client.post("/", {})
    assert response.status_code == 400
    assert b"Choose a photo or scan of a document to upload." in response.content


def test_file_over_the_limit_is_413(client, settings, served_model, media_root):
    settings.IDCLASS_UPLOAD_MAX_BYTES = 5000
    response = client.post("/", {"image": upload(jpeg(400, 300) + b"\0" * 5000)})
    assert response.status_code == 413
    assert "larger than 4.9\xa0KB" in response.content.decode()
    assert not Prediction.objects.exists() and not stored_files(media_root)


def test_file_over_the_default_limit_is_413(client, served_model, media_root):
    response = client.post("/", {"image": upload(b"\xff" * (15 * 1024 * 1024 + 1))})
    assert response.status_code == 413
    assert not Prediction.objects.exists() and not stored_files(media_root)


def test_csrf_is_required(served_model, demo_image):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/", {"image": upload(demo_image[1])}).status_code == 403
    token = client.get("/").context["csrf_token"]
    response = client.post("/", {"image": upload(demo_image[1]), "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Prediction.objects.count() == 1


def test_file_name_is_shown_never_used(client, served_model, demo_image, media_root):
    client.post("/", {"image": upload(demo_image[1], "..\\..\\<script>x\x07.jpg")})
    prediction = Prediction.objects.get()
    assert prediction.original_name == "<script>x.jpg"
    assert [p.name for p in stored_files(media_root)] == [f"{prediction.sha256}.jpg"]
    html = client.get(f"/p/{prediction.id}/").content.decode()
    assert "&lt;script&gt;x.jpg" in html and "<script>" not in html
