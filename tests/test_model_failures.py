"""A model that cannot be loaded never takes the server down: gunicorn boots, /healthz says
"unavailable" with a reason, uploads get a JSON 503, and the process stays up."""
import json
import shutil

import pytest

from classifier.artifact import HEAD
from benchmarks.server import gunicorn, multipart_image, request
from tests.web import jpeg


def garbage_head(model):
    (model / HEAD.weights).write_bytes(b"not safetensors at all")


def missing_head(model):
    (model / HEAD.weights).unlink()


def metadata_without_head(model):
    metadata = json.loads((model / HEAD.metadata).read_text())
    del metadata["head"]
    (model / HEAD.metadata).write_text(json.dumps(metadata))


BROKEN_MODELS = [garbage_head, missing_head, metadata_without_head]


@pytest.mark.parametrize("damage", BROKEN_MODELS + ["garbage backbone weights"], ids=lambda d: getattr(d, "__name__", d))
def test_a_broken_model_leaves_the_server_up_and_saying_why(tmp_path, trained_model_dir, backbone_weights, damage):
    model = tmp_path / "model"
    shutil.copytree(trained_model_dir, model)
    weights = backbone_weights
    if damage == "garbage backbone weights":
        weights = str(tmp_path / "backbone.pth")
        (tmp_path / "backbone.pth").write_bytes(b"\x80\x02 not a state_dict")
    else:
        damage(model)
    with gunicorn(tmp_path, model, weights, workers=1) as (url, server):
        status, health = request(f"{url}/healthz")
        assert status == 503 and health["status"] == "unavailable"
        assert health["checks"]["model"] == health["reason"] and str(tmp_path) not in json.dumps(health)
        status, answer = request(f"{url}/api/v1/classify", *multipart_image(jpeg(400, 300)))
        assert status == 503 and answer["error"]["code"] == "model_unavailable"
        assert server.poll() is None
