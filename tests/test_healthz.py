import pytest
from django.db import OperationalError


pytestmark = pytest.mark.django_db
OK = {"model": "ok", "database": "ok", "media": "ok"}


def test_ready(client, served_model):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model_version": served_model.version, "checks": OK}


def test_not_ready_without_a_model(client, settings, no_model, admin_user):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["model"] == body["reason"]
    assert "No trained model" in body["reason"] and "detail" not in body
    assert str(settings.IDCLASS_MODEL_DIR) not in response.content.decode()  # no paths for anyone who asks

    client.force_login(admin_user)  # staff see what to do
    assert "train_classifier" in client.get("/healthz").json()["detail"]


def test_not_ready_when_the_database_is_not(client, served_model, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("idclass.views.connection.ensure_connection", unreachable)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == OK | {"database": "The database cannot be reached."}


def test_not_ready_when_images_cannot_be_written(client, settings, served_model, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    settings.IDCLASS_MEDIA_ROOT = tmp_path / "file" / "media"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["reason"] == "The media folder cannot be written."
    settings.IDCLASS_STORE_IMAGES = False  # then no media folder is needed
    assert client.get("/healthz").json()["checks"] == {"model": "ok", "database": "ok"}


def test_answers_over_plain_http_in_production(client, settings, served_model):
    """Load balancers probe without TLS; the HTTPS redirect must not catch /healthz."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 301
