"""The frozen ImageNet MobileNetV3 that turns an image into a feature vector."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision import models

from classifier.artifact import BackboneSpec, file_sha256
from classifier.errors import BackboneUnavailable, ModelMismatch

# name -> (constructor, torchvision's pretrained weights); features: large 960, small 576
BACKBONES = {
    "large": (models.mobilenet_v3_large, models.MobileNet_V3_Large_Weights.IMAGENET1K_V2),
    "small": (models.mobilenet_v3_small, models.MobileNet_V3_Small_Weights.IMAGENET1K_V1),
}
RANDOM_WEIGHTS = "random"  # an untrained backbone, only for contrast runs and tests
POOLINGS = ("gem", "avg")  # how the trunk's feature maps become one vector (``FeatureExtractor.forward``)


class FeatureExtractor(nn.Module):
    """MobileNetV3's convolutional trunk, pooled to one vector per image."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.features = net.features

    def forward(self, x: torch.Tensor, pooling: str = "avg", rotations: int = 1) -> torch.Tensor:
        """With rotations=4 the vector is averaged over the image turned by 0, 90, 180
        and 270 degrees, so a document photographed sideways or upside down gives
        (nearly) the same features. GeM pooling (p=3) weighs strong local responses
        above the average, which keeps a small document from drowning in its background."""
        total = 0
        for k in range(rotations):
            maps = self.features(torch.rot90(x, k, (2, 3)) if k else x)
            if pooling == "gem":
                total = total + maps.clamp_min(1e-6).pow(3).mean((2, 3)).pow(1 / 3)
            elif pooling == "avg":
                total = total + maps.mean((2, 3))
            else:
                raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")
        return total / rotations


def load_backbone(name: str = "large", weights: str | Path | None = None) -> tuple[FeatureExtractor, BackboneSpec]:
    """Build the extractor in eval mode with frozen weights.

    `weights` is a local state_dict file, "random", or None for torchvision's own
    pretrained weights (downloaded once into torch's cache).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}")
    build, enum = BACKBONES[name]
    if weights == RANDOM_WEIGHTS:
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same "random" backbone in every process
            net = build(weights=None)
        spec = BackboneSpec(name, RANDOM_WEIGHTS)
    elif weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise BackboneUnavailable(f"IDCLASS_BACKBONE_WEIGHTS names {path}, which does not exist.")
        net = build(weights=None)
        try:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        except Exception as exc:  # torch.load fails on a damaged file in many ways (pickle, zip, EOF); all mean this
            raise BackboneUnavailable(f"{path} is not a torchvision mobilenet_v3_{name} state_dict: "
                                      f"{(str(exc).splitlines() or [type(exc).__name__])[0]}") from exc
        spec = BackboneSpec(name, f"sha256:{file_sha256(path)}")
    else:
        try:
            net = build(weights=enum)
        except Exception as exc:  # torchvision raises URLError, HTTPError or OSError offline
            raise BackboneUnavailable(
                f"Could not download torchvision's pretrained mobilenet_v3_{name} weights ({exc}). "
                f"Without internet access, set IDCLASS_BACKBONE_WEIGHTS to a torchvision mobilenet_v3_{name} "
                f"state_dict file, for example torchvision's own {enum.url.rsplit('/', 1)[-1]} downloaded on "
                "another machine (IDCLASS_BACKBONE chooses large or small)."
            ) from exc
        spec = BackboneSpec(name, enum.name)
    extractor = FeatureExtractor(net).eval()
    extractor.requires_grad_(False)
    return extractor, spec


class PooledFeatures(nn.Module):
    """The extractor with a model's pooling and rotations fixed: one tensor in, features out (what
    the model's backbone graph holds)."""

    def __init__(self, extractor: FeatureExtractor, pooling: str, rotations: int):
        super().__init__()
        self.extractor, self.pooling, self.rotations = extractor, pooling, rotations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extractor(x, self.pooling, self.rotations)


def check_compatible(expected: BackboneSpec, actual: BackboneSpec) -> None:
    if expected != actual:
        raise ModelMismatch(
            f"This model was trained on backbone {expected.name} with weights {expected.weights_id}, "
            f"but backbone {actual.name} with weights {actual.weights_id} was loaded. Set IDCLASS_BACKBONE "
            "and IDCLASS_BACKBONE_WEIGHTS to what the model was trained with, or train a new model."
        )


def load_model_backbone(spec: BackboneSpec, weights: str | Path | None) -> FeatureExtractor:
    """The backbone a model was trained on (``spec``), from ``weights``, the operator's file
    (``IDCLASS_BACKBONE_WEIGHTS``): refused where they are not the model's."""
    if spec.weights_id == RANDOM_WEIGHTS:
        weights = RANDOM_WEIGHTS
    elif spec.weights_id.startswith("sha256:") and not weights:
        raise BackboneUnavailable(
            f"This model was trained with a local backbone weights file ({spec.weights_id}); set "
            "IDCLASS_BACKBONE_WEIGHTS to that file.")
    extractor, actual = load_backbone(spec.name, weights or None)
    check_compatible(spec, actual)
    return extractor
