"""A model that cannot be loaded never takes the server down: gunicorn boots, /healthz says
"unavailable" with a reason, uploads get a JSON 503, and the process stays up."""
import json
import shutil

import pytest

from classifier.artifact import GRAPHS, HEAD
from benchmarks.server import gunicorn, multipart_image, request
from tests.web import jpeg


def garbage_backbone_graph(model):
    (model / GRAPHS["backbone"]).write_bytes(b"not an ONNX graph at all")


def missing_head_graph(model):
    (model / GRAPHS["head"]).unlink()


def metadata_without_head(model):
    metadata = json.loads((model / HEAD.metadata).read_text())
    del metadata["head"]
    (model / HEAD.metadata).write_text(json.dumps(metadata))


def metadata_without_graphs(model):
    """A model trained before idclass served ONNX graphs, not exported since."""
    metadata = json.loads((model / HEAD.metadata).read_text())
    del metadata["graphs"]
    (model / HEAD.metadata).write_text(json.dumps(metadata))


BROKEN_MODELS = [garbage_backbone_graph, missing_head_graph, metadata_without_head, metadata_without_graphs]


@pytest.mark.parametrize("damage", BROKEN_MODELS, ids=lambda d: d.__name__)
def test_a_broken_model_leaves_the_server_up_and_saying_why(tmp_path, trained_model_dir, backbone_weights, damage):
    model = tmp_path / "model"
    shutil.copytree(trained_model_dir, model)
    damage(model)
    with gunicorn(tmp_path, model, backbone_weights, workers=1) as (url, server):
        status, health = request(f"{url}/healthz")
        assert status == 503 and health["status"] == "unavailable"
        assert health["checks"]["model"] == health["reason"] and str(tmp_path) not in json.dumps(health)
        status, answer = request(f"{url}/api/v1/classify", *multipart_image(jpeg(400, 300)))
        assert status == 503 and answer["error"]["code"] == "model_unavailable"
        assert server.poll() is None


def test_serving_on_the_cpu_needs_no_backbone_weights(tmp_path, trained_model_dir):
    """The backbone graph holds its weights: IDCLASS_BACKBONE_WEIGHTS may name a damaged file, or none."""
    (tmp_path / "backbone.pth").write_bytes(b"\x80\x02 not a state_dict")
    with gunicorn(tmp_path, trained_model_dir, str(tmp_path / "backbone.pth"), workers=1) as (url, server):
        status, answer = request(f"{url}/api/v1/classify", *multipart_image(jpeg(400, 300)))
        assert status == 201 and answer["model_version"]
