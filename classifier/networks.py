"""The localiser's networks, in torch: what ``train_localiser`` trains and ``export`` turns into the
graph a model serves with. Both take ``localise.to_input``'s padded square and give logits at
stride 4 for 6 maps: one heatmap per corner of the document's own (TL, TR, BR, BL), one for any
corner, and the document mask (``localise.decode_heatmaps`` reads them)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchvision.models import mobilenet_v3_small

from classifier.images import IMAGENET_MEAN, IMAGENET_STD
from classifier.localise import network_name


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CornerNet(nn.Module):
    """Tiny U-Net: stride-2 stages down to 1/32 (enough context to tell which way up the
    document is), then back up to 1/4 with skips. Outputs logits at stride 4 for 6 maps: one
    heatmap per corner of the document's own (TL, TR, BR, BL), one for any corner, and the
    document mask. "Any corner" has targets that never contradict each other, whichever way up
    the document is, so it learns where the corners are fastest; the four say which is which."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        chans = (3,) + tuple(widths)
        self.down = nn.ModuleList(nn.Sequential(_conv(chans[i], chans[i + 1], 2), _conv(chans[i + 1], chans[i + 1]))
                                  for i in range(len(widths)))
        # Up from the deepest stage to stride 4 (the second stage).
        self.up = nn.ModuleList(_conv(widths[i + 1] + widths[i], widths[i]) for i in range(len(widths) - 2, 0, -1))
        self.head = nn.Conv2d(widths[1], 6, 1)
        with torch.no_grad():  # corners are rare: start near their prior, not at probability 0.5
            self.head.bias[:5] = -4.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(down_then_up(x, self.down, self.up))


class MobileCornerNet(nn.Module):
    """The same six maps as ``CornerNet`` from an ImageNet-pretrained encoder: torchvision's
    MobileNetV3-Small up to stride 32 (its last 1x1 expansion left out), then a decoder back up to
    stride 4 with a skip from each of its stages. Pretrained filters already know edges, text and
    faces on real photographs, which renders of fictional documents alone cannot teach; the
    encoder costs about a quarter of ``CornerNet``'s compute."""

    STAGES = ((0, 2), (2, 4), (4, 9), (9, 12))  # ``features`` slices ending at stride 4, 8, 16 and 32
    CHANNELS = (16, 24, 48, 96)  # what each stage gives

    def __init__(self, widths: tuple[int, ...], features: nn.Module | None = None):
        """``widths``: the decoder's, at stride 16, 8 and 4. ``features``: MobileNetV3-Small's, to
        start from (training); None builds them untrained, for weights about to be loaded."""
        super().__init__()
        features = features if features is not None else mobilenet_v3_small().features
        self.stages = nn.ModuleList(features[a:b] for a, b in self.STAGES)
        ins = (self.CHANNELS[-1],) + tuple(widths[:-1])
        self.up = nn.ModuleList(_conv(i + c, w) for i, c, w in zip(ins, self.CHANNELS[-2::-1], widths))
        self.head = nn.Conv2d(widths[-1], 6, 1)
        with torch.no_grad():
            self.head.bias[:5] = -4.0
        # ``to_input``'s (pixel - 127.5) / 64, turned into what the ImageNet weights expect
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("scale", 64 / 255 / std, persistent=False)
        self.register_buffer("shift", (0.5 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(down_then_up(x * self.scale + self.shift, self.stages, self.up))


def down_then_up(x: torch.Tensor, stages: nn.ModuleList, ups: nn.ModuleList) -> torch.Tensor:
    """Both localiser networks' shape: down through ``stages``, keeping each one's output, then up
    through ``ups``, each given the upsampled input joined with the kept output of its size."""
    skips = []
    for stage in stages:
        x = stage(x)
        skips.append(x)
    x = skips.pop()
    for up in ups:
        skip = skips.pop()
        x = up(torch.cat([nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear"), skip], 1))
    return x


NETWORKS = {"unet": CornerNet, "mobilenet_v3_small": MobileCornerNet}  # localiser.json's "network"


def localiser_network(config: dict) -> nn.Module:
    """The untrained network a localiser's ``localiser.json`` describes, for its weights to load into."""
    return NETWORKS[network_name(config)](tuple(config["widths"]))


class TorchForward:
    """A module as the plain function of arrays that ``localise.Localiser`` and the predictor call:
    float32 rows in, float32 rows out, on the module's device."""

    def __init__(self, module: nn.Module):
        self.module = module.eval()
        self.device = next(module.parameters()).device

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(rows).to(self.device)).float().cpu().numpy()
