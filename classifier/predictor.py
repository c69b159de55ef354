"""Serving: backbone and head loaded once, then any number of predictions."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from classifier import artifact
from classifier.backbone import BackboneSpec, BackboneUnavailable, check_compatible, load_backbone
from classifier.bands import ConfidenceBand
from classifier.features import document_view, load_localiser
from classifier.images import ImageSource, load_image, to_tensor


@dataclass(frozen=True)
class Alternative:
    document_type: str
    label: str
    score: float


@dataclass(frozen=True)
class Prediction:
    document_type: str  # the class folder name, e.g. "lva_passport"
    label: str  # shown to people, e.g. "Passport of Latvia"
    score: float
    band: ConfidenceBand
    top_k: list[Alternative]
    model_version: str
    width: int
    height: int
    localisation: dict | None = None  # {"found", "confidence", "quad"}: quad in the upright image's pixels
    timings_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "document_type": self.document_type,
            "label": self.label,
            "score": round(self.score, 4),
            "band": self.band.value,
            "colour": self.band.colour,
            "top_k": [{"document_type": a.document_type, "label": a.label, "score": round(a.score, 4)}
                      for a in self.top_k],
            "model_version": self.model_version,
            "localisation": self.localisation,
        }


def default_threads() -> int:
    """Intra-op threads for one forward pass: OMP_NUM_THREADS when the operator sets
    it (several server processes on one machine should share the cores out), else
    all cores but not more than 4, where extra threads stop paying for a MobileNet."""
    return int(os.environ.get("OMP_NUM_THREADS") or 0) or max(1, min(4, os.cpu_count() or 1))


class Predictor:
    """Thread-safe: decoding runs concurrently, forward passes one at a time (each
    already uses `threads` cores, so running two at once only thrashes)."""

    def __init__(self, model_dir: Path, weights: str | Path | None = None, threads: int | None = None,
                 top_k: int = 3):
        self.model = artifact.load(model_dir)
        torch.set_num_threads(threads or default_threads())
        self.extractor, spec = load_backbone(self.model.backbone.name, _weights_for(self.model.backbone, weights))
        check_compatible(self.model.backbone, spec)
        self.prep = self.model.preprocessing
        self.localiser = load_localiser(self.prep)
        self.calibration = self.model.calibration
        self.top_k = top_k
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return self.model.version

    def predict(self, image: ImageSource) -> Prediction:
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[ImageSource], localise: bool = True) -> list[Prediction]:
        """Raises InvalidImage for the first image that cannot be classified. With
        localise=False the whole image is classified (to measure what localising adds)."""
        localiser = self.localiser if localise else None
        t0 = time.perf_counter()
        # a located document is a part of the photo: decode enough pixels to cut it out
        min_size = self.prep.size * (2 if localiser else 1)
        decoded = [load_image(img, min_size=min_size) for img in images]
        t_decoded = time.perf_counter()
        views = [document_view(img, localiser) for img in decoded]
        t1 = time.perf_counter()
        batch = torch.stack([to_tensor(view, self.prep.size, self.prep.resize) for view, _ in views])
        with self._lock, torch.inference_mode():
            features = self.extractor(batch, self.prep.pooling, self.prep.rotations)
            t2 = time.perf_counter()
            probs = torch.softmax(self.model.head(features) / self.model.temperature, 1)
        t3 = time.perf_counter()
        per_image = {"decode_ms": (t_decoded - t0) * 1000 / len(images),
                     "localise_ms": (t1 - t_decoded) * 1000 / len(images), "features_ms": (t2 - t1) * 1000 / len(images),
                     "head_ms": (t3 - t2) * 1000 / len(images), "total_ms": (t3 - t0) * 1000 / len(images)}
        return [self._prediction(p, img, found, per_image) for p, img, (_, found) in zip(probs, decoded, views)]

    def _prediction(self, probs: torch.Tensor, img, found, timings) -> Prediction:
        classes, names = self.model.classes, self.model.display_names
        scores, order = probs.sort(descending=True)
        top = [Alternative(classes[i], names[classes[i]], float(s))
               for s, i in zip(scores[: self.top_k].tolist(), order[: self.top_k].tolist())]
        width, height = img.info["original_size"]
        band = self.calibration.band(top[0].score)
        localisation = None
        if found is not None:
            scale = np.array([width / img.width, height / img.height])
            localisation = {"found": found.found, "confidence": round(found.confidence, 4),
                            "quad": (found.quad * scale).round(1).tolist() if found.found else None}
            if not found.found:
                # No document outline: perhaps no document at all. The head still answers, often
                # with a high score (it has only ever seen documents), so the band says low.
                band = ConfidenceBand.LOW
        return Prediction(top[0].document_type, top[0].label, top[0].score, band,
                          top, self.version, width, height, localisation, dict(timings))


def _weights_for(spec: BackboneSpec, weights: str | Path | None) -> str | Path | None:
    """The weights to load for a model: the operator's file, or what the model names."""
    if spec.weights_id == "random":
        return "random"
    if spec.weights_id.startswith("sha256:") and not weights:
        raise BackboneUnavailable(
            f"This model was trained with a local backbone weights file ({spec.weights_id}); set "
            "IDCLASS_BACKBONE_WEIGHTS to that file.")
    return weights or None
