"""A model's networks as ONNX graphs (``artifact.GRAPHS``), which a server runs on ONNX Runtime
without torch: the localiser, the backbone with the model's pooling at its input size (its
weights inside, so serving needs no backbone weights file), and the head with its novelty.
Training writes them; ``manage.py export_model`` writes them for a model trained before.

torch's TorchScript-based exporter (``dynamo=False``): its graphs gave ONNX Runtime features equal
to eager torch's within 5e-6 on MobileNetV3, where the newer exporter needs onnxscript."""
from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from classifier import artifact, weights
from classifier.backbone import FeatureExtractor, PooledFeatures, load_model_backbone
from classifier.head import MLPHead
from classifier.preprocessing import Preprocessing

OPSET = 17


class HeadGraph(nn.Module):
    """The head as serving calls it: features in; logits and novelty (``openset``) out. A head
    without references (a model trained before open-set answers) gives novelty 0."""

    def __init__(self, head: MLPHead):
        super().__init__()
        self.head = head
        self.has_references = head.references.numel() > 0

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, hidden = self.head.logits_and_hidden(features)
        if not self.has_references:
            return logits, torch.zeros_like(logits[:, 0])
        return logits, self.head.novelty(hidden)


def export_graphs(out_dir: Path, head: MLPHead, extractor: FeatureExtractor, prep: Preprocessing,
                  localiser: tuple[nn.Module, dict] | None) -> dict[str, str]:
    """Write the model's graphs into ``out_dir``, each replaced atomically; return their checksums
    as metadata.json's "graphs" holds them. ``localiser``: its network and ``localiser.json``, for a
    model that localises."""
    out_dir = Path(out_dir)
    size = prep.size
    graphs = {"backbone": (PooledFeatures(extractor, prep.pooling, prep.rotations), torch.zeros(1, 3, size, size),
                           "image", ["features"]),
              "head": (HeadGraph(head), torch.zeros(1, head.feature_mean.shape[0]), "features", ["logits", "novelty"])}
    if localiser is not None:
        net, config = localiser
        graphs["localiser"] = (net, localiser_example(config), "image", ["heatmaps"])
    checksums = {}
    for name, (module, example, given, outputs) in graphs.items():
        path = out_dir / artifact.GRAPHS[name]
        export_graph(module, example, given, outputs, path)
        checksums[name] = f"sha256:{artifact.file_sha256(path)}"
    return checksums


def localiser_example(config: dict) -> torch.Tensor:
    """An input of the size a localiser's network takes (``localise.Localiser.input_side``)."""
    side = int(config["image_size"]) + 2 * int(config["pad"])
    return torch.zeros(1, 3, side, side)


def export_graph(module: nn.Module, example: torch.Tensor, given: str, outputs: list[str], path: Path) -> None:
    """One module as an ONNX graph at ``path`` (replaced atomically), any batch size."""
    module = copy.deepcopy(module).cpu().eval()
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # the exporter's notices of its own future
        torch.onnx.export(module, example, tmp, dynamo=False, opset_version=OPSET, input_names=[given],
                          output_names=outputs, dynamic_axes={n: {0: "batch"} for n in [given, *outputs]})
    os.replace(tmp, path)


def export_model(model_dir: Path, backbone_weights: str | Path | None) -> dict[str, str]:
    """Write the graphs of a model trained before models held them, and record their checksums in
    its metadata (written last, as training does). ``backbone_weights``: the file it was trained with."""
    model = weights.load_model(model_dir)
    extractor = load_model_backbone(model.backbone, backbone_weights)
    localiser_dir = artifact.model_localiser_dir(model_dir, model.preprocessing)
    localiser = weights.load_localiser_network(localiser_dir) if localiser_dir else None
    graphs = export_graphs(model_dir, model.head, extractor, model.preprocessing, localiser)
    artifact.write_metadata(artifact.HEAD, model_dir, model.metadata | {"graphs": graphs})
    return graphs
