"""--device auto|cpu|cuda: the backbone on a CUDA GPU when present, the same answers as on the CPU."""
import numpy as np
import pytest
import torch

from classifier.device import describe, resolve_device
from classifier.predictor import Predictor
from classifier.errors import DeviceUnavailable
from classifier.training.train import train_classifier
from benchmarks.quick_model import quick_config

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


def test_auto_and_cpu_resolve_to_what_is_there():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert describe("cpu", 2) == "cpu (2 threads)"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_asking_for_a_missing_gpu_is_a_clear_error():
    with pytest.raises(DeviceUnavailable, match="--device cpu or auto"):
        resolve_device("cuda")


def test_training_says_and_records_its_device(demo_train_dir, backbone_weights, tmp_path):
    lines = []
    result = train_classifier([demo_train_dir], quick_config(backbone_weights, tmp_path / "cache", device="cpu"),
                              out_dir=tmp_path / "m", log=lines.append)
    assert "backbone on cpu (" in "\n".join(lines)
    assert result.model.metadata["training"]["device"] == "cpu"


@needs_cuda
def test_gpu_training_gives_the_cpu_answers(demo_train_dir, backbone_weights, tmp_path):
    for device in ("cpu", "cuda"):
        config = quick_config(backbone_weights, tmp_path / f"cache-{device}", device=device)
        model = train_classifier([demo_train_dir], config, out_dir=tmp_path / device, log=lambda _: None).model
        assert model.metadata["training"]["device"] == device
    cpu_cache = sorted((tmp_path / "cache-cpu").rglob("*.npy"))
    gpu_cache = sorted((tmp_path / "cache-cuda").rglob("*.npy"))
    assert [p.name for p in cpu_cache] == [p.name for p in gpu_cache]
    for a, b in zip(cpu_cache, gpu_cache):
        np.testing.assert_allclose(np.load(a), np.load(b), rtol=1e-3, atol=1e-3)
    images = sorted(demo_train_dir.glob("*/*.jpg"))[:8]
    on_cpu = Predictor(tmp_path / "cpu", weights=backbone_weights, device="cpu").predict_batch(images)
    on_gpu = Predictor(tmp_path / "cpu", weights=backbone_weights, device="cuda").predict_batch(images)
    assert [a.document_type for a in on_cpu] == [b.document_type for b in on_gpu]
    assert np.allclose([a.score for a in on_cpu], [b.score for b in on_gpu], atol=1e-3)


def test_commands_take_the_device_and_say_it(trained_model_dir, backbone_weights, demo_train_dir, settings, tmp_path):
    from io import StringIO

    from django.core.management import call_command
    settings.IDCLASS_BACKBONE_WEIGHTS = backbone_weights
    out = StringIO()
    call_command("evaluate_classifier", str(demo_train_dir), "--model", str(trained_model_dir), "--device", "cpu",
                 "--report-dir", str(tmp_path / "r"), stdout=out)
    assert "backbone on cpu (" in out.getvalue()
    err = StringIO()
    call_command("classify_images", str(demo_train_dir), "--model", str(trained_model_dir), "--device", "cpu",
                 "--csv", str(tmp_path / "c.csv"), stderr=err, verbosity=0)
    assert "backbone on cpu (" in err.getvalue()

