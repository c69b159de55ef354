"""The same three functions as ``graphs.OnnxGraphs``, the backbone as the model's torch module (on
a GPU: ``--device cuda``), the localiser and the head as their ONNX graphs on the CPU, where they
are small: so a photo gets the same outline, and from it the same cut-out, on a GPU as on every
CPU server (the runtimes' heatmaps differ by up to 4e-5, which moved 1-2% of the demo photos'
outlines). It needs the backbone's weights, as the model was trained with
(``IDCLASS_BACKBONE_WEIGHTS``)."""
from __future__ import annotations

from pathlib import Path

import torch

from classifier.artifact import ModelInfo
from classifier.backbone import PooledFeatures, load_model_backbone
from classifier.graphs import OnnxGraphs
from classifier.networks import TorchForward


class TorchGraphs:
    def __init__(self, model_dir: Path, model: ModelInfo, backbone_weights: str | Path | None, device: str,
                 threads: int | None):
        if threads:
            torch.set_num_threads(threads)
        self.device, self.threads = device, torch.get_num_threads()
        extractor = load_model_backbone(model.backbone, backbone_weights)
        prep = model.preprocessing
        self.features = TorchForward(PooledFeatures(extractor, prep.pooling, prep.rotations).to(device))
        on_cpu = OnnxGraphs(model_dir, model, threads, backbone=False)
        self.localise, self.head = on_cpu.localise, on_cpu.head
