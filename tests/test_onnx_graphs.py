"""The model's ONNX graphs compute what its torch modules do: what a server runs is what was trained."""
import numpy as np
import pytest
import torch

from benchmarks.reference_files import SCANS
from classifier import artifact, weights
from classifier.export import HeadGraph
from classifier.graphs import open_session
from classifier.images import load_image
from classifier.localise import to_input
from classifier.networks import TorchForward
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


def test_each_graph_computes_what_its_torch_module_does(trained_model_dir, session_predictor, photos):
    """The localiser's heatmap logits and the head's logits and novelty, from the same inputs."""
    model = artifact.read_model(trained_model_dir)
    localiser, config = weights.load_localiser_network(artifact.model_localiser_dir(trained_model_dir,
                                                                                     model.preprocessing))
    images = [load_image(path, min_size=448) for path in photos]
    rows = np.stack([to_input(img, config["image_size"], config["pad"]) for img in images])
    graph = open_session(artifact.graph_file(trained_model_dir, model, "localiser"), None)
    heatmaps = graph.run(None, {"image": rows})[0]
    np.testing.assert_allclose(heatmaps, TorchForward(localiser)(rows), atol=1e-3)
    features = session_predictor.graphs.features(
        np.stack([session_predictor.prep.model_input(img) for img in images]))
    with torch.inference_mode():
        logits, novelty = (a.numpy() for a in HeadGraph(weights.load_model(trained_model_dir).head)(
            torch.from_numpy(features)))
    graph_logits, graph_novelty = session_predictor.graphs.head(features)
    np.testing.assert_allclose(graph_logits, logits, atol=1e-4)
    np.testing.assert_allclose(graph_novelty, novelty, atol=1e-4)


def test_the_backbone_in_torch_gives_the_answers_the_graphs_give(trained_model_dir, backbone_weights,
                                                                  session_predictor, photos):
    """The torch path (a GPU's) runs the localiser and the head as their graphs too: the same outline
    for every photo, and from it the same answer: type, band, scores and novelty within 1e-4."""
    modules = Predictor(trained_model_dir, weights=backbone_weights, runtime="torch")
    for path in photos:
        a, b = session_predictor.predict(path), modules.predict(path)
        found = a.localisation.found
        assert b.localisation.found == found and (not found or np.array_equal(a.localisation.quad,
                                                                              b.localisation.quad)), path
        assert (a.document_type, a.band, a.reason) == (b.document_type, b.band, b.reason), path
        assert abs(a.score - b.score) < 1e-4 and abs(a.novelty - b.novelty) < 1e-4, path
        assert [alt.document_type for alt in a.top_k] == [alt.document_type for alt in b.top_k], path
