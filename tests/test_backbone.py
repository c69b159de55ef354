"""The frozen feature extractor."""
import pytest
import torch

from classifier.backbone import load_backbone
from classifier.errors import BackboneUnavailable


@pytest.fixture(scope="module")
def extractor():
    return load_backbone("small", "random")[0]


def test_feature_sizes(extractor):
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        assert extractor(x).shape == (2, 576)
        assert extractor(x, "gem", 4).shape == (2, 576)


def test_four_rotations_make_features_orientation_free(extractor):
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        upright = extractor(x, "avg", 4)
        turned = extractor(torch.rot90(x, 1, (2, 3)), "avg", 4)
        plain = extractor(x, "avg", 1), extractor(torch.rot90(x, 1, (2, 3)), "avg", 1)
    unit = lambda v: v / v.norm()  # noqa: E731  (a random backbone's features are tiny)
    assert torch.allclose(unit(upright), unit(turned), atol=1e-4)
    assert not torch.allclose(unit(plain[0]), unit(plain[1]), atol=1e-2)


def test_extractor_is_frozen_and_in_eval_mode(extractor):
    assert not extractor.training
    assert not any(p.requires_grad for p in extractor.parameters())


def test_random_backbone_is_the_same_in_every_load():
    a, spec = load_backbone("small", "random")
    b, _ = load_backbone("small", "random")
    assert spec.weights_id == "random"
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(BackboneUnavailable, match="does not exist"):
        load_backbone("small", tmp_path / "missing.pth")


def test_weights_of_the_wrong_architecture_are_refused(tmp_path):
    from torchvision.models import mobilenet_v3_large
    path = tmp_path / "large.pth"
    torch.save(mobilenet_v3_large().state_dict(), path)
    with pytest.raises(BackboneUnavailable, match="not a torchvision mobilenet_v3_small state_dict"):
        load_backbone("small", path)


def test_shared_weights_are_recorded_by_hash(backbone_weights):
    if backbone_weights == "random":
        pytest.skip("../shared/weights/mobilenet_v3_small_imagenet.pth not found")
    _, spec = load_backbone("small", backbone_weights)
    assert spec.weights_id == "sha256:ea0bf2a133cc3c5227718f5d2902135e9e135cfa88eecc6eaed13ca4b43e07e9"
