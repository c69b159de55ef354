"""The model is loaded as a server process starts serving, not per request, and never by commands."""
import importlib
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command

from idclass import serving


@pytest.fixture
def loads(monkeypatch, served_model):
    """Counts the predictors built from now on."""
    built = []

    class CountingPredictor(serving.Predictor):
        def __init__(self, *args, **kwargs):
            built.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(serving, "Predictor", CountingPredictor)
    serving.forget_predictor()
    return built


@pytest.mark.django_db
def test_loaded_when_the_server_starts_then_reused(client, loads):
    if "idclass.wsgi" in sys.modules:
        importlib.reload(sys.modules["idclass.wsgi"])
    else:
        importlib.import_module("idclass.wsgi")
    assert len(loads) == 1
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert len(loads) == 1


def test_loaded_once_by_concurrent_first_requests(loads):
    with ThreadPoolExecutor(4) as pool:
        predictors = set(pool.map(lambda _: serving.get_predictor(), range(8)))
    assert len(predictors) == 1 and len(loads) == 1


@pytest.mark.django_db
def test_commands_do_not_load_it(loads):
    call_command("check")
    call_command("migrate", verbosity=0)
    call_command("purge_predictions")
    assert loads == []


def test_a_failure_is_kept_not_retried(settings, loads, tmp_path):
    settings.IDCLASS_MODEL_DIR = tmp_path / "missing"
    for _ in range(2):
        with pytest.raises(serving.ModelUnavailable, match="No trained model") as raised:
            serving.get_predictor()
        assert "train_classifier" in raised.value.detail
    assert len(loads) == 1
