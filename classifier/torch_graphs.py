"""The same three functions as ``graphs.OnnxGraphs``, from the model's torch modules: the backbone
on a GPU (``--device cuda``), the localiser and the head on the CPU, where they are small. It needs
the backbone's weights, as the model was trained with (``IDCLASS_BACKBONE_WEIGHTS``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from classifier import artifact, weights
from classifier.artifact import ModelInfo
from classifier.backbone import PooledFeatures, load_model_backbone
from classifier.export import HeadGraph
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
        self._head = HeadGraph(weights.load_model(model_dir).head)
        localiser_dir = artifact.model_localiser_dir(model_dir, prep)
        if localiser_dir is not None:
            self.localise = TorchForward(weights.load_localiser_network(localiser_dir)[0])

    def head(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            logits, novelty = self._head(torch.from_numpy(features))
        return logits.numpy(), novelty.numpy()
