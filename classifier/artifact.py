"""A trained model on disk: one directory with the head's weights and its metadata.

Weights are safetensors, whose loading never unpickles anything; everything else a
server needs to use the head correctly is in metadata.json.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file

from classifier.backbone import BackboneSpec
from classifier.bands import Calibration
from classifier.features import Preprocessing
from classifier.head import MLPHead

SCHEMA_VERSION = 1
WEIGHTS_FILE = "head.safetensors"
METADATA_FILE = "metadata.json"


class ModelNotFound(FileNotFoundError):
    """No trained model where one was expected; the message says how to make one."""


@dataclass
class TrainedModel:
    head: MLPHead
    metadata: dict

    @property
    def classes(self) -> list[str]:
        return self.metadata["classes"]

    @property
    def display_names(self) -> dict[str, str]:
        return self.metadata["display_names"]

    @property
    def version(self) -> str:
        return self.metadata["version"]

    @property
    def backbone(self) -> BackboneSpec:
        return BackboneSpec(**self.metadata["backbone"])

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(**self.metadata["preprocessing"])

    @property
    def calibration(self) -> Calibration:
        return Calibration.from_dict(self.metadata["calibration"])

    @property
    def temperature(self) -> float:
        return float(self.metadata.get("temperature", 1.0))


def save(model: TrainedModel, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.head.state_dict().items()}
    save_file(state, out_dir / WEIGHTS_FILE)
    tmp = out_dir / (METADATA_FILE + ".tmp")
    tmp.write_text(json.dumps(model.metadata, indent=2, sort_keys=True))
    os.replace(tmp, out_dir / METADATA_FILE)
    return out_dir


def make_current(model_dir: Path) -> Path:
    """Point `current` beside the model at it, atomically, so a server started
    with the default IDCLASS_MODEL_DIR picks up the newest model."""
    model_dir = Path(model_dir).resolve()
    link = model_dir.parent / "current"
    tmp = model_dir.parent / f".current-{model_dir.name}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(model_dir.name)
    os.replace(tmp, link)
    return link


def load(model_dir: Path) -> TrainedModel:
    model_dir = Path(model_dir)
    meta_path = model_dir / METADATA_FILE
    if not meta_path.is_file():
        raise ModelNotFound(f"No trained model in {model_dir}. Train one with "
                            "`python manage.py train_classifier DATA_DIR` (see README.md).")
    metadata = json.loads(meta_path.read_text())
    if metadata.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{meta_path} has schema version {metadata.get('schema_version')}; "
                         f"this code reads version {SCHEMA_VERSION}. Retrain the model.")
    h = metadata["head"]
    head = MLPHead(h["in_features"], len(metadata["classes"]), hidden=h["hidden"], dropout=h["dropout"])
    head.load_state_dict(load_file(model_dir / WEIGHTS_FILE), strict=True)
    return TrainedModel(head.eval(), metadata)
