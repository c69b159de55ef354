"""The model's ONNX graphs answer as its torch modules do: what a server runs is what was trained."""
import numpy as np
import pytest

from benchmarks.reference_files import SCANS
from classifier import artifact
from classifier.predictor import Predictor
from classifier.synth.demo import make_demo_dataset


@pytest.fixture(scope="module")
def photos(tmp_path_factory, demo_train_dir):
    """Demo captures of every type, the flat demo specimens, and the real scans where they are."""
    captures = tmp_path_factory.mktemp("captures")
    make_demo_dataset(captures, per_class=3, seed=23, progress=False)
    scans = sorted(SCANS.glob("*/*.png")) if SCANS.is_dir() else []
    return sorted(captures.glob("*/*.jpg")) + sorted(demo_train_dir.glob("*/*.jpg"))[::2] + scans


def test_a_trained_model_holds_its_graphs_with_their_checksums(trained_model_dir):
    model = artifact.read_model(trained_model_dir)
    assert sorted(model.graphs) == sorted(artifact.GRAPHS)
    for name in artifact.GRAPHS:
        assert artifact.graph_file(trained_model_dir, model, name).stat().st_size > 0


def test_the_graphs_answer_as_the_torch_modules(trained_model_dir, backbone_weights, session_predictor, photos):
    """Same type, band and found outline for every photo, the same scores where the outline is the
    same. The runtimes' localiser heatmaps differ by up to 4e-5, which moves a corner by the 0.1 px
    it is rounded to now and then, and may pick the other of two near-equal candidates for a corner
    (a flat specimen's border against a peak beside it: up to 6 px apart). Here 4 photos in 64,
    their scores within 0.004."""
    modules = Predictor(trained_model_dir, weights=backbone_weights, runtime="torch")
    moved, other_corner = [], []
    for path in photos:
        a, b = session_predictor.predict(path), modules.predict(path)
        assert (a.document_type, a.band, a.localisation.found) == (b.document_type, b.band, b.localisation.found), path
        shift = np.abs(a.localisation.quad - b.localisation.quad).max() if a.localisation.found else 0.0
        if shift > 0:
            (moved if shift < 0.5 else other_corner).append(path)
            assert abs(a.score - b.score) < 0.01, path
            continue
        assert abs(a.score - b.score) < 1e-4 and abs(a.novelty - b.novelty) < 1e-4, path
        assert [alt.document_type for alt in a.top_k] == [alt.document_type for alt in b.top_k], path
    assert len(moved) + len(other_corner) <= len(photos) // 8, (moved, other_corner)
