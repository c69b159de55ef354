"""Saving and loading models (head and localiser), and refusing one that is damaged,
of another schema, or paired with the wrong backbone."""
import json

import pytest
import torch

from classifier import artifact, weights
from classifier.artifact import BackboneSpec
from classifier.backbone import check_compatible
from classifier.bands import Calibration
from classifier.errors import ClassifierError, ModelMismatch, ModelNotFound, ModelUnreadable
from classifier.export import export_model
from classifier.head import MLPHead
from classifier.predictor import Predictor
from classifier.preprocessing import Preprocessing

SMALL_FEATURES = 576


def small_model(weights_id="random") -> weights.TrainedModel:
    torch.manual_seed(0)
    head = MLPHead(SMALL_FEATURES, 3, hidden=32)
    head.set_feature_stats(torch.randn(20, SMALL_FEATURES))
    metadata = {
        "schema_version": artifact.HEAD.schema_version, "version": "test-1", "created": "2026-01-01T00:00:00+00:00",
        "classes": ["a_id", "b_passport", "c_id"],
        "display_names": {"a_id": "ID Card of A", "b_passport": "Passport of B", "c_id": "ID Card of C"},
        "backbone": {"name": "small", "weights_id": weights_id},
        "preprocessing": {"size": 224, "resize": "squash"},
        "head": {"in_features": SMALL_FEATURES, "hidden": 32, "dropout": 0.3},
        "temperature": 1.5, "calibration": Calibration(0.9, 0.05, 40).to_dict(),
    }
    return weights.TrainedModel(head.eval(), metadata)


def test_save_load_round_trip(tmp_path):
    model = small_model()
    weights.save_model(model, tmp_path / "m")
    loaded = weights.load_model(tmp_path / "m")
    assert loaded.metadata == json.loads(json.dumps(model.metadata))
    x = torch.randn(4, SMALL_FEATURES)
    with torch.no_grad():
        assert torch.equal(model.head(x), loaded.head(x))
    assert loaded.calibration == Calibration(0.9, 0.05, 40)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["head.safetensors", "metadata.json"]


def test_make_current_points_at_newest(tmp_path):
    for name in ("v1", "v2"):
        weights.save_model(small_model(), tmp_path / name)
        artifact.make_current(tmp_path / name)
    assert (tmp_path / "current").resolve() == (tmp_path / "v2").resolve()
    assert weights.load_model(tmp_path / "current").version == "test-1"


def test_missing_model_says_how_to_train(tmp_path):
    with pytest.raises(ModelNotFound, match="train_classifier"):
        weights.load_model(tmp_path)


def rewrite_metadata(folder, change, name="metadata.json"):
    path = folder / name
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def test_wrong_schema_version_is_refused(tmp_path):
    weights.save_model(small_model(), tmp_path)
    rewrite_metadata(tmp_path, lambda m: m | {"schema_version": 99})
    with pytest.raises(ModelMismatch, match="schema version 99"):
        weights.load_model(tmp_path)


@pytest.mark.parametrize("damage", [
    pytest.param(lambda d: (d / "head.safetensors").write_bytes(b"not safetensors at all"), id="garbage-weights"),
    pytest.param(lambda d: (d / "head.safetensors").unlink(), id="missing-weights"),
    pytest.param(lambda d: (d / "metadata.json").write_text("{ not json"), id="garbage-metadata"),
    pytest.param(lambda d: rewrite_metadata(d, lambda m: {k: v for k, v in m.items() if k != "head"}),
                 id="metadata-without-head"),
    pytest.param(lambda d: rewrite_metadata(d, lambda m: m | {"head": m["head"] | {"hidden": 64}}),
                 id="weights-of-another-shape"),
    pytest.param(lambda d: rewrite_metadata(d, lambda m: m | {"preprocessing": {"colour": "blue"}}),
                 id="unknown-preprocessing"),
])
def test_damaged_model_is_unreadable_not_a_crash(tmp_path, damage):
    weights.save_model(small_model(), tmp_path)
    damage(tmp_path)
    with pytest.raises(ModelUnreadable, match="Retrain the model"):
        weights.load_model(tmp_path)


def test_localiser_follows_the_same_format(tmp_path):
    net, config = weights.load_localiser_network()
    weights.save_localiser(net, config, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["localiser.json", "localiser.safetensors"]
    assert json.loads((tmp_path / "localiser.json").read_text())["schema_version"] == artifact.LOCALISER.schema_version
    assert artifact.localiser_id(tmp_path) == artifact.localiser_id()
    reloaded, _ = weights.load_localiser_network(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), reloaded.state_dict().values()))
    rewrite_metadata(tmp_path, lambda m: m | {"schema_version": 0}, "localiser.json")
    with pytest.raises(ModelMismatch, match="schema version 0"):
        weights.load_localiser(tmp_path)
    with pytest.raises(ModelNotFound, match="train_localiser"):
        weights.load_localiser(tmp_path / "nothing-here")


def test_every_model_failure_is_one_family():
    for kind in (ModelNotFound, ModelUnreadable, ModelMismatch):
        assert issubclass(kind, ClassifierError)


def test_check_compatible():
    check_compatible(BackboneSpec("small", "sha256:ab"), BackboneSpec("small", "sha256:ab"))
    with pytest.raises(ModelMismatch, match="trained on backbone small"):
        check_compatible(BackboneSpec("small", "sha256:ab"), BackboneSpec("small", "sha256:cd"))
    with pytest.raises(ModelMismatch):
        check_compatible(BackboneSpec("large", "random"), BackboneSpec("small", "random"))


def test_exporting_refuses_a_head_trained_on_other_weights(tmp_path):
    from torchvision.models import mobilenet_v3_small
    other = tmp_path / "other.pth"
    torch.save(mobilenet_v3_small().state_dict(), other)
    weights.save_model(small_model(weights_id="sha256:" + "0" * 64), tmp_path / "m")
    with pytest.raises(ModelMismatch, match="was trained on backbone small"):
        export_model(tmp_path / "m", other)


def test_a_model_without_graphs_says_how_to_export_them(tmp_path):
    weights.save_model(small_model(), tmp_path / "m")
    with pytest.raises(ModelMismatch, match="export_model"):
        Predictor(tmp_path / "m")
    assert sorted(export_model(tmp_path / "m", None)) == ["backbone", "head"]  # it does not localise
    assert sorted(artifact.read_model(tmp_path / "m").graphs) == ["backbone", "head"]


def test_a_damaged_graph_is_refused(tmp_path):
    weights.save_model(small_model(), tmp_path / "m")
    export_model(tmp_path / "m", None)
    (tmp_path / "m" / artifact.GRAPHS["head"]).write_bytes(b"not a graph")
    with pytest.raises(ModelUnreadable, match="export_model"):
        Predictor(tmp_path / "m")


def test_predictor_uses_saved_model(tmp_path):
    from PIL import Image
    weights.save_model(small_model(), tmp_path / "m")
    export_model(tmp_path / "m", None)
    prediction = Predictor(tmp_path / "m").predict(Image.new("RGB", (300, 200), (200, 180, 160)))
    assert prediction.document_type in ("a_id", "b_passport", "c_id")
    assert prediction.label.startswith(("ID Card of", "Passport of"))
    assert [a.document_type for a in prediction.top_k][0] == prediction.document_type
    assert sorted(a.document_type for a in prediction.top_k) == ["a_id", "b_passport", "c_id"]
    assert (prediction.width, prediction.height) == (300, 200)
    assert prediction.image_format is None and prediction.localisation is None  # a decoded image; no localiser


def test_model_identity_changes_with_the_model_current_points_at(tmp_path):
    assert artifact.model_identity(tmp_path / "current") is None
    weights.save_model(small_model(), tmp_path / "v1")
    artifact.make_current(tmp_path / "v1")
    first = artifact.model_identity(tmp_path / "current")
    assert first is not None and first == artifact.model_identity(tmp_path / "current")
    weights.save_model(small_model(), tmp_path / "v2")
    artifact.make_current(tmp_path / "v2")
    second = artifact.model_identity(tmp_path / "current")
    assert second not in (None, first)
    weights.save_model(small_model(), tmp_path / "v2")  # retrained in place: the same folder, new metadata
    assert artifact.model_identity(tmp_path / "current") not in (None, second)


def test_a_model_keeps_the_detail_its_views_were_trained_with(tmp_path):
    """A model written before views lost their finest detail sees them as it did then."""
    model = small_model()
    weights.save_model(model, tmp_path / "older")
    assert artifact.read_model(tmp_path / "older").preprocessing.detail is None
    model.metadata["preprocessing"]["detail"] = 112
    weights.save_model(model, tmp_path / "newer")
    assert artifact.read_model(tmp_path / "newer").preprocessing.detail == 112


def test_a_model_trained_before_turns_answers_from_one():
    """A model written before answers were averaged over the view's quarter turns answers from one view."""
    assert Preprocessing.from_metadata({"size": 224}).turns == 1
    assert Preprocessing.from_metadata({"size": 224, "turns": 4}).turns == 4
