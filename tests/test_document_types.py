"""The service says which documents it supports: GET /api/v1/document-types, the upload page's list,
and the link from a "not supported" answer; all of them follow the model the server serves."""
import json
import shutil
from pathlib import Path

import pytest

from benchmarks.quick_model import quick_config
from benchmarks.server import wait_for
from classifier import artifact
from classifier.training.train import train_classifier
from idclass import serving
from idclass.openapi import DOCUMENT_TYPES_PATH
from tests.web import conforms, make_prediction

pytestmark = pytest.mark.django_db
OTHER_TYPES = {"vel_id": "ID Card of Veloria", "mar_residence": "Residence Permit of Marendia",
               "lun_passport": "Travel Passport of Lunaris"}  # a subset, one of them renamed


def listed_names(html: str) -> list[str]:
    """The names in the upload page's list of supported documents, in page order."""
    section = html.split('id="supported-documents"', 1)[1].split("</section>", 1)[0]
    return [item.split("</li>", 1)[0] for item in section.split("<li>")[1:]]


def test_the_served_models_types_with_what_training_recorded(client, spec, served_model):
    body = conforms(spec, client.get(DOCUMENT_TYPES_PATH), 200)
    metadata = served_model.model.metadata
    assert body["model_version"] == served_model.version
    assert [t["code"] for t in body["document_types"]] == metadata["classes"]
    for listed in body["document_types"]:
        assert listed["name"] == metadata["display_names"][listed["code"]]
        assert listed["training_images"] == metadata["dataset"]["per_class"][listed["code"]] == 4
        assert listed["validation_accuracy"] == metadata["validation"]["per_class"][listed["code"]]
        assert 0 <= listed["validation_accuracy"] <= 1


def test_a_model_trained_before_says_null_for_what_it_did_not_record(client, spec, served_model, monkeypatch):
    older = {k: v for k, v in served_model.model.metadata.items() if k not in ("dataset", "validation")}
    monkeypatch.setattr(served_model.model, "metadata", older)
    body = conforms(spec, client.get(DOCUMENT_TYPES_PATH), 200)
    assert {(t["training_images"], t["validation_accuracy"]) for t in body["document_types"]} == {(None, None)}


def test_without_a_model_503_with_retry_after(client, spec, no_model):
    response = client.get(DOCUMENT_TYPES_PATH)
    assert conforms(spec, response, 503)["error"]["code"] == "model_unavailable"
    assert response["Retry-After"].isdigit()
    assert 'id="supported-documents"' not in client.get("/").content.decode()


def test_the_upload_page_lists_them_by_name(client, served_model):
    html = client.get("/").content.decode()
    names = served_model.model.display_names.values()
    assert listed_names(html) == sorted(names, key=str.casefold)
    assert f"{len(names)} types;" in html
    assert 'id="type-search"' not in html  # ten are a short list


def test_many_types_can_be_searched(client, served_model, monkeypatch):
    model = served_model.model
    many = {f"t{i:02d}": f"Passport of Place {i}" for i in range(30)}
    monkeypatch.setattr(model, "metadata", model.metadata | {"classes": list(many), "display_names": many})
    html = client.get("/").content.decode()
    assert 'id="type-search"' in html and len(listed_names(html)) == 30


def test_a_not_supported_answer_links_to_the_list_and_a_typed_one_does_not(client):
    unsupported = make_prediction(document_type="", band="unsupported")
    typed = make_prediction()
    session = client.session
    session["prediction_ids"] = [str(unsupported.id), str(typed.id)]
    session.save()
    link = 'href="/#supported-documents"'
    assert link in client.get(f"/p/{unsupported.id}/").content.decode()
    assert link not in client.get(f"/p/{typed.id}/").content.decode()


def other_types(demo_train_dir: Path, out: Path) -> Path:
    """Three of the demo types, one under another name: a data set with another type list."""
    for code in OTHER_TYPES:
        shutil.copytree(demo_train_dir / code, out / code)
    (out / "labels.json").write_text(json.dumps(OTHER_TYPES))
    return out


def test_a_new_model_with_other_types_shows_without_a_restart(
        client, settings, tmp_path, trained_model_dir, demo_train_dir, backbone_weights, feature_cache_dir,
        media_root):
    models = tmp_path / "models"
    shutil.copytree(trained_model_dir, models / "first")
    artifact.make_current(models / "first")
    settings.IDCLASS_MODEL_DIR = models / "current"
    settings.IDCLASS_BACKBONE_WEIGHTS = backbone_weights
    settings.IDCLASS_MODEL_CHECK_SECONDS = 0
    serving.forget_predictor()
    try:
        assert len(client.get(DOCUMENT_TYPES_PATH).json()["document_types"]) == 10
        assert len(listed_names(client.get("/").content.decode())) == 10
        trained = train_classifier([other_types(demo_train_dir, tmp_path / "data")],
                                   quick_config(backbone_weights, feature_cache_dir), out_dir=models / "second",
                                   log=lambda _: None)
        artifact.make_current(trained.model_dir)
        wait_for(lambda: client.get(DOCUMENT_TYPES_PATH).json()["model_version"] == trained.model.version,
                 timeout=60)
        body = client.get(DOCUMENT_TYPES_PATH).json()
        assert {t["code"]: t["name"] for t in body["document_types"]} == OTHER_TYPES
        assert listed_names(client.get("/").content.decode()) == sorted(OTHER_TYPES.values())
    finally:
        serving.forget_predictor()
