"""Shared fixtures: a small demo data set and a model trained on it, made once per run."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from benchmarks.quick_model import quick_config
from benchmarks.reference_files import WEIGHTS


ROOT = Path(__file__).resolve().parent.parent


def pretrained_weights() -> Path | None:
    """The offline ImageNet weights (IDCLASS_TEST_WEIGHTS), if this machine has them."""
    return WEIGHTS if WEIGHTS.is_file() else None


@pytest.fixture(scope="session")
def doc() -> Image.Image:
    """A light 600x400 'document' with a red block marking its own top-left corner."""
    img = Image.new("RGB", (600, 400), (225, 225, 215))
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, 119, 79], fill=(220, 20, 20))
    for y in range(120, 380, 24):
        draw.line([(150, y), (560, y)], fill=(30, 30, 90), width=4)
    return img


@pytest.fixture(scope="session")
def demo_train_dir(tmp_path_factory) -> Path:
    """Four flat specimens of each demo type, as an operator onboards new types."""
    from classifier.synth.demo import make_demo_dataset

    out = tmp_path_factory.mktemp("demo-train")
    make_demo_dataset(out, per_class=4, seed=1, flat=True, progress=False)
    return out


@pytest.fixture(scope="session")
def backbone_weights() -> str:
    """Pretrained weights when present; else a random-initialised backbone (no accuracy checks)."""
    weights = pretrained_weights()
    return str(weights) if weights else "random"


@pytest.fixture(scope="session")
def feature_cache_dir(tmp_path_factory) -> Path:
    """The features `trained_model_dir` computed: training on its data again takes seconds."""
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory, demo_train_dir, backbone_weights, feature_cache_dir) -> Path:
    """A real model, trained quickly: small backbone, few augmented views."""
    from classifier.training.train import train_classifier

    out = tmp_path_factory.mktemp("model")
    train_classifier([demo_train_dir], quick_config(backbone_weights, feature_cache_dir), out_dir=out,
                     log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def session_predictor(trained_model_dir, backbone_weights):
    """`trained_model_dir` loaded once, for the tests that serve it: freezing its graphs takes seconds."""
    from classifier.predictor import Predictor

    return Predictor(trained_model_dir, weights=backbone_weights)


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    """A private media root of this test's own, to see exactly what was stored."""
    settings.IDCLASS_MEDIA_ROOT = tmp_path / "media"
    return settings.IDCLASS_MEDIA_ROOT


@pytest.fixture
def served_model(settings, trained_model_dir, backbone_weights, media_root, session_predictor):
    """The server's predictor: the session's trained model, as if this process had loaded it."""
    from idclass.serving import forget_predictor, get_predictor, use_predictor

    settings.IDCLASS_MODEL_DIR = trained_model_dir
    settings.IDCLASS_BACKBONE_WEIGHTS = backbone_weights
    use_predictor(session_predictor)
    yield get_predictor()
    forget_predictor()


@pytest.fixture
def no_model(settings, tmp_path, media_root):
    from idclass.serving import forget_predictor

    settings.IDCLASS_MODEL_DIR = tmp_path / "no-model-here"
    forget_predictor()
    yield
    forget_predictor()


@pytest.fixture
def document(client) -> dict:
    """The served OpenAPI document."""
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    return response.json()


@pytest.fixture
def spec(document):
    from openapi_core import OpenAPI

    return OpenAPI.from_dict(document)  # refuses a document that is not valid OpenAPI 3


@pytest.fixture
def demo_image(demo_train_dir) -> tuple[str, bytes]:
    """(document type, JPEG bytes) of one demo document photo."""
    path = sorted(demo_train_dir.glob("*/*.jpg"))[0]
    return path.parent.name, path.read_bytes()


def database_description() -> str:
    """The database the tests run on: vendor and name (where and as whom for a server), never the password."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        name = db["TEST"].get("NAME") or "in memory"
        return f"database: sqlite, test database {name}"
    name = db["TEST"].get("NAME") or f"test_{db['NAME']}"  # Django's test database beside the configured one
    where = f"{db.get('HOST') or 'local socket'}{':' + str(db['PORT']) if db.get('PORT') else ''}"
    return f"database: {connection.vendor}, test database {name} on {where} as {db.get('USER') or 'default user'}"


def pytest_report_header(config):
    weights = pretrained_weights()
    if weights:
        backbone = f"backbone: pretrained MobileNetV3-Small from {weights}"
    else:
        backbone = (f"backbone: random-initialised MobileNetV3-Small ({WEIGHTS} not found; IDCLASS_TEST_WEIGHTS); "
                    "accuracy checks are skipped")
    return [backbone, database_description()]
