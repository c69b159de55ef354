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
    """The same outline, and from it the same answer: type, band, scores. The runtimes' localiser
    heatmaps differ by up to 4e-5, which now and then moves a corner by the step it is rounded to,
    or picks the other of two near-equal candidates for a corner (a flat specimen's border against
    a peak beside it: up to 6 px apart); the answer then comes from a slightly other cut-out."""
    modules = Predictor(trained_model_dir, weights=backbone_weights, runtime="torch")
    other_outline = []
    for path in photos:
        a, b = session_predictor.predict(path), modules.predict(path)
        assert a.localisation.found == b.localisation.found, path
        if a.localisation.found and np.abs(a.localisation.quad - b.localisation.quad).max() > 0:
            other_outline.append(path)
            assert abs(a.score - b.score) < 0.05, path
            continue
        assert (a.document_type, a.band) == (b.document_type, b.band), path
        assert abs(a.score - b.score) < 1e-4 and abs(a.novelty - b.novelty) < 1e-4, path
        assert [alt.document_type for alt in a.top_k] == [alt.document_type for alt in b.top_k], path
    assert len(other_outline) <= len(photos) // 8, other_outline
