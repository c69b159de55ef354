from tests.web import media_root, no_model, served_model  # noqa: F401


def test_ready(client, served_model):  # noqa: F811
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model_version": served_model.version}


def test_not_ready_without_a_model(client, no_model):  # noqa: F811
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "train_classifier" in body["reason"]


def test_answers_over_plain_http_in_production(client, settings, served_model):  # noqa: F811
    """Load balancers probe without TLS; the HTTPS redirect must not catch /healthz."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 301
