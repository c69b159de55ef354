"""The predictor localises first: the rectified document when found, else the whole image."""
import csv
import json

import numpy as np
import pytest
from PIL import Image

from classifier.artifact import localiser_id, read_model
from classifier.bands import Calibration, ConfidenceBand
from classifier.localise import Localisation
from classifier.openset import NO_OUTLINE_NOVELTY, OpenSetRule
from classifier.synth.demo import make_demo_dataset
from classifier.training.evaluate import evaluate_classifier
from classifier.training.metrics import polygon_iou
from idclass.models import Prediction
from tests.web import upload

pytestmark = pytest.mark.skipif(not localiser_id(), reason="the shipped localiser (models/localiser/) is missing")


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    out = tmp_path_factory.mktemp("captures")
    make_demo_dataset(out, per_class=1, seed=11, progress=False)
    return out


def test_model_records_the_localiser(trained_model_dir):
    assert read_model(trained_model_dir).metadata["preprocessing"]["localiser"].startswith("sha256:")


def test_found_document_is_classified_rectified(served_model, captures):
    path = sorted(captures.glob("*/*.jpg"))[0]
    loc = served_model.predict(path).localisation
    truth = np.array(json.loads(path.with_suffix(".json").read_text())["quad"])
    assert loc.found and loc.confidence > 0
    assert polygon_iou(loc.quad, truth) > 0.8


def sees(served_model, monkeypatch, localisation: Localisation) -> None:
    """The served model's localiser, answering ``localisation`` for every photo."""
    monkeypatch.setattr(served_model.localiser, "locate", lambda img: localisation)


NOTHING = Localisation(None, 0.05, presence=0.02, no_document=True)  # no outline, no document in view
FILLING = Localisation(None, 0.1, presence=0.99, no_document=False)  # no outline, yet a document in view


def test_no_document_in_view_is_not_a_supported_document(served_model, monkeypatch):
    monkeypatch.setattr(served_model, "open_set", OpenSetRule(1.9, 0.99, 1, document_like=0.0))
    sees(served_model, monkeypatch, NOTHING)
    prediction = served_model.predict(Image.new("RGB", (640, 480), (128, 128, 128)))
    assert not prediction.localisation.found and prediction.localisation.no_document
    assert prediction.document_type is None and prediction.band == ConfidenceBand.UNSUPPORTED
    assert 0 <= prediction.novelty < 1.9  # the head's own judgement, not a made-up maximum
    assert all(alt.document_type in served_model.model.classes for alt in prediction.top_k)


def test_a_photo_like_a_known_document_is_not_turned_away_for_the_localisers_doubt(served_model, monkeypatch,
                                                                                   demo_image):
    monkeypatch.setattr(served_model, "open_set", OpenSetRule(1.9, 0.99, 1, document_like=1.9))
    sees(served_model, monkeypatch, NOTHING)
    assert served_model.predict(demo_image[1]).document_type in served_model.model.classes


def test_without_an_outline_the_whole_photo_is_classified_and_judged_by_its_novelty(served_model, monkeypatch,
                                                                                    demo_image):
    sees(served_model, monkeypatch, FILLING)
    monkeypatch.setattr(served_model, "open_set", OpenSetRule(1.9, 0.99, 1, document_like=0.0))
    prediction = served_model.predict(demo_image[1])
    assert not prediction.localisation.found and prediction.novelty < 1.9
    assert prediction.document_type in served_model.model.classes
    assert prediction.band == served_model.calibration.band(prediction.score)  # not marked low for the outline
    monkeypatch.setattr(served_model, "open_set", OpenSetRule(-1.0, 0.99, 1, document_like=0.0))
    assert served_model.predict(demo_image[1]).band == ConfidenceBand.UNSUPPORTED  # the features decide


def test_a_model_of_the_earlier_kind_takes_no_outline_for_no_document(served_model, monkeypatch):
    monkeypatch.setattr(served_model, "open_set", OpenSetRule(1.9, 0.99, 1, no_outline_rejected=True))
    sees(served_model, monkeypatch, Localisation(None, 0.05))  # its localiser measures no presence
    prediction = served_model.predict(Image.new("RGB", (640, 480), (128, 128, 128)))
    assert prediction.novelty == NO_OUTLINE_NOVELTY and prediction.document_type is None
    assert prediction.band == ConfidenceBand.UNSUPPORTED


def test_without_an_open_set_no_document_falls_back_to_the_whole_image(served_model, monkeypatch):
    # Bands under which every score would be high: without an outline the answer is still low.
    monkeypatch.setattr(served_model, "calibration", Calibration(mean=0.0, std=0.0, n_correct=100))
    monkeypatch.setattr(served_model, "open_set", None)  # a model trained before open-set answers
    sees(served_model, monkeypatch, Localisation(None, 0.05))
    plain = Image.new("RGB", (640, 480), (128, 128, 128))
    prediction = served_model.predict(plain)
    assert not prediction.localisation.found and prediction.localisation.quad is None
    assert prediction.document_type in served_model.model.classes and prediction.novelty is None
    assert prediction.band == ConfidenceBand.LOW  # it may be no document at all


def test_whole_image_when_asked(served_model, captures):
    path = sorted(captures.glob("*/*.jpg"))[0]
    assert served_model.predict_batch([path], localise=False)[0].localisation is None


@pytest.mark.django_db
def test_api_returns_corners_and_page_draws_them(client, served_model, captures, media_root):
    path = sorted(captures.glob("*/*.jpg"))[0]
    answer = client.post("/api/v1/classify", {"image": upload(path.read_bytes())}).json()
    assert answer["localisation"]["found"] and len(answer["localisation"]["quad"]) == 4
    response = client.post("/", {"image": upload(path.read_bytes())}, follow=True)
    assert b"<polygon points=" in response.content
    assert b"found in the photo" in response.content
    assert Prediction.objects.filter(localisation__isnull=False).count() == 2


def test_evaluation_reports_localisation(trained_model_dir, captures, backbone_weights, tmp_path):
    from classifier.predictor import Predictor
    report = evaluate_classifier(Predictor(trained_model_dir, weights=backbone_weights), [captures], tmp_path)
    loc = report["localisation"]
    assert loc["n"] == report["n"]
    assert 0 <= loc["share_not_found"] <= 1 and loc["mean_iou"] > 0.5
    assert {"accuracy_localised", "accuracy_whole_image", "share_iou_0_8"} <= loc.keys()
    with open(tmp_path / "predictions.csv", newline="") as fh:
        ious = [float(row["iou"]) for row in csv.DictReader(fh)]  # every capture has its corner file
    assert len(ious) == loc["n"] and np.mean(ious) == pytest.approx(loc["mean_iou"], abs=1e-3)
