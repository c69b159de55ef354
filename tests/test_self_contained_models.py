"""A trained model carries the localiser it was trained with: replacing or deleting the shipped
localiser (models/localiser/) changes nothing it answers, and an older model without its own copy
loads only beside the one it needs, with a message that says which."""
import shutil

import pytest
import torch

from classifier import artifact, weights
from classifier.errors import ModelMismatch
from classifier.networks import localiser_network
from classifier.predictor import Predictor

pytestmark = pytest.mark.skipif(not artifact.localiser_id(),
                                reason="the shipped localiser (models/localiser/) is missing")


def other_localiser(folder):
    """A localiser of the shipped shape and config with other (random) weights."""
    config = artifact.read_localiser(artifact.LOCALISER_DIR)
    torch.manual_seed(1)
    return weights.save_localiser(localiser_network(config), config, folder)


@pytest.fixture
def shipped_elsewhere(monkeypatch, tmp_path):
    """Point the shipped localiser's folder at tmp_path/shipped, a copy of the real one, for the test to change."""
    folder = tmp_path / "shipped"
    shutil.copytree(artifact.LOCALISER_DIR, folder)
    monkeypatch.setattr(artifact, "LOCALISER_DIR", folder)
    return folder


def test_training_copies_the_localiser_into_the_model(trained_model_dir):
    own = trained_model_dir / artifact.MODEL_LOCALISER
    assert sorted(p.name for p in own.iterdir()) == [artifact.LOCALISER.metadata, artifact.LOCALISER.weights]
    recorded = artifact.read_model(trained_model_dir).preprocessing.localiser
    assert artifact.localiser_id(own) == recorded


@pytest.mark.parametrize("change", ["replaced", "deleted"])
def test_a_model_answers_the_same_whatever_happens_to_the_shipped_localiser(
        change, shipped_elsewhere, trained_model_dir, backbone_weights, session_predictor, demo_train_dir):
    images = sorted(demo_train_dir.glob("*/*.jpg"))[::4]
    before = session_predictor.predict_batch(images)
    if change == "replaced":
        other_localiser(shipped_elsewhere)
        assert artifact.localiser_id(shipped_elsewhere) != artifact.localiser_id(trained_model_dir / "localiser")
    else:
        shutil.rmtree(shipped_elsewhere)
    after = Predictor(trained_model_dir, weights=backbone_weights).predict_batch(images)
    for a, b in zip(before, after):
        assert (a.document_type, a.band, a.localisation.found) == (b.document_type, b.band, b.localisation.found)
        assert abs(a.score - b.score) < 1e-4


def older_model(trained_model_dir, tmp_path):
    """The trained model as models were before they carried a localiser."""
    folder = shutil.copytree(trained_model_dir, tmp_path / "older")
    shutil.rmtree(folder / artifact.MODEL_LOCALISER)
    return folder


def test_an_older_model_uses_the_shipped_localiser_when_it_is_the_one(shipped_elsewhere, trained_model_dir, tmp_path):
    folder = older_model(trained_model_dir, tmp_path)
    assert artifact.model_localiser_dir(folder, artifact.read_model(folder).preprocessing) == shipped_elsewhere
    assert Predictor(folder).localiser.config == artifact.read_localiser(shipped_elsewhere)


def test_an_older_model_says_which_localiser_it_needs(shipped_elsewhere, trained_model_dir, tmp_path):
    folder = older_model(trained_model_dir, tmp_path)
    other_localiser(shipped_elsewhere)
    needed = artifact.read_model(folder).preprocessing.localiser
    with pytest.raises(ModelMismatch) as refused:
        artifact.model_localiser_dir(folder, artifact.read_model(folder).preprocessing)
    message = refused.value.message
    assert needed in message and artifact.localiser_id(shipped_elsewhere) in message
    assert str(folder / artifact.MODEL_LOCALISER) in message and "retrain" in message


def test_a_model_whose_own_localiser_was_swapped_is_refused(trained_model_dir, tmp_path):
    folder = shutil.copytree(trained_model_dir, tmp_path / "model")
    other_localiser(folder / artifact.MODEL_LOCALISER)
    with pytest.raises(ModelMismatch, match="not the one this model was trained with"):
        artifact.model_localiser_dir(folder, artifact.read_model(folder).preprocessing)


def test_the_model_identity_changes_with_its_localiser(trained_model_dir, tmp_path):
    folder = shutil.copytree(trained_model_dir, tmp_path / "model")
    first = artifact.model_identity(folder)
    other_localiser(folder / artifact.MODEL_LOCALISER)
    assert artifact.model_identity(folder) not in (None, first)
