"""The frozen ImageNet MobileNetV3 that turns an image into a feature vector."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision import models

# name -> (constructor, torchvision's pretrained weights, feature size before the classifier)
BACKBONES = {
    "large": (models.mobilenet_v3_large, models.MobileNet_V3_Large_Weights.IMAGENET1K_V2, 960),
    "small": (models.mobilenet_v3_small, models.MobileNet_V3_Small_Weights.IMAGENET1K_V1, 576),
}
RANDOM_WEIGHTS = "random"  # an untrained backbone, only for contrast runs and tests


class BackboneUnavailable(RuntimeError):
    """The pretrained weights cannot be had; the message says what to do."""


class BackboneMismatch(RuntimeError):
    """A head trained on one backbone is being paired with another."""


@dataclass(frozen=True)
class BackboneSpec:
    """Which backbone and which weights: what a trained head depends on."""

    name: str
    weights_id: str  # "sha256:<hex>" of a local file, torchvision's enum name, or "random"


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
                raise ValueError(f"unknown pooling {pooling!r}; expected 'avg' or 'gem'")
        return total / rotations


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_backbone(name: str = "large", weights: str | Path | None = None) -> tuple[FeatureExtractor, BackboneSpec]:
    """Build the extractor in eval mode with frozen weights.

    `weights` is a local state_dict file, "random", or None for torchvision's own
    pretrained weights (downloaded once into torch's cache).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}")
    build, enum, _ = BACKBONES[name]
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
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BackboneUnavailable(f"{path} is not a torchvision mobilenet_v3_{name} state_dict: "
                                      f"{str(exc).splitlines()[0]}") from exc
        spec = BackboneSpec(name, f"sha256:{file_sha256(path)}")
    else:
        try:
            net = build(weights=enum)
        except Exception as exc:  # torchvision raises URLError, HTTPError or OSError offline
            raise BackboneUnavailable(
                f"Could not download torchvision's pretrained mobilenet_v3_{name} weights ({exc}). "
                "Without internet access, point IDCLASS_BACKBONE_WEIGHTS at a local state_dict file, "
                "for example: IDCLASS_BACKBONE=small "
                "IDCLASS_BACKBONE_WEIGHTS=../shared/weights/mobilenet_v3_small_imagenet.pth"
            ) from exc
        spec = BackboneSpec(name, enum.name)
    extractor = FeatureExtractor(net).eval()
    extractor.requires_grad_(False)
    return extractor, spec


def feature_size(name: str) -> int:
    return BACKBONES[name][2]


def check_compatible(expected: BackboneSpec, actual: BackboneSpec) -> None:
    if expected != actual:
        raise BackboneMismatch(
            f"This model was trained on backbone {expected.name} with weights {expected.weights_id}, "
            f"but backbone {actual.name} with weights {actual.weights_id} was loaded. Set IDCLASS_BACKBONE "
            "and IDCLASS_BACKBONE_WEIGHTS to what the model was trained with, or train a new model."
        )
