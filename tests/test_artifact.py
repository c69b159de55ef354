"""Saving and loading a model, and refusing a head paired with the wrong backbone."""
import json

import pytest
import torch

from classifier import artifact
from classifier.backbone import BackboneMismatch, BackboneSpec, check_compatible, feature_size
from classifier.bands import Calibration
from classifier.head import MLPHead
from classifier.predictor import Predictor


def small_model(weights_id="random") -> artifact.TrainedModel:
    torch.manual_seed(0)
    head = MLPHead(feature_size("small"), 3, hidden=32)
    head.set_feature_stats(torch.randn(20, feature_size("small")))
    metadata = {
        "schema_version": artifact.SCHEMA_VERSION, "version": "test-1", "created": "2026-01-01T00:00:00+00:00",
        "classes": ["a_id", "b_passport", "c_id"],
        "display_names": {"a_id": "ID Card of A", "b_passport": "Passport of B", "c_id": "ID Card of C"},
        "backbone": {"name": "small", "weights_id": weights_id},
        "preprocessing": {"size": 224, "resize": "squash"},
        "head": {"in_features": feature_size("small"), "hidden": 32, "dropout": 0.3},
        "temperature": 1.5, "calibration": Calibration(0.9, 0.05, 40).to_dict(),
    }
    return artifact.TrainedModel(head.eval(), metadata)


def test_save_load_round_trip(tmp_path):
    model = small_model()
    artifact.save(model, tmp_path / "m")
    loaded = artifact.load(tmp_path / "m")
    assert loaded.metadata == json.loads(json.dumps(model.metadata))
    x = torch.randn(4, feature_size("small"))
    with torch.no_grad():
        assert torch.equal(model.head(x), loaded.head(x))
    assert loaded.calibration == Calibration(0.9, 0.05, 40)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["head.safetensors", "metadata.json"]


def test_make_current_points_at_newest(tmp_path):
    for name in ("v1", "v2"):
        artifact.save(small_model(), tmp_path / name)
        artifact.make_current(tmp_path / name)
    assert (tmp_path / "current").resolve() == (tmp_path / "v2").resolve()
    assert artifact.load(tmp_path / "current").version == "test-1"


def test_missing_model_says_how_to_train(tmp_path):
    with pytest.raises(artifact.ModelNotFound, match="train_classifier"):
        artifact.load(tmp_path)


def test_wrong_schema_version_is_refused(tmp_path):
    model = small_model()
    model.metadata["schema_version"] = 99
    artifact.save(model, tmp_path)
    with pytest.raises(ValueError, match="schema version"):
        artifact.load(tmp_path)


def test_check_compatible():
    check_compatible(BackboneSpec("small", "sha256:ab"), BackboneSpec("small", "sha256:ab"))
    with pytest.raises(BackboneMismatch, match="trained on backbone small"):
        check_compatible(BackboneSpec("small", "sha256:ab"), BackboneSpec("small", "sha256:cd"))
    with pytest.raises(BackboneMismatch):
        check_compatible(BackboneSpec("large", "random"), BackboneSpec("small", "random"))


def test_predictor_refuses_head_trained_on_other_weights(tmp_path):
    from torchvision.models import mobilenet_v3_small
    other = tmp_path / "other.pth"
    torch.save(mobilenet_v3_small().state_dict(), other)
    artifact.save(small_model(weights_id="sha256:" + "0" * 64), tmp_path / "m")
    with pytest.raises(BackboneMismatch, match="was trained on backbone small"):
        Predictor(tmp_path / "m", weights=other)


def test_predictor_uses_saved_model(tmp_path):
    from PIL import Image
    artifact.save(small_model(), tmp_path / "m")
    prediction = Predictor(tmp_path / "m").predict(Image.new("RGB", (300, 200), (200, 180, 160)))
    assert prediction.document_type in ("a_id", "b_passport", "c_id")
    assert prediction.label.startswith(("ID Card of", "Passport of"))
    assert [a.document_type for a in prediction.top_k][0] == prediction.document_type
    assert sorted(a.document_type for a in prediction.top_k) == ["a_id", "b_passport", "c_id"]
    assert (prediction.width, prediction.height) == (300, 200)
    assert prediction.as_dict()["colour"] == prediction.band.colour
