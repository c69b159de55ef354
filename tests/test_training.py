"""Training end to end on a small demo set, evaluated on a differently seeded one."""
import copy
import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from classifier import weights
from classifier.bands import ConfidenceBand
from classifier.head import MLPHead
from classifier.localise import Localisation
from classifier.predictor import Alternative, Classification, Predictor
from classifier.preprocessing import Preprocessing
from classifier.synth.demo import make_demo_dataset
from classifier.training.dataset import scan
from classifier.training.evaluate import PREDICTION_COLUMNS, evaluate_classifier, write_predictions
from classifier.training.errors_sheet import write_errors_sheet
from classifier.training.features import Augmentation, FeatureCache
from classifier.training.train import fit_temperature, train_classifier
from benchmarks.quick_model import quick_config


@pytest.fixture(scope="module")
def demo_test_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-test")
    make_demo_dataset(out, per_class=3, seed=2, flat=True, progress=False)
    return out


def test_trains_and_generalises_to_other_seed(trained_model_dir, demo_test_dir, backbone_weights, tmp_path):
    model = weights.load_model(trained_model_dir)
    meta = model.metadata
    assert len(meta["classes"]) >= 8
    assert meta["backbone"]["name"] == "small"
    assert meta["dataset"]["fingerprint"] and meta["validation"]["n"] > 0
    assert 0 < meta["calibration"]["mean"] <= 1
    report = evaluate_classifier(Predictor(trained_model_dir, weights=backbone_weights), [demo_test_dir], tmp_path)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert {"n", "accuracy", "ece", "per_class", "confusion", "bands"} <= saved.keys()
    assert saved["n"] == 3 * len(meta["classes"])
    assert sum(b["count"] for b in saved["bands"].values()) == saved["n"]
    assert (tmp_path / "confusion.png").stat().st_size > 1000
    assert (tmp_path / "reliability.png").stat().st_size > 1000
    with open(tmp_path / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == saved["n"] and list(rows[0]) == list(PREDICTION_COLUMNS)
    assert {r["path"] for r in rows} == {str(p) for p in demo_test_dir.glob("*/*.jpg")}
    assert all(r["true_type"] == Path(r["path"]).parent.name and r["iou"] for r in rows)  # corner files exist
    supported = saved["supported"]
    assert supported["answered"] + supported["rejected"] == saved["n"]
    right = sum(r["true_type"] == r["document_type"] for r in rows)
    assert right == round(supported["accuracy"] * supported["answered"])
    sheet = saved["errors_sheet"]
    with Image.open(tmp_path / "errors.png") as img:
        assert img.width >= 400 and 30 <= img.height <= 8 * 300  # a title line, at most 8 rows of thumbnails
    assert sheet["shown"] + sheet["left_out"] == sheet["wrong"] + sheet["low_band"]
    if backbone_weights == "random":
        pytest.skip("accuracy needs the pretrained weights: an untrained MobileNetV3's features collapse to "
                    "near zero, and its measured accuracy is chance (0.10)")
    # other people, numbers and dates than in training; photos of documents are measured
    # at full size by the commands in README.md, too slow for a test
    assert report["accuracy"] >= 0.8, report["accuracy"]


def test_one_image_per_type_validates_on_unseen_views(tmp_path, backbone_weights):
    data = tmp_path / "data"
    make_demo_dataset(data, per_class=1, seed=5, flat=True, progress=False)
    result = train_classifier([data], quick_config(backbone_weights, tmp_path / "cache"), out_dir=tmp_path / "m",
                              log=lambda _: None)
    assert any("too few to hold out" in note for note in result.model.metadata["training"]["notes"])
    assert result.model.metadata["validation"]["n"] == len(result.model.classes)  # quick_config: val_views=1


def test_novelty_threshold_counts_more_views_of_the_held_out_images(tmp_path, backbone_weights):
    from classifier.training.train import OPEN_SET_VIEWS
    data = tmp_path / "data"
    make_demo_dataset(data, per_class=2, seed=9, flat=True, progress=False)
    result = train_classifier([data], quick_config(backbone_weights, tmp_path / "cache", min_holdout=2),
                              out_dir=tmp_path / "m", log=lambda _: None)
    meta = result.model.metadata
    assert meta["validation"]["n"] == len(result.model.classes)  # one held-out photo a type, as it is
    assert meta["open_set"]["n_validation"] == OPEN_SET_VIEWS * len(result.model.classes)


def test_feature_cache_makes_retraining_skip_the_backbone(tmp_path, backbone_weights, monkeypatch):
    data = tmp_path / "data"
    make_demo_dataset(data, per_class=2, seed=6, flat=True, progress=False)
    config = quick_config(backbone_weights, tmp_path / "cache")
    first = train_classifier([data], config, out_dir=tmp_path / "m1", log=lambda _: None)

    def no_backbone(*args, **kwargs):
        raise AssertionError("features should have come from the cache")

    monkeypatch.setattr(FeatureCache, "_compute", no_backbone)
    second = train_classifier([data], config, out_dir=tmp_path / "m2", log=lambda _: None)
    assert second.model.classes == first.model.classes


def test_cache_key_changes_with_weights_and_augmentation(tmp_path):
    from classifier.artifact import BackboneSpec
    prep = Preprocessing()
    a = FeatureCache(tmp_path, BackboneSpec("small", "sha256:aa"), prep, Augmentation(seed=0)).dir
    assert a != FeatureCache(tmp_path, BackboneSpec("small", "sha256:bb"), prep, Augmentation(seed=0)).dir
    assert a != FeatureCache(tmp_path, BackboneSpec("small", "sha256:aa"), prep, Augmentation(seed=1)).dir
    assert a != FeatureCache(tmp_path, BackboneSpec("small", "sha256:aa"), Preprocessing(resize="letterbox"),
                             Augmentation(seed=0)).dir
    assert a != FeatureCache(tmp_path, BackboneSpec("small", "sha256:aa"), prep, Augmentation(seed=0), turn=1).dir
    assert a == FeatureCache(tmp_path, BackboneSpec("small", "sha256:aa"), Preprocessing(turns=1),
                             Augmentation(seed=0)).dir  # the training views do not depend on the turns answered


def test_the_answer_is_the_mean_over_the_views_quarter_turns(session_predictor, doc):
    """A photo turned a quarter gets the same answer: its four turns are the same four inputs (to the
    resampling's rounding). One turn alone answers each a long way apart."""
    assert session_predictor.prep.turns == 4
    one_turn = copy.copy(session_predictor)
    one_turn.prep = replace(session_predictor.prep, turns=1)
    photos = [doc.resize((224, 224)), doc.crop((100, 0, 500, 400)).resize((224, 224))]

    def apart(predictor, img) -> float:
        """How far the answers to ``img`` and to it turned a quarter lie apart: scores and novelty."""
        turned = img.transpose(Image.Transpose.ROTATE_90)
        a, b = (predictor.predict_batch([i], localise=False)[0] for i in (img, turned))
        scores_a, scores_b = ({t.document_type: t.score for t in answer.top_k} for answer in (a, b))
        return max([abs(scores_a.get(t, 0.0) - scores_b.get(t, 0.0)) for t in scores_a | scores_b]
                   + [abs(a.novelty - b.novelty)])

    assert max(apart(session_predictor, img) for img in photos) < 0.01
    assert max(apart(one_turn, img) for img in photos) > 0.05


def test_validation_is_scored_on_the_answers_as_served():
    """Given the mean over the turns, the metrics are of that mean: the list of document types shows
    each type's accuracy, and a type with no validation view has none."""
    from classifier.training.train import validation_metrics
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.1, 0.8, 0.1]])
    metrics = validation_metrics(probs, np.array([0, 0, 1]), 3)
    assert metrics["accuracy"] == pytest.approx(2 / 3) and metrics["n"] == 3
    assert metrics["loss"] == pytest.approx(-np.log([0.7, 0.4, 0.8]).mean())
    assert metrics["per_class"] == [0.5, 1.0, None]


def test_cross_validation_reports_mean_and_std(tmp_path, backbone_weights, monkeypatch):
    data = tmp_path / "data"
    make_demo_dataset(data, per_class=3, seed=7, flat=True, progress=False)
    config = quick_config(backbone_weights, tmp_path / "cache", folds=3)
    asked, features = set(), FeatureCache.features

    def recorded(cache, extractor, items):
        asked.update((cache.turn, cache.augmentation, sha) for _, sha, _ in items)
        return features(cache, extractor, items)

    monkeypatch.setattr(FeatureCache, "features", recorded)
    lines = []
    result = train_classifier([data], config, out_dir=tmp_path / "m", log=lines.append)
    cv = weights.load_model(result.model_dir).metadata["cross_validation"]
    assert cv["folds"] == 3 and len(cv["accuracy"]) == 3
    assert cv["accuracy_std"] == pytest.approx(np.std(cv["accuracy"]))
    assert any(line.startswith("cross-validation: accuracy") for line in lines)
    # each held-out image is answered as served: its own view at every turn
    training_views = Augmentation(config.seed, config.capture_probability, ())
    assert {(turn, training_views, sha) for turn in range(config.preprocessing.turns)
            for sha in (img.sha256 for img in scan([data]).images)} <= asked


def test_display_names_from_labels_json_and_midv_defaults(tmp_path):
    from PIL import Image

    from classifier.training.dataset import scan
    for name in ("lva_passport", "zz_permit"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (64, 64)).save(tmp_path / name / "a.png")
    (tmp_path / "labels.json").write_text(json.dumps({"zz_permit": "Residence permit of Zed"}))
    data = scan([tmp_path])
    assert data.display_names == {"lva_passport": "Passport of Latvia", "zz_permit": "Residence permit of Zed"}


def test_the_heads_answer_is_its_members_mean_probability():
    torch.manual_seed(0)
    head = MLPHead(6, 4, hidden=8, members=3).eval()
    x = torch.randn(5, 6)
    members = torch.softmax(head.member_logits_and_hidden(x)[0], -1)
    assert not torch.allclose(members[0], members[1])  # different starts
    assert torch.allclose(torch.softmax(head(x), -1), members.mean(0), atol=1e-6)


def test_a_head_saved_before_members_answers_as_it_did():
    """Models trained before the members kept one nn.Sequential MLP: it loads as a head of one member."""
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Dropout(), torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Dropout(),
                              torch.nn.Linear(8, 4)).eval()
    references = torch.randn(5, 8)
    old = {f"net.{k}": v for k, v in mlp.state_dict().items()} | {
        "feature_mean": torch.zeros(6), "feature_std": torch.ones(6), "references": references}
    head = MLPHead(6, 4, hidden=8, references=5).eval()
    head.load_state_dict(old)
    x = torch.randn(7, 6)
    assert torch.allclose(torch.softmax(head(x), -1), torch.softmax(mlp(x), -1), atol=1e-6)
    hidden = mlp[:3](x)
    expected = 1 - (torch.nn.functional.normalize(hidden, dim=1)
                    @ torch.nn.functional.normalize(references, dim=1).T).max(1).values
    assert torch.allclose(head.novelty(head.logits_and_hidden(x)[1]), expected.clamp(0, 2), atol=1e-6)


def test_temperature_sharpens_only_when_validation_shows_how_far():
    head = MLPHead(2, 2, hidden=4, dropout=0.0).eval()
    with torch.no_grad():  # logits (x0 - x1, x1 - x0): class 0 wherever x0 > x1
        head.hidden_weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0], [0, 0], [0, 0]]).T[None])
        head.hidden_bias.zero_()
        head.out_weight.copy_(torch.tensor([[1.0, -1.0, 0, 0], [-1.0, 1.0, 0, 0]]).T[None])
        head.out_bias.zero_()
    x = torch.tensor([[0.2, 0.0], [0.0, 0.2], [0.3, 0.0], [0.0, 0.1]])
    # All right: lowering T lowers the loss without end, so nothing is fitted.
    assert fit_temperature(head, x, torch.tensor([0, 1, 0, 1])) == 1.0
    # One wrong: the loss has a minimum, at a finite T.
    x = torch.cat([x, x[:1]])
    t = fit_temperature(head, x, torch.tensor([0, 1, 0, 1, 1]))
    assert 0.05 < t < 20 and t != 1.0


def answer(document_type: str, score: float, band: ConfidenceBand, quad=None) -> Classification:
    """An answer as the predictor gives it, for a 400x300 image, without running a model."""
    return Classification(document_type=document_type, label=document_type, score=score, band=band,
                          top_k=[Alternative(document_type, document_type, score)], model_version="test", width=400,
                          height=300, image_format="PNG",
                          localisation=Localisation(quad, 0.9 if quad is not None else 0.0))


def test_predictions_csv_fills_iou_only_where_corners_are_known(tmp_path):
    from classifier.training.dataset import LabelledImage
    quad = np.array([[10, 10], [390, 10], [390, 290], [10, 290]], float)
    images = [LabelledImage(tmp_path / "a" / "1.jpg", "a", ""), LabelledImage(tmp_path / "b" / "2.jpg", "b", "")]
    data = type("Data", (), {"images": images})
    answers = [answer("a", 0.9, ConfidenceBand.HIGH, quad), answer("a", 0.5, ConfidenceBand.LOW)]
    write_predictions(tmp_path / "p.csv", data, answers, [quad, None])
    with open(tmp_path / "p.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["iou"] for r in rows] == ["1.0000", ""]
    assert [r["outline_found"] for r in rows] == ["true", "false"]
    assert json.loads(rows[0]["corners"]) == quad.tolist() and rows[1]["corners"] == ""


def test_errors_sheet_shows_at_most_the_limit_and_says_when_there_are_none(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (400, 300), (90, 120, 160)).save(path)
    quad = np.array([[40, 30], [360, 30], [360, 270], [40, 270]], float)
    answers = [answer("b", 0.8, ConfidenceBand.HIGH, quad)] * 5 + [answer("a", 0.3, ConfidenceBand.LOW)] * 2
    counts = write_errors_sheet(tmp_path / "e.png", [path] * 7, ["a"] * 7, answers, limit=4)
    assert counts == {"wrong": 5, "low_band": 2, "shown": 4, "left_out": 3}
    with Image.open(tmp_path / "e.png") as sheet:
        assert sheet.width > 4 * 200 and sheet.height > 200
    right = [answer("a", 0.99, ConfidenceBand.HIGH)] * 3
    assert write_errors_sheet(tmp_path / "none.png", [path] * 3, ["a"] * 3, right)["shown"] == 0
    with Image.open(tmp_path / "none.png") as sheet:
        assert sheet.width <= 600 and sheet.height < 100  # only the line that says so


def test_outlier_images_are_made_once_per_seed(tmp_path):
    from classifier.training.outliers import outlier_images
    from classifier.synth.augment import PHOTO_SIZES
    paths = outlier_images(tmp_path, types=2, views=2, seed=3)
    assert len(paths) == 4 and all(p.is_file() for p in paths)
    # captures like the operator's photos, never a crisp flat render (the head took crispness for "unknown")
    assert all(Image.open(p).size in PHOTO_SIZES for p in paths)
    stamps = [p.stat().st_mtime_ns for p in paths]
    assert outlier_images(tmp_path, types=2, views=2, seed=3) == paths
    assert [p.stat().st_mtime_ns for p in paths] == stamps  # not made again
    assert outlier_images(tmp_path, types=2, views=2, seed=4)[0].parent != paths[0].parent


def test_few_specimen_types_validate_on_captures_training_never_draws():
    from classifier.training.train import validation_captures
    training = Augmentation(seed=0, capture_probability=0.6)
    validation = validation_captures(training)
    assert validation.capture_probability == 1.0 and validation.seed != training.seed
    assert validation.key() != training.key()


def test_a_captured_document_is_cut_out_flat_in_scanner_colours():
    """Training shows the head each captured photo's document also as a scan shows it: cut out,
    paper white and ink black whatever the light of the photo, as view 1 (``Augmentation.view``)."""
    from classifier.synth.demo import render_document
    from classifier.training.features import cut_out

    localiser = weights.load_localiser()
    rng = np.random.default_rng(5)
    document = np.asarray(render_document("vel_passport", rng).resize((320, 226)), np.float32)
    photo = np.empty((480, 640, 3), np.float32)
    photo[:] = np.asarray(rng.integers(40, 90, (1, 1, 3)), np.float32)  # a plain dark desk
    photo[120:346, 160:480] = document
    photo = Image.fromarray(np.clip(photo * (0.55, 0.45, 0.75) + (30, 10, 40), 0, 255).astype(np.uint8))  # dim, purple
    flat = cut_out(photo, localiser)
    assert flat is not None and abs(flat.width / flat.height - 320 / 226) < 0.1
    low, high = np.percentile(np.asarray(flat).reshape(-1, 3), [1, 99.5], axis=0)
    assert (high >= 250).all() and (low <= 10).all(), (low, high)  # the cast is gone, the range is full
    augmentation = Augmentation(seed=0)
    assert augmentation.view(photo, "ab" * 32, 0, flat) is photo
    assert augmentation.view(photo, "ab" * 32, 1, flat) is flat
    assert augmentation.view(photo, "ab" * 32, 1, None) is not photo  # a scan: no document to cut out


def test_references_are_the_training_images_and_their_documents_first():
    from classifier.openset import REFERENCES_PER_CLASS
    from classifier.training.train import Split, fit_open_set
    rng = np.random.default_rng(0)
    per_type = 2 * REFERENCES_PER_CLASS
    x = rng.normal(size=(2 * per_type, 16)).astype(np.float32)
    y, view = np.repeat([0, 1], per_type), np.tile(np.arange(per_type) % 8, 2)  # views 0 and 1: a quarter
    head = MLPHead(16, 2, hidden=8, dropout=0.0, members=2).eval()
    head.set_feature_stats(torch.from_numpy(x))
    fit_open_set(head, Split(x, y, x[:4], y[:4], [], view, x), seed=0, localiser=None)
    assert head.references.shape == (2, 2 * REFERENCES_PER_CLASS, 8)
    with torch.no_grad():
        plain = head.logits_and_hidden(torch.from_numpy(x[view <= 1]))[1]
    distance = (plain[:, :, None] - head.references[:, None]).abs().amax(-1).min(-1).values
    assert (distance < 1e-6).all()  # every plain view is a reference
