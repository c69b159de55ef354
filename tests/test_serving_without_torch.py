"""Serving runs the model's ONNX graphs on ONNX Runtime: a web worker never imports torch, and the
serving path works where torch cannot be imported at all (a serving install has none)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.server import ROOT, gunicorn, multipart_image, request, server_env, worker_pids
from tests.web import jpeg


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_gunicorn_worker_answers_without_loading_torch(tmp_path, trained_model_dir, backbone_weights):
    with gunicorn(tmp_path, trained_model_dir, backbone_weights, workers=1) as (url, server):
        status, answer = request(f"{url}/api/v1/classify", *multipart_image(jpeg(640, 480)))
        assert status == 201 and answer["model_version"]
        [worker] = worker_pids(server)
        libraries = {line.split()[-1] for line in Path(f"/proc/{worker}/maps").read_text().splitlines()
                     if len(line.split()) >= 6}
        assert any("onnxruntime" in lib for lib in libraries)  # the check can see a library that is there
        assert not [lib for lib in libraries if "/torch/" in lib or "torchvision" in lib]


SERVE_WITHOUT_TORCH = """
import json, sys
for name in ("torch", "torchvision", "safetensors.torch"):
    sys.modules[name] = None  # any import of them fails, as in an install without them
import django
django.setup()
from classifier.predictor import Predictor
answer = Predictor(sys.argv[1]).predict(sys.argv[2])
print(json.dumps({"type": answer.document_type, "band": answer.band.value}))
"""


def test_the_serving_path_runs_where_torch_cannot_be_imported(tmp_path, trained_model_dir, demo_image):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(demo_image[1])
    env = server_env(tmp_path, trained_model_dir, "")
    done = subprocess.run([sys.executable, "-c", SERVE_WITHOUT_TORCH, str(trained_model_dir), str(photo)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["band"] in ("high", "medium", "low", "unsupported")
