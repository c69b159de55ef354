"""Open-set answers: "Not a supported document" for what the model does not know, everywhere it shows."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.reference_files import SCANS
from classifier import artifact, weights
from classifier.bands import UNSUPPORTED_LABEL, ConfidenceBand
from classifier.head import MLPHead
from classifier.openset import OpenSetRule
from classifier.training.evaluate import evaluate_classifier, format_table
from idclass.models import Prediction
from tests.web import upload


def test_rule_is_the_validation_quantile_and_round_trips():
    rule = OpenSetRule.fit(np.linspace(0, 1, 101), quantile=0.9)
    assert rule.threshold == pytest.approx(0.9) and rule.n_validation == 101
    assert rule.turns_away(0.91) == "unsupported_type" and rule.turns_away(0.9) is None
    assert OpenSetRule.from_dict(json.loads(json.dumps(rule.to_dict()))) == rule


def test_novelty_is_zero_at_a_reference_and_grows_away_from_them():
    torch.manual_seed(0)
    head = MLPHead(8, 3, hidden=16, members=3).eval()
    hidden = head.logits_and_hidden(torch.randn(20, 8))[1]
    head.set_references(hidden[:, :10])
    novelty = head.novelty(hidden)
    assert torch.allclose(novelty[:10], torch.zeros(10), atol=1e-6)
    assert (novelty[10:] >= -1e-6).all() and novelty[10:].max() > 0
    assert torch.equal(head(torch.ones(2, 8)), head.logits_and_hidden(torch.ones(2, 8))[0])


def test_a_trained_model_keeps_references_and_its_threshold(trained_model_dir):
    model = weights.load_model(trained_model_dir)
    rule = model.open_set
    assert rule is not None and rule.n_validation == model.metadata["validation"]["n"]
    h = model.metadata["head"]
    assert model.head.references.shape == (h["members"], h["references"], h["hidden"])
    assert model.head.references.shape[1] >= len(model.classes)


def test_a_model_without_open_set_metadata_names_a_type_for_everything(trained_model_dir, tmp_path):
    """Models trained before open-set answers still load and serve as they did."""
    old = tmp_path / "old"
    model = weights.load_model(trained_model_dir)
    metadata = {k: v for k, v in model.metadata.items() if k != "open_set"}
    metadata["head"] = {k: v for k, v in metadata["head"].items() if k != "references"}
    head = MLPHead(metadata["head"]["in_features"], len(model.classes), metadata["head"]["hidden"],
                   members=metadata["head"]["members"])
    head.load_state_dict({k: v for k, v in model.head.state_dict().items() if k != "references"}, strict=False)
    weights.save_model(weights.TrainedModel(head, metadata), old, trained_model_dir / artifact.MODEL_LOCALISER)
    assert weights.load_model(old).open_set is None


@pytest.fixture
def rejecting(served_model, monkeypatch):
    """The served model, turning every image away."""
    monkeypatch.setattr(served_model, "open_set", OpenSetRule(threshold=-1.0, quantile=0.99, n_validation=1))
    return served_model


@pytest.fixture
def accepting(served_model, monkeypatch):
    """The served model, naming a type for every image (each counts as like a known document)."""
    monkeypatch.setattr(served_model, "open_set", OpenSetRule(threshold=2.0, quantile=0.99, n_validation=1,
                                                              document_like=2.0))
    return served_model


def test_an_unknown_answer_names_no_type_but_keeps_the_closest(rejecting, demo_image):
    answer = rejecting.predict(demo_image[1])
    assert answer.document_type is None and answer.label == UNSUPPORTED_LABEL
    assert answer.band is ConfidenceBand.UNSUPPORTED and answer.novelty is not None
    assert len(answer.top_k) == 3 and all(alt.document_type in rejecting.model.classes for alt in answer.top_k)


def test_a_known_answer_carries_its_novelty(accepting, demo_image):
    answer = accepting.predict(demo_image[1])
    assert answer.document_type in accepting.model.classes and answer.band is not ConfidenceBand.UNSUPPORTED
    assert 0 <= answer.novelty <= 2


@pytest.mark.django_db
def test_api_says_not_supported_with_a_null_type(client, rejecting, demo_image):
    response = client.post("/api/v1/classify", {"image": upload(demo_image[1])})
    assert response.status_code == 201
    body = response.json()
    assert body["document_type"] is None and body["label"] == UNSUPPORTED_LABEL
    assert body["band"] == "unsupported" and body["colour"] == "grey"
    assert len(body["top_k"]) == 3 and all(alt["document_type"] for alt in body["top_k"])
    stored = Prediction.objects.get()
    assert stored.document_type == "" and stored.unsupported and stored.as_dict() == body


@pytest.mark.django_db
def test_page_says_not_supported_and_lists_the_closest_types(client, rejecting, demo_image):
    page = client.post("/", {"image": upload(demo_image[1])}, follow=True).content.decode()
    prediction = Prediction.objects.get()
    assert f'<h1 class="document-type">{UNSUPPORTED_LABEL}</h1>' in page
    assert "Not supported" in page and ConfidenceBand.UNSUPPORTED.hex_colour in page
    assert "Closest supported types" in page and 'class="type-code"' not in page
    for alt in prediction.top_k:
        assert alt["label"] in page


def test_evaluation_measures_the_open_set(accepting, demo_train_dir, tmp_path):
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    for i in range(3):
        Image.effect_noise((300, 200), 40 + 20 * i).convert("RGB").save(unknown / f"noise{i}.png")
    report = evaluate_classifier(accepting, [demo_train_dir], tmp_path / "report", unknown_dirs=[unknown])
    open_set = json.loads((tmp_path / "report" / "report.json").read_text())["open_set"]
    assert open_set == report["open_set"]
    assert 0 <= open_set["auroc"] <= 1 and open_set["n_unknown"] == 3
    assert open_set["unknown_rejected"] == 0 and open_set["known_rejected"] == 0  # this threshold accepts all
    folder = open_set["per_folder"][str(unknown)]
    assert folder["n"] == 3 and folder["reasons"] == {} and 0 <= folder["fpr_at_95_tpr"] <= 1
    assert "open set: AUROC" in format_table(report) and f"{unknown}: 3 images" in format_table(report)


@pytest.mark.skipif(not SCANS.is_dir(), reason=f"no real scans at {SCANS} (IDCLASS_TEST_SCANS)")
def test_the_real_documents_benchmark_answers_every_scan(trained_model_dir, capsys):
    """benchmarks.open_set_real at its smallest (no leave-out training): it keeps running."""
    from benchmarks import open_set_real

    open_set_real.main(["--splits", "0", "--captures", "1", "--model", str(trained_model_dir)])
    out = capsys.readouterr().out
    for row in ("real scans flat", "real scans captured", "natural photos"):
        assert f"  {row} " in out, row
